//! Splitting a requested range into the windows that become jobs.

use chrono::{DateTime, TimeDelta, Utc};

/// One window: its inclusive start and exclusive end.
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// Why a range cannot be split.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    /// `from` is not before `to`.
    #[error("`from` ({from}) must be before `to` ({to})")]
    EmptyRange {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// The window is zero or negative.
    #[error("the window must be longer than zero")]
    ZeroWindow,
}

/// Splits `[from, to)` into windows of `window`, starting at `from`; the last
/// window is cut at `to`. The order is the time order.
pub fn split_windows(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window: TimeDelta,
) -> Result<Vec<Window>, WindowError> {
    if from >= to {
        return Err(WindowError::EmptyRange { from, to });
    }
    if window <= TimeDelta::zero() {
        return Err(WindowError::ZeroWindow);
    }
    let mut windows = Vec::new();
    let mut start = from;
    while start < to {
        let end = start
            .checked_add_signed(window)
            .map_or(to, |end| end.min(to));
        windows.push((start, end));
        start = end;
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_last_window_is_cut_at_the_end() {
        let windows = split_windows(
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T02:30:00Z"),
            TimeDelta::hours(1),
        )
        .unwrap();
        let expected = [
            ("2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"),
            ("2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z"),
            ("2026-12-01T02:00:00Z", "2026-12-01T02:30:00Z"),
        ]
        .map(|(s, e)| (time(s), time(e)));
        assert_eq!(windows, expected);
    }

    #[test]
    fn windows_cover_the_range_without_gaps_or_overlaps() {
        let (from, to) = (time("2026-12-01T00:00:07Z"), time("2026-12-02T00:00:00Z"));
        let windows = split_windows(from, to, TimeDelta::minutes(7)).unwrap();
        assert_eq!(windows.first().unwrap().0, from);
        assert_eq!(windows.last().unwrap().1, to);
        assert!(windows.windows(2).all(|pair| pair[0].1 == pair[1].0));
    }

    #[test]
    fn a_window_longer_than_the_range_gives_one_job() {
        let (from, to) = (time("2026-12-01T00:00:00Z"), time("2026-12-01T00:10:00Z"));
        assert_eq!(
            split_windows(from, to, TimeDelta::days(1)).unwrap(),
            [(from, to)]
        );
    }

    #[test]
    fn empty_ranges_and_zero_windows_are_errors() {
        let t = time("2026-12-01T00:00:00Z");
        assert!(matches!(
            split_windows(t, t, TimeDelta::hours(1)),
            Err(WindowError::EmptyRange { .. })
        ));
        assert_eq!(
            split_windows(t, t + TimeDelta::hours(1), TimeDelta::zero()),
            Err(WindowError::ZeroWindow)
        );
    }
}
