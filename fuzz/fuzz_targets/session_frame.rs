//! Frames of acknowledged sessions (`unisock.v1`, docs/session-protocol.md), as both the
//! client and `unisock serve` parse them from the peer.
//!
//! Properties: nothing panics; a message that decodes is exactly what encoding its frame
//! gives back (the encoding is canonical), with the same kind (text or binary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unisock::fuzzing::session_frame_roundtrip;

fuzz_target!(|data: &[u8]| {
    for (message, encoded) in session_frame_roundtrip(data) {
        assert_eq!(message, encoded);
    }
});
