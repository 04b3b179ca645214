//! Writes a page of readings as JSON straight into one byte buffer.
//!
//! This is the simulator's hot path: no serde trees, the tag prefix built once
//! per page, and numbers and timestamps written digit by digit.

use chrono::{SecondsFormat, TimeZone, Utc};

use crate::faults::{CorruptionKind, DeviceCorruption};
use crate::paging::{Page, ReadingRange};
use crate::readings::{DeviceSeed, device_tags};

/// Bytes a reading takes beyond its tag prefix, rounded up, so the buffer is
/// allocated once per page.
const READING_TAIL_BYTES: usize = 120;

/// A page written as JSON.
pub(crate) struct EncodedPage {
    pub(crate) body: Vec<u8>,
    /// How many readings were altered by a corruption fault.
    pub(crate) corrupted: u64,
}

/// Writes `page` of `range` for `device` as the API's JSON body.
pub(crate) fn encode_page(
    device: &str,
    range: ReadingRange,
    page: &Page,
    corruption: Option<DeviceCorruption>,
) -> EncodedPage {
    let prefix = tag_prefix(device);
    let seed = DeviceSeed::new(device);
    let count = usize::try_from(page.indices.end - page.indices.start).unwrap_or(0);
    let mut body = Vec::with_capacity(64 + count * (prefix.len() + READING_TAIL_BYTES));
    let mut corrupted = 0;

    body.extend_from_slice(b"{\"readings\":[");
    for index in page.indices.clone() {
        if index != page.indices.start {
            body.push(b',');
        }
        let kind = corruption.and_then(|rule| rule.applies_at(range.position(index)));
        corrupted += u64::from(kind.is_some());
        write_reading(&mut body, &prefix, seed, range.millis(index), kind);
    }

    body.extend_from_slice(b"],\"next_cursor\":");
    match page.next {
        Some(next) => {
            body.push(b'"');
            body.extend_from_slice(range.encode_cursor(next).as_bytes());
            body.push(b'"');
        }
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');

    EncodedPage { body, corrupted }
}

/// The part of every reading of `device` up to its timestamp:
/// `{"Values":{"FACTORY":"...", ..., "MACHINE_ID":"..."`.
fn tag_prefix(device: &str) -> Vec<u8> {
    let tags = device_tags(device);
    let mut prefix = Vec::with_capacity(160);
    prefix.extend_from_slice(b"{\"Values\":{");
    for (position, (key, value)) in [
        ("FACTORY", &tags.factory),
        ("ZONE", &tags.zone),
        ("CELL", &tags.cell),
        ("MACHINE_GROUP", &tags.machine_group),
        ("MACHINE", &tags.machine),
        ("MACHINE_ID", &tags.machine_id),
    ]
    .into_iter()
    .enumerate()
    {
        if position > 0 {
            prefix.push(b',');
        }
        write_json_string(&mut prefix, key);
        prefix.push(b':');
        write_json_string(&mut prefix, value);
    }
    prefix
}

fn write_reading(
    body: &mut Vec<u8>,
    prefix: &[u8],
    seed: DeviceSeed,
    millis: i64,
    corruption: Option<CorruptionKind>,
) {
    let measurements = seed.measurements(millis);
    body.extend_from_slice(prefix);

    if corruption != Some(CorruptionKind::MissingTimestamp) {
        body.extend_from_slice(b",\"TIMESTAMP\":\"");
        write_timestamp_millis(body, millis);
        body.push(b'"');
    }

    body.extend_from_slice(b",\"temperature\":");
    if corruption == Some(CorruptionKind::NonNumeric) {
        body.extend_from_slice(b"\"n/a\"");
    } else {
        write_hundredths(body, measurements.temperature);
    }
    body.extend_from_slice(b",\"pressure\":");
    write_hundredths(body, measurements.pressure);
    body.extend_from_slice(b",\"power\":");
    write_hundredths(body, measurements.power);
    body.extend_from_slice(b"}}");
}

/// Writes `value` as a JSON string, escaping what JSON requires.
pub(crate) fn write_json_string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for character in value.chars() {
        match character {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            control if u32::from(control) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(control)).as_bytes());
            }
            other => {
                let mut buffer = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Writes integer hundredths as the shortest decimal that reads back as the
/// same `f64`, exactly as serde_json writes `hundredths as f64 / 100.0`:
/// `1800` as `18.0`, `1850` as `18.5`, `5` as `0.05`.
pub(crate) fn write_hundredths(out: &mut Vec<u8>, hundredths: u32) {
    write_unsigned(out, u64::from(hundredths / 100));
    out.push(b'.');
    let fraction = hundredths % 100;
    if fraction.is_multiple_of(10) {
        out.push(b'0' + (fraction / 10) as u8);
    } else {
        out.push(b'0' + (fraction / 10) as u8);
        out.push(b'0' + (fraction % 10) as u8);
    }
}

fn write_unsigned(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes a number of `width` digits, zero-padded on the left.
fn write_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut rest = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Writes the canonical RFC 3339 form of `millis` milliseconds since the
/// Unix epoch: UTC with `Z` and no fraction, or three digits when the
/// milliseconds are not zero.
pub(crate) fn write_timestamp_millis(out: &mut Vec<u8>, millis: i64) {
    let seconds = millis.div_euclid(1_000);
    let fraction = millis.rem_euclid(1_000) as u64;
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400) as u64;
    let (year, month, day) = civil_from_days(days);

    // Four-digit years are all the API's RFC 3339 parameters can name; chrono
    // writes the rest, which only a direct library call can ask for.
    if !(0..=9_999).contains(&year) {
        let time = Utc.timestamp_millis_opt(millis).single();
        if let Some(time) = time {
            out.extend_from_slice(time.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        }
        return;
    }

    write_padded(out, year as u64, 4);
    out.push(b'-');
    write_padded(out, u64::from(month), 2);
    out.push(b'-');
    write_padded(out, u64::from(day), 2);
    out.push(b'T');
    write_padded(out, second_of_day / 3_600, 2);
    out.push(b':');
    write_padded(out, second_of_day / 60 % 60, 2);
    out.push(b':');
    write_padded(out, second_of_day % 60, 2);
    if fraction != 0 {
        out.push(b'.');
        write_padded(out, fraction, 3);
    }
    out.push(b'Z');
}

/// The proleptic Gregorian date `days` days after 1970-01-01, by Howard
/// Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::reading;
    use chrono::{DateTime, Utc};

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn parse(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).expect("the page is valid JSON")
    }

    #[test]
    fn page_parses_and_equals_the_serde_form_of_each_reading() {
        let range = ReadingRange::new(
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T00:10:00Z"),
            1_000,
        );
        let page = range.page(None, 500);
        let encoded = encode_page("press-07", range, &page, None);
        let parsed = parse(&encoded.body);

        let expected: Vec<serde_json::Value> = page
            .indices
            .clone()
            .map(|index| {
                let reading = reading("press-07", range.timestamp(index).unwrap());
                serde_json::to_value(reading).unwrap()
            })
            .collect();
        assert_eq!(parsed["readings"], serde_json::Value::Array(expected));
        assert_eq!(parsed["next_cursor"], "1796083700000");
        assert_eq!(encoded.corrupted, 0);
    }

    #[test]
    fn page_keeps_the_key_order_of_the_api() {
        let range = ReadingRange::new(
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T00:00:01Z"),
            1_000,
        );
        let encoded = encode_page("press-07", range, &range.page(None, 10), None);
        let expected = serde_json::to_string(&reading("press-07", time("2026-12-01T00:00:00Z")));
        let text = String::from_utf8(encoded.body).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"readings":[{}],"next_cursor":null}}"#,
                expected.unwrap()
            )
        );
    }

    #[test]
    fn hundredths_are_written_exactly_as_serde_json_writes_the_float() {
        for hundredths in 0..=25_000u32 {
            let mut out = Vec::new();
            write_hundredths(&mut out, hundredths);
            let expected = serde_json::to_string(&(f64::from(hundredths) / 100.0)).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn timestamps_match_chrono_canonical_form() {
        let samples = [
            0,
            -1,
            -86_400_000,
            951_782_400_000,
            1_796_083_201_000,
            1_796_083_201_250,
            4_107_542_399_999,
            -62_167_219_200_000,
            253_402_300_799_999,
        ];
        let stepped = (0..20_000).map(|step| -62_000_000_000_000 + step * 15_811_200_123);
        for millis in samples.into_iter().chain(stepped) {
            let mut out = Vec::new();
            write_timestamp_millis(&mut out, millis);
            let expected = Utc
                .timestamp_millis_opt(millis)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{millis}");
        }
    }

    #[test]
    fn corruption_alters_every_kth_reading_by_position_in_the_range() {
        let range = ReadingRange::new(
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T00:00:10Z"),
            1_000,
        );
        let rule = DeviceCorruption {
            every: 3,
            kind: CorruptionKind::NonNumeric,
        };
        let second_page = range.page(Some(range.indices().start + 4), 6);
        let encoded = encode_page("press-07", range, &second_page, Some(rule));
        let parsed = parse(&encoded.body);

        // Positions 4..10 of the range; the 3rd, 6th and 9th readings are
        // positions 2, 5 and 8.
        let altered: Vec<bool> = parsed["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|reading| reading["Values"]["temperature"] == "n/a")
            .collect();
        assert_eq!(altered, [false, true, false, false, true, false]);
        assert_eq!(encoded.corrupted, 2);
    }

    #[test]
    fn missing_timestamp_corruption_drops_the_key() {
        let range = ReadingRange::new(
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T00:00:02Z"),
            1_000,
        );
        let rule = DeviceCorruption {
            every: 1,
            kind: CorruptionKind::MissingTimestamp,
        };
        let encoded = encode_page("press-07", range, &range.page(None, 10), Some(rule));
        let parsed = parse(&encoded.body);
        for reading in parsed["readings"].as_array().unwrap() {
            assert!(reading["Values"].get("TIMESTAMP").is_none());
            assert!(reading["Values"]["temperature"].is_f64());
        }
    }

    #[test]
    fn json_strings_escape_quotes_and_control_characters() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\n\u{1}é");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }
}
