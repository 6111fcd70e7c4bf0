//! `unisock serve`'s query strings (`?notify_self=…&client_id=…`, `POST /drop?client_id=…`)
//! and room names.
//!
//! Properties: nothing panics; every client id and room name accepted is 1-64 characters of
//! `[A-Za-z0-9_.-]` (safe in a path, a log line or a page as is).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unisock::server::fuzzing::{drop_query, is_valid_name, socket_query};

fn safe(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok((_notify_self, Some(client_id))) = socket_query(&input) {
        assert!(safe(&client_id), "{input:?} -> {client_id:?}");
    }
    if let Ok(client_id) = drop_query(&input) {
        assert!(safe(&client_id), "{input:?} -> {client_id:?}");
    }
    assert_eq!(is_valid_name(&input), safe(&input), "{input:?}");
});
