//! Readings to points: one factory page, parsed in place, becomes InfluxDB
//! line protocol. Strings are borrowed from the page wherever JSON allows,
//! so a reading costs one small allocation (its list of fields) on its way
//! through.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Measurement name of every point.
pub const MEASUREMENT: &str = "machine_reading";

/// Legacy reading keys that become tags, with their tag keys, in the sorted
/// order the tags are written in.
const TAGS: [(&str, &str); 6] = [
    ("CELL", "cell"),
    ("FACTORY", "factory"),
    ("MACHINE", "machine"),
    ("MACHINE_GROUP", "machine_group"),
    ("MACHINE_ID", "machine_id"),
    ("ZONE", "zone"),
];

/// Where a legacy key stands in [`TAGS`], if it is a tag: a `match` on the
/// key, which the compiler turns into a switch on its length, where a scan
/// of the table would compare it with every tag name.
fn tag_slot(key: &str) -> Option<usize> {
    match key {
        "CELL" => Some(0),
        "FACTORY" => Some(1),
        "MACHINE" => Some(2),
        "MACHINE_GROUP" => Some(3),
        "MACHINE_ID" => Some(4),
        "ZONE" => Some(5),
        _ => None,
    }
}

/// Index of `MACHINE_ID` in [`TAGS`]; filled from the job's device when a
/// reading lacks it, so that every point names its machine.
const MACHINE_ID_TAG: usize = 4;

/// Key of the reading's time.
const TIMESTAMP: &str = "TIMESTAMP";

/// What one page held.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageSummary {
    /// Readings on the page.
    pub readings: u64,
    /// Points appended to the output (valid readings).
    pub points: u64,
    /// Readings that could not become points.
    pub invalid: u64,
    /// The first invalid reading: its index on the page and what is wrong.
    pub first_invalid: Option<(u64, String)>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Parses a page `{"readings": [{"Values": {...}}, ...], "next_cursor": ...}`
/// and appends one line of line protocol (millisecond timestamps) per valid
/// reading to `out`. `device` names the machine when a reading has no
/// `MACHINE_ID`. Fails only when the page itself is not of that shape.
pub fn encode_page(
    page: &[u8],
    device: &str,
    out: &mut Vec<u8>,
) -> Result<PageSummary, serde_json::Error> {
    let mut encoder = Encoder {
        device,
        out,
        summary: PageSummary::default(),
    };
    // One check of the whole page is much cheaper than the check of each
    // string that parsing a byte slice makes; JSON is UTF-8 throughout.
    let page = std::str::from_utf8(page)
        .map_err(|err| de::Error::custom(format_args!("the page is not UTF-8: {err}")))?;
    let mut de = serde_json::Deserializer::from_str(page);
    PageSeed(&mut encoder).deserialize(&mut de)?;
    de.end()?;
    Ok(encoder.summary)
}

struct Encoder<'o, 'd> {
    device: &'d str,
    out: &'o mut Vec<u8>,
    summary: PageSummary,
}

impl Encoder<'_, '_> {
    fn reject(&mut self, reason: String) {
        if self.summary.first_invalid.is_none() {
            self.summary.first_invalid = Some((self.summary.readings, reason));
        }
        self.summary.invalid += 1;
    }
}

struct PageSeed<'a, 'o, 'd>(&'a mut Encoder<'o, 'd>);

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a page object with `readings` and `next_cursor`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut saw_readings = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key.0 {
                "readings" => {
                    map.next_value_seed(ReadingsSeed(&mut *self.0))?;
                    saw_readings = true;
                }
                "next_cursor" => self.0.summary.next_cursor = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_readings {
            return Err(de::Error::missing_field("readings"));
        }
        Ok(())
    }
}

struct ReadingsSeed<'a, 'o, 'd>(&'a mut Encoder<'o, 'd>);

impl<'de> DeserializeSeed<'de> for ReadingsSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ReadingsSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of readings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ReadingSeed(&mut *self.0))?.is_some() {
            self.0.summary.readings += 1;
        }
        Ok(())
    }
}

struct ReadingSeed<'a, 'o, 'd>(&'a mut Encoder<'o, 'd>);

impl<'de> DeserializeSeed<'de> for ReadingSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ReadingSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reading object with `Values`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut values = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 == "Values" && values.is_none() {
                values = Some(map.next_value::<Values<'de>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        match values {
            Some(values) => write_point(self.0, values),
            None => self.0.reject("has no `Values` object".into()),
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.reject("is null".into());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.0.reject("is an array, not an object".into());
        Ok(())
    }
}

/// One reading's `Values`, sorted into tags, time and fields as parsed.
struct Values<'de> {
    tags: [Option<Cow<'de, str>>; 6],
    timestamp: Option<Scalar<'de>>,
    fields: Vec<(Cow<'de, str>, Scalar<'de>)>,
}

impl<'de> de::Deserialize<'de> for Values<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ValuesVisitor)
    }
}

struct ValuesVisitor;

impl<'de> Visitor<'de> for ValuesVisitor {
    type Value = Values<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a `Values` object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values<'de>, A::Error> {
        let mut values = Values {
            tags: Default::default(),
            timestamp: None,
            fields: Vec::with_capacity(4),
        };
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let value = map.next_value::<Scalar<'de>>()?;
            if key == TIMESTAMP {
                values.timestamp = Some(value);
            } else if let Some(slot) = tag_slot(&key) {
                values.tags[slot] = Some(value.into_tag_text());
            } else {
                values.fields.push((key, value));
            }
        }
        Ok(values)
    }
}

fn write_point(encoder: &mut Encoder<'_, '_>, values: Values<'_>) {
    let timestamp_ms = match values.timestamp {
        None => return encoder.reject("has no TIMESTAMP".into()),
        Some(Scalar::Number(ms)) if ms.fract() == 0.0 && ms.abs() < 1e15 => ms as i64,
        Some(Scalar::Text(text)) => match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(time) => time.timestamp_millis(),
            Err(_) => {
                return encoder.reject(format!("has a TIMESTAMP that is not RFC 3339: {text:?}"));
            }
        },
        Some(other) => {
            return encoder.reject(format!("has a TIMESTAMP that is not a time: {other}"));
        }
    };
    if values.fields.is_empty() {
        return encoder.reject("has no measurements".into());
    }
    for (key, value) in &values.fields {
        if !matches!(value, Scalar::Number(_)) {
            return encoder.reject(format!("has a non-numeric {key:?}: {value}"));
        }
    }
    for (slot, tag) in values.tags.iter().enumerate() {
        if tag.as_deref().is_some_and(|v| v.contains(['\n', '\r'])) {
            return encoder.reject(format!("has a line break in {}", TAGS[slot].0));
        }
    }

    let out = &mut *encoder.out;
    out.extend_from_slice(MEASUREMENT.as_bytes());
    for (slot, (_, tag_key)) in TAGS.iter().enumerate() {
        let value = match (&values.tags[slot], slot) {
            (Some(value), _) if !value.is_empty() => value.as_ref(),
            (_, MACHINE_ID_TAG) => encoder.device,
            _ => continue,
        };
        out.push(b',');
        out.extend_from_slice(tag_key.as_bytes());
        out.push(b'=');
        escape_into(out, value);
    }
    let mut separator = b' ';
    let mut number = zmij::Buffer::new();
    for (key, value) in &values.fields {
        let Scalar::Number(value) = value else {
            unreachable!("non-numeric fields were rejected above")
        };
        out.push(separator);
        separator = b',';
        escape_into(out, key);
        out.push(b'=');
        out.extend_from_slice(number.format_finite(*value).as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(timestamp_ms).as_bytes());
    out.push(b'\n');
    encoder.summary.points += 1;
}

/// Escapes the characters line protocol gives meaning to in tag keys, tag
/// values and field keys: comma, equals sign and space.
fn escape_into(out: &mut Vec<u8>, text: &str) {
    let special = |byte: &u8| matches!(byte, b',' | b'=' | b' ');
    if !text.as_bytes().iter().any(special) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for byte in text.bytes() {
        if special(&byte) {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// A JSON string, borrowed from the input unless it holds escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A value inside `Values`.
enum Scalar<'de> {
    Number(f64),
    Text(Cow<'de, str>),
    /// `true`, `false`, `null`, an array or an object.
    Other(&'static str),
}

impl<'de> Scalar<'de> {
    fn into_tag_text(self) -> Cow<'de, str> {
        match self {
            Scalar::Text(text) => text,
            Scalar::Number(n) => Cow::Owned(zmij::Buffer::new().format(n).to_owned()),
            Scalar::Other(kind) => Cow::Borrowed(kind),
        }
    }
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(text) => write!(f, "{text:?}"),
            Scalar::Other(kind) => f.write_str(kind),
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other(if v { "true" } else { "false" }))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_that_is_not_utf8_is_refused_as_such() {
        let page = b"{\"readings\": [{\"Values\": {\"MACHINE\": \"m\xff\"}}]}";
        let err = encode_page(page, "dev-1", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn every_tag_key_finds_its_slot_and_no_other_key_does() {
        for (slot, (name, _)) in TAGS.iter().enumerate() {
            assert_eq!(tag_slot(name), Some(slot), "{name}");
        }
        for key in ["TIMESTAMP", "temperature", "cell", "MACHINE_IDS", ""] {
            assert_eq!(tag_slot(key), None, "{key}");
        }
    }

    fn encode(page: &str) -> (String, PageSummary) {
        let mut out = Vec::new();
        let summary = encode_page(page.as_bytes(), "dev-1", &mut out).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn a_reading_becomes_one_point_with_sorted_tags() {
        let (lines, summary) = encode(
            r#"{"readings": [{"Values": {"FACTORY": "plant-1", "ZONE": "z1", "CELL": "c2",
                "MACHINE_GROUP": "g", "MACHINE": "m", "MACHINE_ID": "dev-1",
                "TIMESTAMP": "2026-12-01T00:00:01Z", "temperature": 21.5, "pressure": 3}}],
                "next_cursor": "abc"}"#,
        );
        assert_eq!(
            lines,
            "machine_reading,cell=c2,factory=plant-1,machine=m,machine_group=g,machine_id=dev-1,zone=z1 \
             temperature=21.5,pressure=3.0 1796083201000\n"
        );
        assert_eq!(summary.points, 1);
        assert_eq!(summary.next_cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn spaces_commas_and_equals_signs_are_escaped() {
        let (lines, _) = encode(
            r#"{"readings": [{"Values": {"ZONE": "hall a,b=c", "MACHINE_ID": "d",
                "TIMESTAMP": "2026-12-01T00:00:00Z", "oil temp": 1.25}}], "next_cursor": null}"#,
        );
        assert_eq!(
            lines,
            "machine_reading,machine_id=d,zone=hall\\ a\\,b\\=c oil\\ temp=1.25 1796083200000\n"
        );
    }

    #[test]
    fn a_missing_machine_id_falls_back_to_the_jobs_device() {
        let (lines, _) = encode(
            r#"{"readings": [{"Values": {"TIMESTAMP": "2026-12-01T00:00:00Z", "power": 2}}],
                "next_cursor": null}"#,
        );
        assert!(
            lines.starts_with("machine_reading,machine_id=dev-1 power=2.0 "),
            "{lines}"
        );
    }

    #[test]
    fn invalid_readings_are_counted_and_the_first_is_named() {
        let (lines, summary) = encode(
            r#"{"readings": [
                {"Values": {"TIMESTAMP": "2026-12-01T00:00:00Z", "power": 1}},
                {"Values": {"TIMESTAMP": "2026-12-01T00:00:01Z", "power": "n/a"}},
                {"Values": {"power": 3}},
                {"Values": {"TIMESTAMP": "yesterday", "power": 4}}
            ], "next_cursor": null}"#,
        );
        assert_eq!(lines.lines().count(), 1);
        assert_eq!(
            (summary.readings, summary.points, summary.invalid),
            (4, 1, 3)
        );
        let (index, reason) = summary.first_invalid.unwrap();
        assert_eq!(index, 1);
        assert!(reason.contains("non-numeric \"power\""), "{reason}");
    }

    #[test]
    fn strings_with_escapes_are_decoded_before_encoding() {
        let (lines, _) = encode(
            r#"{"readings": [{"Values": {"MACHINE": "a\"b", "TIMESTAMP": "2026-12-01T00:00:00Z",
                "x": 1}}], "next_cursor": null}"#,
        );
        assert!(lines.contains("machine=a\"b"), "{lines}");
    }

    #[test]
    fn pages_that_are_not_pages_fail() {
        let mut out = Vec::new();
        for page in [
            "",
            "{",
            "[]",
            r#"{"next_cursor": null}"#,
            r#"{"readings": 5}"#,
        ] {
            assert!(
                encode_page(page.as_bytes(), "d", &mut out).is_err(),
                "{page:?}"
            );
        }
        assert!(out.is_empty());
    }

    #[test]
    fn a_truncated_page_fails_as_a_whole() {
        let page = r#"{"readings": [{"Values": {"TIMESTAMP": "2026-12-01T00:00:00Z", "x": 1}},"#;
        assert!(encode_page(page.as_bytes(), "d", &mut Vec::new()).is_err());
    }
}
