//! Keeping passwords out of logs: URLs whose credentials are redacted
//! whenever they are displayed or debug-printed.

use std::fmt;
use std::str::FromStr;

/// A URL that may carry a password. `Display` and `Debug` show it with the
/// password replaced by `***`; [`SecretUrl::expose`] gives the real one.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the one call that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretUrl {
    type Err = url::ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        url::Url::parse(text)?;
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({self})")
    }
}

/// Replaces the password of a URL with `***`. Text that does not parse as a
/// URL is searched for `scheme://user:password@` and redacted the same way,
/// so that an error message quoting a URL is safe to log too.
pub fn redact_url(text: &str) -> String {
    if let Ok(mut url) = url::Url::parse(text) {
        if url.password().is_some() {
            // Setting a password only fails for URLs that cannot have one,
            // and this one already has one.
            let _ = url.set_password(Some("***"));
            return url.to_string();
        }
        return text.to_owned();
    }
    redact_in_text(text)
}

/// Redacts every `://user:password@` found anywhere in free text.
pub fn redact_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url: SecretUrl = "amqp://ingest:s3cret@rabbit:5672/%2f".parse().unwrap();
        assert_eq!(url.to_string(), "amqp://ingest:***@rabbit:5672/%2f");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.expose(), "amqp://ingest:s3cret@rabbit:5672/%2f");
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        assert_eq!(
            redact_url("http://127.0.0.1:8428/write"),
            "http://127.0.0.1:8428/write"
        );
    }

    #[test]
    fn urls_inside_error_text_are_redacted() {
        let text = "connect to amqp://u:p4ss@host:5672/vh failed; retry http://a:b@c/d";
        let redacted = redact_in_text(text);
        assert_eq!(
            redacted,
            "connect to amqp://u:***@host:5672/vh failed; retry http://a:***@c/d"
        );
    }
}
