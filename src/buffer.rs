//! Appending a few bytes to a [`Bytes`] buffer without copying it when that can be avoided
//! (the trailer of a session frame goes behind the message's own payload).

use bytes::{Bytes, BytesMut};

/// Frames up to this size are copied into an [`Arena`]'s chunks (a 1 KiB message with its
/// session trailer fits); larger ones keep their own buffer.
pub(crate) const SMALL: usize = 1152;
/// Size of an arena's first chunk, and the most a chunk grows to.
const CHUNK: usize = 4 << 10;
const MAX_CHUNK: usize = 32 << 10;

/// Small frames, copied one after another into shared chunks: each frame is a [`Bytes`]
/// sharing its chunk, so building one allocates nothing (a chunk every few frames), and
/// cloning it (the replay buffer keeps the frame it sends) only counts a reference.
///
/// A chunk lives until its last frame is dropped. The replay buffer lets go of its frames in
/// order (as they are acknowledged), so what chunks hold beyond the frames still kept is at
/// most the chunk being filled and the one before it; the chunk being filled is kept for
/// reuse, and once every frame cut from it is gone, it is filled again from its start
/// instead of allocating a new one. While frames in flight keep a full chunk from being
/// reused, the next one is twice as large (up to [`MAX_CHUNK`]): a chunk of 4 KiB or more
/// is a large allocation for the allocator (glibc consolidates its small free blocks for
/// each), so a busy session should make few of them.
#[derive(Debug)]
pub(crate) struct Arena {
    chunk: BytesMut,
    /// Size of the next chunk allocated.
    next: usize,
}

impl Arena {
    /// An arena that allocates its first chunk when it first gets a frame.
    pub(crate) fn new() -> Self {
        Arena {
            chunk: BytesMut::new(),
            next: CHUNK,
        }
    }

    /// After a burst (nothing kept any more): lets go of a chunk grown past the first size,
    /// so that a quiet session holds at most one small chunk.
    pub(crate) fn trim(&mut self) {
        if self.next > 2 * CHUNK {
            *self = Arena::new();
        }
    }

    /// Lets go of the chunk being filled (a session without a connection writes nothing).
    pub(crate) fn release(&mut self) {
        *self = Arena::new();
    }

    /// `head ++ tail` in a new buffer: cut from a chunk when small, its own `Vec` otherwise.
    fn concat(&mut self, head: &[u8], tail: &[u8]) -> Bytes {
        let len = head.len() + tail.len();
        if len > SMALL {
            let mut vec = Vec::with_capacity(len);
            vec.extend_from_slice(head);
            vec.extend_from_slice(tail);
            return Bytes::from(vec);
        }
        // The chunk is refilled from its start when no frame cut from it is left.
        if self.chunk.capacity() - self.chunk.len() < len && !self.chunk.try_reclaim(len) {
            self.chunk = BytesMut::with_capacity(self.next);
            self.next = (self.next * 2).min(MAX_CHUNK);
        }
        self.chunk.extend_from_slice(head);
        self.chunk.extend_from_slice(tail);
        self.chunk.split().freeze()
    }
}

/// `bytes ++ tail`.
///
/// A small result is cut from `arena` (the payload is copied; see [`Arena`]). A larger one
/// is extended in place when nothing else shares the buffer: into its spare capacity, or by
/// growing the allocation (`realloc`, which the allocator can do without copying: glibc
/// remaps large blocks), so the payload is never copied. A shared buffer (the caller keeps a
/// clone, or it is part of a larger read buffer) cannot be written: it is copied once, into a
/// new buffer.
pub(crate) fn append(bytes: Bytes, tail: &[u8], arena: &mut Arena) -> Bytes {
    if bytes.len() + tail.len() <= SMALL {
        return arena.concat(&bytes, tail);
    }
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
        Err(shared) => arena.concat(&shared, tail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload too large for the arena, with `spare` bytes of room behind it.
    fn large(spare: usize) -> Vec<u8> {
        let mut vec = Vec::with_capacity(SMALL + 1 + spare);
        vec.resize(SMALL + 1, 7);
        vec
    }

    #[test]
    fn a_unique_large_buffer_is_extended_in_place() {
        let mut arena = Arena::new();
        // Spare capacity: written behind the payload.
        let vec = large(64);
        let at = vec.as_ptr();
        let out = append(Bytes::from(vec), b"tail", &mut arena);
        assert_eq!(&out[SMALL + 1..], b"tail");
        assert_eq!(out.as_ptr(), at, "not copied");

        // No spare capacity: the allocation grows (realloc).
        let out = append(Bytes::from(vec![7u8; 1 << 20]), b"tail", &mut arena);
        assert_eq!(out.len(), (1 << 20) + 4);
        assert_eq!(&out[1 << 20..], b"tail");
        let mut out = out;
        out.truncate(1 << 20);
        let again = append(out, b"longer", &mut arena);
        assert_eq!(again.len(), (1 << 20) + 6);
        assert_eq!(&again[1 << 20..], b"longer");

        // A truncated unique buffer gets its old tail's room back.
        let mut frame = append(Bytes::from(large(0)), b"-old", &mut arena);
        let at = frame.as_ptr();
        frame.truncate(SMALL + 1);
        let out = append(frame, b"-new", &mut arena);
        assert_eq!(&out[SMALL + 1..], b"-new");
        assert_eq!(out.as_ptr(), at, "rewritten in place");
    }

    #[test]
    fn a_shared_large_buffer_is_copied_and_left_alone() {
        let mut arena = Arena::new();
        let original = Bytes::from(large(64));
        let out = append(original.clone(), b"tail", &mut arena);
        assert_eq!(&out[..SMALL + 1], &original[..]);
        assert_eq!(&out[SMALL + 1..], b"tail");
        assert_ne!(out.as_ptr(), original.as_ptr());
        assert_eq!(original.len(), SMALL + 1);
        // A static buffer is never unique.
        let big: &'static [u8] = &[1u8; SMALL + 1];
        let out = append(Bytes::from_static(big), b"!", &mut arena);
        assert_eq!((out.len(), out[SMALL + 1]), (SMALL + 2, b'!'));
    }

    #[test]
    fn small_frames_are_cut_one_after_another_from_a_chunk() {
        let mut arena = Arena::new();
        // Shared or not, a small payload is copied into the arena and left alone.
        let shared = Bytes::from(vec![1u8, 2, 3]);
        let first = append(shared.clone(), b"tail", &mut arena);
        assert_eq!(&first[..], b"\x01\x02\x03tail");
        assert_eq!(&shared[..], &[1, 2, 3]);
        let second = append(Bytes::from_static(b"static"), b"!", &mut arena);
        assert_eq!(&second[..], b"static!");
        // The empty payload.
        let third = append(Bytes::new(), b"A0#", &mut arena);
        assert_eq!(&third[..], b"A0#");
        // Consecutive frames, in the same chunk: no allocation each.
        assert_eq!(second.as_ptr(), first.as_ptr().wrapping_add(first.len()));
        assert_eq!(third.as_ptr(), second.as_ptr().wrapping_add(second.len()));
        // Cloning a frame shares it.
        let clone = first.clone();
        assert_eq!(clone.as_ptr(), first.as_ptr());

        // A frame of exactly the limit still fits; the chunk fills up and a new one follows,
        // while frames of the old one stay intact.
        let mut frames = Vec::new();
        for i in 0..(2 * CHUNK / SMALL + 2) {
            let payload = vec![i as u8; SMALL - 1];
            frames.push(append(Bytes::from(payload), b"#", &mut arena));
        }
        for (i, frame) in frames.iter().enumerate() {
            assert_eq!(frame.len(), SMALL);
            assert!(frame[..SMALL - 1].iter().all(|&b| b == i as u8));
            assert_eq!(frame[SMALL - 1], b'#');
        }
        assert_eq!(&first[..], b"\x01\x02\x03tail");
        assert_eq!(&clone[..], b"\x01\x02\x03tail");
    }

    #[test]
    fn a_chunk_is_reused_once_its_frames_are_gone() {
        let mut arena = Arena::new();
        let frame = append(Bytes::from_static(b"abc"), b"1", &mut arena);
        let start = frame.as_ptr();
        drop(frame);
        // Fill the rest of the chunk, dropping every frame: the next chunk is the same one.
        let mut reused = false;
        for _ in 0..(2 * CHUNK / 100) {
            let frame = append(Bytes::from(vec![0u8; 99]), b"x", &mut arena);
            if frame.as_ptr() == start {
                reused = true;
                break;
            }
        }
        assert!(reused, "the chunk was filled again from its start");
    }

    #[test]
    fn a_grown_arena_is_trimmed_and_released() {
        let mut arena = Arena::new();
        // Frames kept alive make the arena grow chunk after chunk.
        let kept: Vec<Bytes> = (0..64)
            .map(|_| append(Bytes::from(vec![1u8; 1000]), b"x", &mut arena))
            .collect();
        assert!(arena.next > 2 * CHUNK);
        arena.trim();
        assert_eq!((arena.next, arena.chunk.capacity()), (CHUNK, 0));
        // The frames are untouched by it.
        assert!(kept.iter().all(|f| f.len() == 1001 && f[1000] == b'x'));
        // An arena still at its first size keeps its chunk; `release` lets go of it.
        let small = append(Bytes::from_static(b"abc"), b"1", &mut arena);
        arena.trim();
        assert!(arena.chunk.capacity() > 0);
        arena.release();
        assert_eq!(arena.chunk.capacity(), 0);
        assert_eq!(&small[..], b"abc1");
    }
}
