//! URL validation (what `unisock::connect` accepts) and redaction (`unisock::redact_url`,
//! used for every URL that is logged or put in an error).
//!
//! Properties: nothing panics; a redacted URL never carries a query string or a fragment,
//! nor userinfo when it parses; a URL that `connect` accepts is ws:// or wss:// with a host,
//! and its redacted form is what `redact_url` makes of it; an invalid-URL error names the
//! URL only in its redacted form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unisock::fuzzing::parse_ws_url;
use unisock::{redact_url, Error};

fn check_redacted(redacted: &str, input: &str) {
    assert!(
        !redacted.contains('?') && !redacted.contains('#'),
        "query or fragment kept: {input:?} -> {redacted:?}"
    );
    if let Ok(url) = url::Url::parse(redacted) {
        if url.has_host() {
            assert!(
                url.username().is_empty() && url.password().is_none(),
                "userinfo kept: {input:?} -> {redacted:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let redacted = redact_url(&input);
    check_redacted(&redacted, &input);

    match parse_ws_url(&input) {
        Ok(parsed) => {
            assert!(
                parsed.full.starts_with("ws://") || parsed.full.starts_with("wss://"),
                "{input:?} -> {parsed:?}"
            );
            assert_eq!(parsed.secure, parsed.full.starts_with("wss://"));
            assert!(!parsed.host.is_empty(), "{input:?} -> {parsed:?}");
            assert!(!parsed.full.contains('#'), "fragment kept: {parsed:?}");
            check_redacted(&parsed.redacted, &input);
            assert_eq!(parsed.redacted, redact_url(&parsed.full), "{input:?}");
            // What connect would open parses again to the same thing.
            assert_eq!(parse_ws_url(&parsed.full).as_ref(), Ok(&parsed));
        }
        Err(Error::InvalidUrl { url, .. }) => check_redacted(&url, &input),
        Err(Error::UnsupportedScheme { scheme }) => {
            assert!(!scheme.contains(':'), "{input:?} -> {scheme:?}")
        }
        Err(other) => panic!("unexpected error for {input:?}: {other:?}"),
    }
});
