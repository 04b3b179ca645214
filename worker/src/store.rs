//! Writing points to the time-series database: batches of line protocol,
//! each page compressed as its own gzip member as soon as it is encoded, so
//! a job waiting on a slow TSDB holds only compressed bytes.

use std::io::Write;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use url::Url;

use crate::error::{WriteError, parse_retry_after};
use crate::fetch::{redacted, wait_at_least};

/// Points waiting to be written, as a run of independently compressed
/// chunks. Concatenated gzip members are one valid gzip stream (RFC 1952).
#[derive(Debug, Default)]
pub struct Batch {
    chunks: Vec<u8>,
    points: usize,
}

impl Batch {
    /// Points in the batch.
    pub fn points(&self) -> usize {
        self.points
    }

    /// Whether the batch holds no points.
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Hands the batch over for writing and leaves an empty one.
    pub fn take(&mut self) -> (Bytes, usize) {
        let points = std::mem::take(&mut self.points);
        let mut chunks = std::mem::take(&mut self.chunks);
        // The body is held until the TSDB accepts it, which may take long
        // with many jobs in flight; growth may have left it half unused.
        chunks.shrink_to_fit();
        (Bytes::from(chunks), points)
    }
}

/// The TSDB client: one pooled HTTP client shared by every job.
#[derive(Debug, Clone)]
pub struct TsdbWriter {
    http: reqwest::Client,
    url: Url,
    gzip: bool,
    retry: ExponentialBuilder,
}

impl TsdbWriter {
    /// A writer posting to `write_url` (with `precision=ms` added).
    pub fn new(
        http: reqwest::Client,
        write_url: &Url,
        gzip: bool,
        retry: ExponentialBuilder,
    ) -> Self {
        let mut url = write_url.clone();
        url.query_pairs_mut().append_pair("precision", "ms");
        Self {
            http,
            url,
            gzip,
            retry,
        }
    }

    /// Adds one page of line protocol to `batch`, compressed when gzip is on.
    pub fn append(&self, batch: &mut Batch, lines: &[u8], points: usize) -> Result<(), WriteError> {
        if points == 0 {
            return Ok(());
        }
        if self.gzip {
            let mut encoder = GzEncoder::new(&mut batch.chunks, Compression::fast());
            encoder.write_all(lines).map_err(WriteError::Compress)?;
            encoder.finish().map_err(WriteError::Compress)?;
        } else {
            batch.chunks.extend_from_slice(lines);
        }
        batch.points += points;
        Ok(())
    }

    /// Writes a batch, retrying transient failures within the call's budget.
    /// Returns once the TSDB accepted every point.
    pub async fn write(&self, body: Bytes, points: usize) -> Result<(), WriteError> {
        (|| self.write_once(body.clone(), points))
            .retry(self.retry)
            .sleep(tokio::time::sleep)
            .when(|err| err.class() == crate::error::ErrorClass::Transient)
            .adjust(|err, planned| wait_at_least(err.retry_after(), planned))
            .notify(|err, wait| {
                metrics::counter!("ingest_write_errors_total", "class" => err.class().as_str())
                    .increment(1);
                tracing::debug!(error = %err, ?wait, "TSDB write failed; retrying");
            })
            .await?;
        metrics::counter!("ingest_points_written_total").increment(points as u64);
        Ok(())
    }

    async fn write_once(&self, body: Bytes, points: usize) -> Result<(), WriteError> {
        let mut request = self.http.post(self.url.clone()).body(body);
        if self.gzip {
            request = request.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        let response = request.send().await.map_err(|source| {
            let url = redacted(&self.url);
            if source.is_timeout() {
                WriteError::Timeout { url, source }
            } else {
                WriteError::Connect { url, source }
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = parse_retry_after(response.headers());
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(body.floor_char_boundary(512));
        Err(WriteError::Status {
            status,
            points,
            body,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn writer(gzip: bool) -> TsdbWriter {
        TsdbWriter::new(
            reqwest::Client::new(),
            &Url::parse("http://tsdb:8428/write?db=x").unwrap(),
            gzip,
            ExponentialBuilder::default(),
        )
    }

    #[test]
    fn millisecond_precision_is_added_to_the_url() {
        assert_eq!(
            writer(true).url.as_str(),
            "http://tsdb:8428/write?db=x&precision=ms"
        );
    }

    #[test]
    fn concatenated_gzip_members_decode_to_every_page_in_order() {
        let writer = writer(true);
        let mut batch = Batch::default();
        writer.append(&mut batch, b"m a=1 1\n", 1).unwrap();
        writer.append(&mut batch, b"m a=2 2\nm a=3 3\n", 2).unwrap();
        let (body, points) = batch.take();
        assert_eq!(points, 3);
        assert!(batch.is_empty());
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "m a=1 1\nm a=2 2\nm a=3 3\n");
    }

    #[test]
    fn without_gzip_pages_are_appended_as_they_are() {
        let writer = writer(false);
        let mut batch = Batch::default();
        writer.append(&mut batch, b"m a=1 1\n", 1).unwrap();
        writer.append(&mut batch, b"", 0).unwrap();
        assert_eq!(&batch.take().0[..], b"m a=1 1\n");
    }
}
