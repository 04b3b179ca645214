//! Fetching a job's readings from the factory API, page by page, with
//! retries inside the attempt. Each page is turned into line protocol as soon
//! as it arrives, so only one raw page per job is ever in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use ingest_shared::job::canonical_time;
use tokio::sync::{Semaphore, SemaphorePermit};
use url::Url;

use crate::error::{FetchError, parse_retry_after};
use crate::transform::{PageSummary, encode_page};

/// One page of a job's readings, already encoded as line protocol.
#[derive(Debug)]
pub struct EncodedPage {
    /// Line protocol of the page's valid readings, one line per point.
    pub lines: Vec<u8>,
    /// Counts and the cursor of the next page.
    pub summary: PageSummary,
}

/// The factory API client: one pooled HTTP client shared by every job.
#[derive(Debug, Clone)]
pub struct FactoryClient {
    http: reqwest::Client,
    base: Url,
    page_limit: u32,
    retry: ExponentialBuilder,
    /// Bounds the bytes of pages being requested and parsed at once, so that
    /// memory follows the budget, not the number of jobs in flight.
    budget: Arc<PageBudget>,
}

impl FactoryClient {
    /// A client for the API at `base` asking for `page_limit` readings per
    /// page and retrying each call with `retry`.
    pub fn new(
        http: reqwest::Client,
        base: Url,
        page_limit: u32,
        retry: ExponentialBuilder,
        budget: Arc<PageBudget>,
    ) -> Self {
        Self {
            http,
            base,
            page_limit,
            retry,
            budget,
        }
    }

    /// The URL of one page. The device is percent-encoded as one path
    /// segment whatever it holds, so no id can reach another path.
    pub fn page_url(
        &self,
        device: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map(|mut segments| {
                segments
                    .pop_if_empty()
                    .extend(["devices", device, "readings"]);
            })
            // A base URL that cannot hold a path was refused at start-up.
            .expect("the factory URL is a base URL");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("start", &canonical_time(start))
                .append_pair("end", &canonical_time(end))
                .append_pair("limit", &self.page_limit.to_string());
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
        }
        url
    }

    /// Fetches and encodes one page, retrying transient failures and
    /// unparsable bodies with backoff and jitter within the call's budget.
    /// A `Retry-After` from the API is waited out at least.
    pub async fn fetch_page(
        &self,
        device: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<EncodedPage, FetchError> {
        let url = self.page_url(device, start, end, cursor);
        (|| self.fetch_once(&url, device))
            .retry(self.retry)
            .sleep(tokio::time::sleep)
            .when(FetchError::is_retryable)
            .adjust(|err, planned| wait_at_least(err.retry_after(), planned))
            .notify(|err, wait| {
                metrics::counter!("ingest_fetch_errors_total", "class" => err.class().as_str())
                    .increment(1);
                tracing::debug!(error = %err, ?wait, "factory call failed; retrying");
            })
            .await
    }

    async fn fetch_once(&self, url: &Url, device: &str) -> Result<EncodedPage, FetchError> {
        // The budget is reserved before the request is sent: a response
        // waiting for it would hold its connection's read buffer (up to
        // 400 KB in hyper) and keep the connection out of the pool, so
        // hundreds of jobs in flight would mean hundreds of buffered pages.
        let mut reserved = self.budget.reserve(self.budget.expected()).await;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|source| request_error(url, source))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::UnknownDevice {
                device: device.to_owned(),
                url: redacted(url),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                url: redacted(url),
                status,
                retry_after: parse_retry_after(response.headers()),
            });
        }

        // A page larger than expected waits for its full share before its
        // body is read; it gives back what it holds first, so two pages
        // waiting for each other's share cannot deadlock.
        if let Some(length) = response.content_length()
            && !self.budget.covers(&reserved, length as usize)
        {
            drop(reserved);
            reserved = self.budget.reserve(length as usize).await;
        }
        let body = response.bytes().await.map_err(|source| {
            if source.is_timeout() {
                FetchError::Timeout {
                    url: redacted(url),
                    source,
                }
            } else {
                FetchError::Body {
                    url: redacted(url),
                    source,
                }
            }
        })?;
        self.budget.observe(body.len());
        let mut lines = Vec::with_capacity(body.len() / 2);
        let summary =
            encode_page(&body, device, &mut lines).map_err(|source| FetchError::Decode {
                url: redacted(url),
                source,
            })?;
        drop(reserved);
        Ok(EncodedPage { lines, summary })
    }

    /// Asks the API's health URL whether it answers at all.
    pub async fn probe(&self, health_url: &Url) -> bool {
        probe(&self.http, health_url).await
    }
}

/// Bytes one unit of the budget stands for. A page takes at least one unit,
/// which covers a connection's own buffers when the page is tiny.
const BUDGET_UNIT: usize = 16 * 1024;

/// How many bytes of factory pages may be in flight at once, requested or
/// being parsed. Each request reserves its expected size: the largest page
/// seen lately, decaying slowly towards the sizes seen since, so that small
/// pages (short ranges, idle machines) run many at a time and full pages
/// few, and a jump in size is taken at once. A page found larger than its
/// reservation (from `Content-Length`) waits for the rest before its body is
/// read.
#[derive(Debug)]
pub struct PageBudget {
    units: Semaphore,
    total: u32,
    expected: AtomicUsize,
}

impl PageBudget {
    /// A budget of `bytes`, expecting pages of `first_page` bytes until one
    /// has been seen.
    pub fn new(bytes: usize, first_page: usize) -> Self {
        let total = u32::try_from(bytes.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX);
        Self {
            units: Semaphore::new(total as usize),
            total,
            expected: AtomicUsize::new(first_page),
        }
    }

    /// The size the next page is expected to have.
    pub fn expected(&self) -> usize {
        self.expected.load(Ordering::Relaxed)
    }

    /// Notes the size of a page that arrived.
    pub fn observe(&self, bytes: usize) {
        // A lost update between two pages only delays the decay by a page.
        let expected = self.expected();
        let next = if bytes >= expected {
            bytes
        } else {
            expected - (expected - bytes) / 16
        };
        self.expected.store(next, Ordering::Relaxed);
    }

    /// Waits until `bytes` (at most the whole budget) can be held.
    pub async fn reserve(&self, bytes: usize) -> SemaphorePermit<'_> {
        // The semaphore is never closed, so acquiring cannot fail.
        self.units
            .acquire_many(self.units_for(bytes))
            .await
            .expect("the page budget stays open")
    }

    /// Whether `permit` already holds enough for a page of `bytes`.
    pub fn covers(&self, permit: &SemaphorePermit<'_>, bytes: usize) -> bool {
        permit.num_permits() >= self.units_for(bytes) as usize
    }

    fn units_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(BUDGET_UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }
}

/// Whether a health URL answers with a success status.
pub async fn probe(http: &reqwest::Client, url: &Url) -> bool {
    http.get(url.clone())
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// First wait between two tries of one call.
const CALL_RETRY_MIN_DELAY: Duration = Duration::from_millis(100);

/// Longest wait between two tries of one call, before jitter.
const CALL_RETRY_MAX_DELAY: Duration = Duration::from_secs(2);

/// The backoff between tries of one call (a page, a write) inside an
/// attempt: 100 ms, doubling up to 2 s, each wait lengthened by a random
/// 0 to 100 %; tries go on until the next wait would take the waits past
/// `budget` (`--call-retry-budget`), and the call then fails.
pub fn call_retry_policy(budget: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(CALL_RETRY_MIN_DELAY)
        .with_max_delay(CALL_RETRY_MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(budget))
}

/// The longest `Retry-After` waited out inside an attempt. A server asking
/// for more ends the attempt instead, and the job waits in a delay queue,
/// where long waits belong: a delivery is never held unacked for longer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Keeps a planned backoff wait, stretched to the server's `Retry-After`.
/// When the backoff is spent (`planned` is `None`), or the server asks for
/// more than [`MAX_RETRY_AFTER`], the call gives up.
pub fn wait_at_least(asked: Option<Duration>, planned: Option<Duration>) -> Option<Duration> {
    match (planned, asked) {
        (Some(_), Some(asked)) if asked > MAX_RETRY_AFTER => None,
        (Some(planned), Some(asked)) => Some(planned.max(asked)),
        (planned, _) => planned,
    }
}

fn request_error(url: &Url, source: reqwest::Error) -> FetchError {
    if source.is_timeout() {
        FetchError::Timeout {
            url: redacted(url),
            source,
        }
    } else {
        FetchError::Connect {
            url: redacted(url),
            source,
        }
    }
}

/// The URL without its password, for errors and logs.
pub fn redacted(url: &Url) -> String {
    ingest_shared::secret::redact_url(url.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> FactoryClient {
        FactoryClient::new(
            reqwest::Client::new(),
            Url::parse("http://factory:8080/api/").unwrap(),
            1000,
            ExponentialBuilder::default(),
            Arc::new(PageBudget::new(1 << 20, 1 << 20)),
        )
    }

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn hostile_devices_stay_inside_one_path_segment() {
        let client = client();
        let (start, end) = (time("2026-12-01T00:00:00Z"), time("2026-12-01T01:00:00Z"));
        for (device, segment) in [
            ("../admin", "..%2Fadmin"),
            ("a%2Fb", "a%252Fb"),
            ("press 07", "press%2007"),
            ("prèss", "pr%C3%A8ss"),
            ("a?b#c", "a%3Fb%23c"),
        ] {
            let url = client.page_url(device, start, end, None);
            assert_eq!(
                url.path(),
                format!("/api/devices/{segment}/readings"),
                "{device:?}"
            );
        }
    }

    #[test]
    fn the_expected_page_jumps_up_at_once_and_decays_slowly() {
        let budget = PageBudget::new(64 * BUDGET_UNIT, 300_000);
        budget.observe(40);
        assert!(budget.expected() > 280_000, "{}", budget.expected());
        for _ in 0..200 {
            budget.observe(40);
        }
        assert!(budget.expected() < BUDGET_UNIT, "{}", budget.expected());
        budget.observe(290_000);
        assert_eq!(budget.expected(), 290_000);
    }

    #[tokio::test]
    async fn small_pages_share_the_budget_and_a_full_page_takes_its_size() {
        let budget = PageBudget::new(8 * BUDGET_UNIT, BUDGET_UNIT);
        let small: Vec<_> =
            futures_util::future::join_all((0..8).map(|_| budget.reserve(40))).await;
        assert_eq!(budget.units.available_permits(), 0);
        assert!(budget.covers(&small[0], 40));
        assert!(!budget.covers(&small[0], 3 * BUDGET_UNIT));
        drop(small);

        let large = budget.reserve(3 * BUDGET_UNIT).await;
        assert_eq!(large.num_permits(), 3);
        // A page larger than the whole budget takes all of it, never more.
        drop(large);
        assert_eq!(budget.reserve(1 << 30).await.num_permits(), 8);
    }

    #[test]
    fn the_query_carries_range_limit_and_cursor() {
        let url = client().page_url(
            "d1",
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T01:00:00Z"),
            Some("c=1&x"),
        );
        assert_eq!(
            url.query(),
            Some(
                "start=2026-12-01T00%3A00%3A00Z&end=2026-12-01T01%3A00%3A00Z&limit=1000&cursor=c%3D1%26x"
            )
        );
    }

    use std::sync::Mutex;
    use tokio::time::Instant;

    fn answer(code: u16, retry_after: Option<Duration>) -> FetchError {
        FetchError::Status {
            url: "http://factory/devices/d/readings".into(),
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            retry_after,
        }
    }

    /// Runs a fake call through `policy` the way [`FactoryClient::fetch_page`]
    /// does; `outcome(n)` answers the n-th try (from 1). Returns when each
    /// try was made, on the test's clock, and the call's result.
    async fn tries(
        policy: ExponentialBuilder,
        outcome: impl Fn(usize) -> Result<(), FetchError>,
    ) -> (Vec<Duration>, Result<(), FetchError>) {
        let start = Instant::now();
        let made = Mutex::new(Vec::new());
        let result = (|| async {
            let mut made = made.lock().unwrap();
            made.push(start.elapsed());
            outcome(made.len())
        })
        .retry(policy)
        .sleep(tokio::time::sleep)
        .when(FetchError::is_retryable)
        .adjust(|err, planned| wait_at_least(err.retry_after(), planned))
        .await;
        (made.into_inner().unwrap(), result)
    }

    fn waits(tries: &[Duration]) -> Vec<Duration> {
        tries.windows(2).map(|pair| pair[1] - pair[0]).collect()
    }

    /// The timer has millisecond ticks: a sleep on the paused clock ends up
    /// to one tick after its deadline.
    const TICK: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn retries_stop_once_the_budget_is_spent() {
        let budget = Duration::from_secs(1);
        for _ in 0..50 {
            let (made, result) = tries(call_retry_policy(budget), |_| Err(answer(500, None))).await;
            assert!(result.is_err());
            // 100-200 ms and 200-400 ms always fit in 1 s; 800 ms more never does.
            assert!((3..=4).contains(&made.len()), "{made:?}");
            let waited: Duration = waits(&made).iter().sum();
            assert!(waited <= budget + TICK * 4, "{made:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_budget_allows_one_try() {
        let (made, result) = tries(call_retry_policy(Duration::ZERO), |_| {
            Err(answer(503, None))
        })
        .await;
        assert_eq!(made, [Duration::ZERO]);
        assert!(result.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_double_up_to_the_cap_with_jitter_of_at_most_the_wait() {
        let mut jittered = false;
        for _ in 0..20 {
            let (made, _) = tries(call_retry_policy(Duration::from_secs(30)), |_| {
                Err(answer(502, None))
            })
            .await;
            let waits = waits(&made);
            assert!(waits.len() >= 6, "{waits:?}");
            let mut base = CALL_RETRY_MIN_DELAY;
            for (i, &wait) in waits.iter().enumerate() {
                assert!(
                    wait >= base && wait < base * 2 + TICK,
                    "wait {i}: {waits:?}"
                );
                jittered |= wait > base + TICK;
                let next = (base * 2).min(CALL_RETRY_MAX_DELAY);
                if next == base * 2 {
                    // The next wait is at least twice this base, and this
                    // one is under twice it: waits grow while they double.
                    let later = waits.get(i + 1);
                    assert!(later.is_none_or(|&later| later > wait), "{waits:?}");
                }
                base = next;
            }
        }
        assert!(jittered, "no wait was ever lengthened by jitter");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_of_2s_delays_the_next_try_by_at_least_2s() {
        let (made, result) = tries(call_retry_policy(Duration::from_secs(1)), |n| match n {
            1 => Err(answer(429, Some(Duration::from_secs(2)))),
            _ => Ok(()),
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(made.len(), 2);
        assert!(made[1] - made[0] >= Duration::from_secs(2), "{made:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_error_is_not_tried_again() {
        let (made, result) = tries(call_retry_policy(Duration::from_secs(1)), |_| {
            Err(answer(400, None))
        })
        .await;
        assert_eq!(made.len(), 1);
        assert!(result.is_err());
    }

    #[test]
    fn retry_after_stretches_the_wait_but_never_revives_a_spent_budget() {
        let secs = Duration::from_secs;
        assert_eq!(wait_at_least(Some(secs(2)), Some(secs(1))), Some(secs(2)));
        assert_eq!(wait_at_least(None, Some(secs(1))), Some(secs(1)));
        assert_eq!(wait_at_least(Some(secs(2)), None), None);
        assert_eq!(wait_at_least(Some(secs(3600)), Some(secs(1))), None);
    }
}
