//! `unisock serve`'s reading of handshake headers: `Sec-WebSocket-Protocol` (subprotocol
//! selection) and `Origin` (the allow-list), with arbitrary bytes as header values.
//!
//! Properties: nothing panics; the selected subprotocol is one the server speaks and one the
//! client offered; an `Origin` passes a non-empty allow-list only if it is on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unisock::server::fuzzing::{is_well_formed_origin, origin_allowed, select_subprotocol};
use unisock::server::SUBPROTOCOLS;

fuzz_target!(|data: &[u8]| {
    // One header value per line.
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();

    if let Some(selected) = select_subprotocol(&values) {
        assert!(SUBPROTOCOLS.contains(&selected));
        let offered = values.iter().any(|value| {
            String::from_utf8_lossy(value)
                .split(',')
                .any(|item| item.trim() == selected)
        });
        assert!(offered, "{selected} was not offered in {values:?}");
    }

    let allowed = vec![
        "https://example.com".to_owned(),
        "http://localhost:8080".to_owned(),
    ];
    if origin_allowed(&allowed, &values) && !values.is_empty() {
        for value in &values {
            let Ok(text) = std::str::from_utf8(value) else {
                continue;
            };
            let origin = text.trim().trim_end_matches('/').to_ascii_lowercase();
            // Values hyper would refuse are not headers at all; the others must be listed.
            if axum_like_valid(value) {
                assert!(
                    allowed.contains(&origin),
                    "{text:?} passed the allow-list {allowed:?}"
                );
            }
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let _ = is_well_formed_origin(text);
    }
});

/// Whether `value` is a valid HTTP header value (visible ASCII, space, tab, obs-text; no
/// control characters).
fn axum_like_valid(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}
