//! WebSocket URL parsing and redaction.
//!
//! URLs often carry secrets (`wss://user:pass@host/?token=…`), so everything unisock logs or
//! puts in an error goes through [`redact_url`] first.

use crate::Error;

/// A validated `ws://` or `wss://` URL.
#[derive(Clone, Debug)]
pub(crate) struct WsUrl {
    url: url::Url,
    redacted: String,
}

impl WsUrl {
    /// Parses and validates a WebSocket URL the way the browser's `WebSocket` constructor does:
    /// `http`/`https` are mapped to `ws`/`wss`, other schemes are refused, a fragment is dropped.
    pub(crate) fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: redact_url(input),
            reason,
        };
        let mut url = url::Url::parse(input.trim()).map_err(|e| invalid(e.to_string()))?;
        let scheme = match url.scheme() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => {
                return Err(Error::UnsupportedScheme {
                    scheme: other.to_owned(),
                })
            }
        };
        if url.scheme() != scheme && url.set_scheme(scheme).is_err() {
            return Err(invalid(format!("cannot use scheme {scheme}")));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host".into()));
        }
        url.set_fragment(None);
        let redacted = redact_parsed(&url);
        Ok(WsUrl { url, redacted })
    }

    /// The full URL, secrets included: only for opening the connection.
    pub(crate) fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The URL without userinfo, query or fragment: safe for logs and errors.
    pub(crate) fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Host name or address, without brackets around IPv6.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn host(&self) -> &str {
        match self.url.host() {
            Some(url::Host::Ipv6(_)) => self
                .url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']'),
            _ => self.url.host_str().unwrap_or_default(),
        }
    }

    /// The port, explicit or the scheme's default (80 / 443).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn port(&self) -> u16 {
        self.url
            .port_or_known_default()
            .unwrap_or(if self.is_secure() { 443 } else { 80 })
    }

    /// Whether this is `wss://`.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn is_secure(&self) -> bool {
        self.url.scheme() == "wss"
    }
}

fn redact_parsed(url: &url::Url) -> String {
    let mut clean = url.clone();
    // Both setters only fail for URLs that cannot have a host, which `parse` rejected.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    clean.into()
}

/// Returns `url` with its userinfo (`user:password@`), query string and fragment removed, so
/// that it can be logged or shown. Works on unparsable input too, on a best-effort basis.
///
/// ```
/// assert_eq!(
///     unisock::redact_url("wss://bob:hunter2@example.com/chat?token=abc#x"),
///     "wss://example.com/chat"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    if let Ok(parsed) = url::Url::parse(url.trim()) {
        if parsed.has_host() {
            return redact_parsed(&parsed);
        }
    }
    // Not a URL we understand, so we cannot tell where its authority ends: cut at '?' / '#',
    // keep a leading `scheme:` with its slashes (parsers are lenient about them: `https:/u@h`,
    // `wss:\\h` and `http:h` all have an authority), and drop everything up to the LAST '@'.
    // That can eat part of a path, but never leaves a password behind (`redis//:pw@h`).
    let cut = url.find(['?', '#']).map_or(url, |end| &url[..end]);
    let scheme_len = scheme_prefix_len(cut);
    let (scheme, rest) = cut.split_at(scheme_len);
    let rest = match rest.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let redacted = format!("{scheme}{rest}");
    match url::Url::parse(redacted.trim()) {
        Ok(parsed) if parsed.has_host() => redact_parsed(&parsed),
        _ => redacted,
    }
}

/// Length of a leading `scheme:` plus the slashes or backslashes after it; 0 if there is none.
fn scheme_prefix_len(url: &str) -> usize {
    let Some(colon) = url.find(':') else {
        return 0;
    };
    let scheme = &url[..colon];
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return 0;
    }
    let slashes = url[colon + 1..]
        .bytes()
        .take_while(|&b| b == b'/' || b == b'\\')
        .count();
    // Without slashes, only the special schemes have an authority (`http:user:pw@host`);
    // otherwise `user:pw@host` is more likely userinfo without a scheme.
    const SPECIAL: [&str; 6] = ["http", "https", "ws", "wss", "ftp", "file"];
    if slashes == 0 && !SPECIAL.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return 0;
    }
    colon + 1 + slashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_http_schemes_and_drops_fragment() {
        let url = WsUrl::parse("https://example.com/a#frag").unwrap();
        assert_eq!(url.as_str(), "wss://example.com/a");
        assert_eq!(url.port(), 443);
        assert!(url.is_secure());
        let url = WsUrl::parse("http://[::1]:9000/").unwrap();
        assert_eq!(url.as_str(), "ws://[::1]:9000/");
        assert_eq!(url.host(), "::1");
    }

    #[test]
    fn rejects_bad_urls_with_typed_errors() {
        assert!(matches!(
            WsUrl::parse("ftp://example.com/"),
            Err(Error::UnsupportedScheme { scheme }) if scheme == "ftp"
        ));
        assert!(matches!(
            WsUrl::parse("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            WsUrl::parse("ws://"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(WsUrl::parse(""), Err(Error::InvalidUrl { .. })));
    }

    #[test]
    fn redaction_removes_secrets() {
        let url = WsUrl::parse("ws://u:p@host:1/path?token=secret").unwrap();
        assert_eq!(url.redacted(), "ws://host:1/path");
        assert_eq!(url.as_str(), "ws://u:p@host:1/path?token=secret");
        assert_eq!(redact_url("ws://u:p@ho st/x?y"), "ws://ho st/x");
        assert_eq!(redact_url("garbage?secret"), "garbage");
        assert_eq!(redact_url("a@b/c@d?e"), "d");
        assert_eq!(redact_url("redis//:pw@host"), "host");
        assert_eq!(redact_url("ws://u:pw@[h/x@y:z"), "ws://y:z");
        // Unparsable, with a lenient number of slashes after the scheme (found by fuzzing).
        assert_eq!(redact_url("https:/u:p]@h$\0?b"), "https://h$/");
        assert_eq!(redact_url("wss:\\\\u:p@h\0/x@y"), "wss://y/");
        assert_eq!(redact_url("http:u:p@[::1/"), "http:[::1/");
        assert_eq!(redact_url("user:pass@[::1/"), "[::1/");
        assert_eq!(redact_url("https:a@//b@c@d"), "https://d/");
    }

    #[test]
    fn invalid_url_error_is_redacted() {
        let Err(Error::InvalidUrl { url, .. }) = WsUrl::parse("ws://u:secret@[bad/?t=1") else {
            panic!("expected InvalidUrl");
        };
        assert!(!url.contains("secret"), "{url}");
    }
}
