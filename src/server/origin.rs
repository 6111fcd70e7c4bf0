//! The `Origin` allow-list (`--allowed-origin`): protection against cross-site WebSocket
//! hijacking and cross-site `POST /drop`.

use axum::http::{header, HeaderMap};

/// Origins allowed to talk to the server; empty allows every origin.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowedOrigins {
    /// Normalised (see [`normalize`]) allowed origins.
    origins: Vec<String>,
}

impl AllowedOrigins {
    /// Builds the list from the configured origins.
    pub(crate) fn new(origins: &[String]) -> Self {
        AllowedOrigins {
            origins: origins.iter().map(|o| normalize(o)).collect(),
        }
    }

    /// Whether a request with these headers may proceed: always when the list is empty or the
    /// request carries no `Origin` (not a browser); otherwise only when its `Origin` is listed.
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        if self.origins.is_empty() {
            return true;
        }
        let mut values = headers.get_all(header::ORIGIN).iter().peekable();
        if values.peek().is_none() {
            return true;
        }
        // Every Origin header present must be allowed (browsers send exactly one).
        values.all(|value| {
            value
                .to_str()
                .map(|origin| self.origins.contains(&normalize(origin)))
                .unwrap_or(false)
        })
    }
}

/// Origins compare case-insensitively (scheme and host are case-insensitive) and without a
/// trailing slash, which people often paste along.
fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether a configured origin looks like `scheme://host[:port]` (or the literal `null`
/// origin of sandboxed pages and `file:` URLs). Catches typos such as a pasted path.
pub(crate) fn is_well_formed(origin: &str) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if origin == "null" {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn empty_list_allows_everything() {
        let allowed = AllowedOrigins::new(&[]);
        assert!(allowed.allows(&headers(Some("https://evil.example"))));
        assert!(allowed.allows(&headers(None)));
    }

    #[test]
    fn listed_origins_only() {
        let allowed = AllowedOrigins::new(&["https://Good.example/".to_owned()]);
        assert!(allowed.allows(&headers(Some("https://good.example"))));
        assert!(!allowed.allows(&headers(Some("https://evil.example"))));
        assert!(!allowed.allows(&headers(Some("http://good.example"))));
        assert!(allowed.allows(&headers(None)), "non-browser clients pass");
    }

    #[test]
    fn well_formed() {
        assert!(is_well_formed("http://localhost:8080"));
        assert!(is_well_formed("https://example.com/"));
        assert!(is_well_formed("null"));
        assert!(!is_well_formed("example.com"));
        assert!(!is_well_formed("https://example.com/path"));
        assert!(!is_well_formed("https://"));
    }
}
