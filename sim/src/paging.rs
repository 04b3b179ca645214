//! Which readings a time range holds, how they split into pages, and the
//! opaque cursor that names where the next page starts.

use chrono::{DateTime, TimeZone, Utc};
use std::ops::Range;
use std::time::Duration;

/// `interval` in milliseconds, if it is a whole, non-zero number of them.
///
/// Readings are keyed by their millisecond, as the time-series store keeps
/// them, so a finer or fractional interval would put two readings on one key.
pub(crate) fn interval_millis(interval: Duration) -> Option<i64> {
    let whole = interval.subsec_nanos().is_multiple_of(1_000_000);
    i64::try_from(interval.as_millis())
        .ok()
        .filter(|millis| *millis > 0 && whole)
}

/// The readings of a half-open range `[start, end)`, as indices on the grid
/// of instants `index * interval` since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadingRange {
    /// Index of the first reading at or after `start`.
    first: i64,
    /// Index of the first reading at or after `end`; not part of the range.
    end: i64,
    interval_ms: i64,
}

/// One page of a range: the indices it serves and where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) indices: Range<i64>,
    /// Index of the first reading of the next page; `None` on the last page.
    pub(crate) next: Option<i64>,
}

impl ReadingRange {
    /// The range `[start, end)` on a grid of `interval_ms` milliseconds.
    ///
    /// `interval_ms` is positive: the configuration is validated before any
    /// range is built.
    pub(crate) fn new(start: DateTime<Utc>, end: DateTime<Utc>, interval_ms: i64) -> Self {
        let interval_ns = i128::from(interval_ms) * 1_000_000;
        let first = ceil_div(nanos_since_epoch(start), interval_ns);
        let end = ceil_div(nanos_since_epoch(end), interval_ns).max(first);

        // Every instant chrono can hold is below 2^63 milliseconds, so both
        // indices fit in i64.
        Self {
            first: first as i64,
            end: end as i64,
            interval_ms,
        }
    }

    /// Every index of the range, in time order.
    pub(crate) fn indices(self) -> Range<i64> {
        self.first..self.end
    }

    /// The number of readings in the range.
    #[cfg(test)]
    pub(crate) fn len(self) -> i64 {
        self.end - self.first
    }

    /// The position of `index` in the range, counted from 0.
    pub(crate) fn position(self, index: i64) -> i64 {
        index - self.first
    }

    /// Milliseconds since the Unix epoch of the reading at `index`.
    pub(crate) fn millis(self, index: i64) -> i64 {
        index * self.interval_ms
    }

    /// The time of the reading at `index`, if chrono can represent it.
    pub(crate) fn timestamp(self, index: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.millis(index)).single()
    }

    /// The page that starts at `cursor` (or at the range's start) and holds
    /// at most `limit` readings.
    pub(crate) fn page(self, cursor: Option<i64>, limit: u32) -> Page {
        let from = cursor.unwrap_or(self.first);
        let to = from.saturating_add(i64::from(limit)).min(self.end);
        Page {
            indices: from..to,
            next: (to < self.end).then_some(to),
        }
    }

    /// The cursor text a client sends back to fetch the page at `index`.
    pub(crate) fn encode_cursor(self, index: i64) -> String {
        self.millis(index).to_string()
    }

    /// The index a cursor names, if it is one this range could have issued.
    pub(crate) fn decode_cursor(self, cursor: &str) -> Option<i64> {
        // Cursors are the decimal milliseconds of the next reading. Anything
        // else, or a reading outside this range, was not issued for it.
        let plain_digits = cursor
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'-');
        let millis: i64 = cursor.parse().ok().filter(|_| plain_digits)?;
        if millis % self.interval_ms != 0 {
            return None;
        }
        let index = millis / self.interval_ms;
        (self.first..self.end).contains(&index).then_some(index)
    }
}

fn nanos_since_epoch(time: DateTime<Utc>) -> i128 {
    i128::from(time.timestamp()) * 1_000_000_000 + i128::from(time.timestamp_subsec_nanos())
}

/// `numerator / denominator` rounded towards positive infinity, for a
/// positive denominator.
fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator.div_euclid(denominator);
    if numerator.rem_euclid(denominator) == 0 {
        quotient
    } else {
        quotient + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn range(start: &str, end: &str, interval_ms: i64) -> ReadingRange {
        ReadingRange::new(time(start), time(end), interval_ms)
    }

    #[test]
    fn range_is_half_open_on_the_grid() {
        let range = range("2026-12-01T00:00:00Z", "2026-12-01T00:00:03Z", 1_000);
        assert_eq!(range.len(), 3);
        assert_eq!(
            range.timestamp(range.indices().start),
            Some(time("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            range.timestamp(range.indices().end - 1),
            Some(time("2026-12-01T00:00:02Z"))
        );
    }

    #[test]
    fn range_starting_between_instants_begins_at_the_next_one() {
        let range = range("2026-12-01T00:00:00.001Z", "2026-12-01T00:00:02.5Z", 1_000);
        assert_eq!(range.len(), 2);
        assert_eq!(
            range.timestamp(range.indices().start),
            Some(time("2026-12-01T00:00:01Z"))
        );
    }

    #[test]
    fn range_holding_no_instant_is_empty() {
        let range = range("2026-12-01T00:00:00.1Z", "2026-12-01T00:00:00.9Z", 1_000);
        assert_eq!(range.len(), 0);
        assert_eq!(range.page(None, 10).next, None);
    }

    #[test]
    fn range_before_the_epoch_rounds_towards_the_future() {
        let range = range("1969-12-31T23:59:58.5Z", "1970-01-01T00:00:00.5Z", 1_000);
        let stamps: Vec<_> = range.indices().filter_map(|i| range.timestamp(i)).collect();
        assert_eq!(
            stamps,
            [time("1969-12-31T23:59:59Z"), time("1970-01-01T00:00:00Z")]
        );
    }

    #[test]
    fn pages_cover_the_range_and_the_last_has_no_next() {
        let range = range("2026-12-01T00:00:00Z", "2026-12-01T00:00:05Z", 1_000);
        let first = range.page(None, 2);
        assert_eq!(first.indices.end - first.indices.start, 2);
        let second = range.page(first.next, 2);
        let third = range.page(second.next, 2);
        assert_eq!(third.indices.end - third.indices.start, 1);
        assert_eq!(third.next, None);
    }

    #[test]
    fn cursor_round_trips_and_rejects_what_the_range_did_not_issue() {
        let range = range("2026-12-01T00:00:00Z", "2026-12-01T00:00:05Z", 1_000);
        let index = range.indices().start + 3;
        assert_eq!(
            range.decode_cursor(&range.encode_cursor(index)),
            Some(index)
        );
        for bad in [
            "",
            "abc",
            "+1796083201000",
            "1796083201500",
            "1796083205000",
            "1e3",
        ] {
            assert_eq!(range.decode_cursor(bad), None, "{bad:?}");
        }
    }
}
