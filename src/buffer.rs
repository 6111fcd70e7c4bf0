//! Appending a few bytes to a [`Bytes`] buffer without copying it when that can be avoided
//! (the trailer of a session frame goes behind the message's own payload).

use bytes::Bytes;

/// `bytes ++ tail`.
///
/// When nothing else shares the buffer it is extended in place: into its spare capacity, or
/// by growing the allocation (`realloc`, which the allocator can do without copying: glibc
/// remaps large blocks), so the payload is never copied. A shared buffer (the caller keeps a
/// clone, or it is part of a larger read buffer) cannot be written: it is copied once, into a
/// new buffer.
pub(crate) fn append(bytes: Bytes, tail: &[u8]) -> Bytes {
    match bytes.try_into_mut() {
        Ok(mut unique) if unique.capacity() - unique.len() >= tail.len() => {
            unique.extend_from_slice(tail);
            unique.freeze()
        }
        Ok(unique) => {
            // No copy when the payload starts its allocation (the buffer of a `Vec` or
            // `String`): the Vec takes the allocation over as it is.
            let mut vec = Vec::from(unique);
            vec.reserve_exact(tail.len());
            vec.extend_from_slice(tail);
            Bytes::from(vec)
        }
        Err(shared) => {
            // Exactly the frame's size: `Bytes` then takes the `Vec` over without allocating
            // a header for it (that is what makes small frames cheap).
            let mut vec = Vec::with_capacity(shared.len() + tail.len());
            vec.extend_from_slice(&shared);
            vec.extend_from_slice(tail);
            Bytes::from(vec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_buffer_is_extended_in_place() {
        // Spare capacity: written behind the payload.
        let mut vec = Vec::with_capacity(64);
        vec.extend_from_slice(b"payload");
        let at = vec.as_ptr();
        let out = append(Bytes::from(vec), b"tail");
        assert_eq!(&out[..], b"payloadtail");
        assert_eq!(out.as_ptr(), at, "not copied");

        // No spare capacity: the allocation grows (realloc).
        let out = append(Bytes::from(vec![7u8; 1 << 20]), b"tail");
        assert_eq!(out.len(), (1 << 20) + 4);
        assert_eq!(&out[1 << 20..], b"tail");
        let mut out = out;
        out.truncate(1 << 20);
        let again = append(out, b"longer");
        assert_eq!(again.len(), (1 << 20) + 6);
        assert_eq!(&again[1 << 20..], b"longer");

        // A truncated unique buffer gets its old tail's room back.
        let mut frame = append(Bytes::from(b"abc".to_vec()), b"-old");
        let at = frame.as_ptr();
        frame.truncate(3);
        let out = append(frame, b"-new");
        assert_eq!(&out[..], b"abc-new");
        assert_eq!(out.as_ptr(), at, "rewritten in place");
    }

    #[test]
    fn a_shared_buffer_is_copied_and_left_alone() {
        let original = Bytes::from(vec![1u8, 2, 3]);
        let out = append(original.clone(), b"tail");
        assert_eq!(&out[..], b"\x01\x02\x03tail");
        assert_ne!(out.as_ptr(), original.as_ptr());
        assert_eq!(&original[..], &[1, 2, 3]);
        // A static buffer is never unique.
        let out = append(Bytes::from_static(b"static"), b"!");
        assert_eq!(&out[..], b"static!");
        // The empty payload.
        assert_eq!(&append(Bytes::new(), b"A0#")[..], b"A0#");
    }
}
