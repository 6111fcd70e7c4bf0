//! Validation of room names, client ids and the query flags of the WebSocket routes.

/// Longest room name or client id, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a valid room name or client id: 1 to 64 characters of `[A-Za-z0-9_.-]`.
/// Such a name is safe to put in a path, a log line or an HTML page as is.
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The query parameters the WebSocket routes understand; unknown ones are ignored (clients
/// may carry their own, such as tokens).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SocketParams {
    /// `notify_self`: whether a room sender gets its own messages back. Default `false`.
    pub(crate) notify_self: bool,
    /// `client_id`: a name for `POST /drop?client_id=…`.
    pub(crate) client_id: Option<String>,
}

impl SocketParams {
    /// Parses the raw query string (without `?`). The error is a message for the HTTP 400 body;
    /// it never echoes the query (which may carry secrets).
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, &'static str> {
        let mut params = SocketParams::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "notify_self" => params.notify_self = parse_flag(&value)?,
                "client_id" => params.client_id = Some(parse_client_id(&value)?),
                _ => {}
            }
        }
        Ok(params)
    }
}

/// Parses the `client_id` of `POST /drop?client_id=…`.
pub(crate) fn drop_target(query: Option<&str>) -> Result<String, &'static str> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "client_id")
        .ok_or("missing client_id query parameter")
        .and_then(|(_, value)| parse_client_id(&value))
}

fn parse_client_id(value: &str) -> Result<String, &'static str> {
    if is_valid_name(value) {
        Ok(value.to_owned())
    } else {
        Err("client_id must be 1-64 characters of A-Z a-z 0-9 _ . -")
    }
}

/// A boolean query flag: `true`/`1`/`yes`/`on` or bare (`?notify_self`), `false`/`0`/`no`/`off`.
fn parse_flag(value: &str) -> Result<bool, &'static str> {
    match value.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("notify_self must be true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("lobby"));
        assert!(is_valid_name("a.b-c_D9"));
        assert!(is_valid_name(&"x".repeat(64)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(65)));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("é"));
    }

    #[test]
    fn socket_params() {
        assert_eq!(SocketParams::parse(None), Ok(SocketParams::default()));
        let parsed = SocketParams::parse(Some("notify_self=true&client_id=tab-1&token=secret"));
        assert_eq!(
            parsed,
            Ok(SocketParams {
                notify_self: true,
                client_id: Some("tab-1".into())
            })
        );
        assert_eq!(
            SocketParams::parse(Some("notify_self=false")).map(|p| p.notify_self),
            Ok(false)
        );
        assert_eq!(
            SocketParams::parse(Some("notify_self")).map(|p| p.notify_self),
            Ok(true)
        );
        assert!(SocketParams::parse(Some("notify_self=maybe")).is_err());
        assert!(SocketParams::parse(Some("client_id=a%20b")).is_err());
    }

    #[test]
    fn drop_targets() {
        assert_eq!(drop_target(Some("client_id=x1")), Ok("x1".to_owned()));
        assert!(drop_target(None).is_err());
        assert!(drop_target(Some("client_id=")).is_err());
    }
}
