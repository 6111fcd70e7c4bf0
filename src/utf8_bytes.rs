//! [`Utf8Bytes`]: the payload of a text message, a string that clones without copying.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;

/// An immutable UTF-8 string backed by [`Bytes`]: cloning, slicing and converting to and from
/// tungstenite's text payload share the buffer instead of copying it.
///
/// It reads like a `&str` (through `Deref`), compares with `str` / `&str` / `String`, and
/// converts from `String` (without copying) and `&str` (copied; use
/// [`Utf8Bytes::from_static`] for literals to avoid even that).
///
/// ```
/// use unisock::Utf8Bytes;
///
/// let text = Utf8Bytes::from("hello");
/// let shared = text.clone(); // no copy of the bytes
/// assert_eq!(shared, "hello");
/// assert_eq!(text.len(), 5);
/// assert!(text.starts_with("he"));
/// assert_eq!(String::from(text), "hello");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Utf8Bytes(
    // Invariant: valid UTF-8. Every constructor checks it or takes it from a `str`.
    Bytes,
);

impl Utf8Bytes {
    /// An empty string.
    pub const fn new() -> Self {
        Utf8Bytes(Bytes::new())
    }

    /// A string pointing at a `'static` literal: no allocation, no copy.
    pub const fn from_static(text: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(text.as_bytes()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor of `Utf8Bytes` takes its bytes from a `str`/`String`, checks
        // them with `std::str::from_utf8`, or (`from_tungstenite`) from tungstenite's `Utf8Bytes`
        // which upholds the same invariant; `truncate` keeps char boundaries; `append` adds a `str`. Nothing mutates
        // the bytes afterwards (`Bytes` is immutable).
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes, sharing the buffer.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Shortens the string to `len` bytes (no copy); `false` (and unchanged) when `len` is not
    /// a char boundary.
    pub(crate) fn truncate(&mut self, len: usize) -> bool {
        if !self.as_str().is_char_boundary(len) {
            return false;
        }
        self.0.truncate(len);
        true
    }

    /// `self ++ tail`; `self` is not copied when its buffer is not shared (see
    /// [`crate::buffer::append`]).
    pub(crate) fn append(self, tail: &str, arena: &mut crate::buffer::Arena) -> Self {
        // UTF-8 followed by UTF-8 is UTF-8: the invariant holds.
        Utf8Bytes(crate::buffer::append(self.0, tail.as_bytes(), arena))
    }

    /// tungstenite's text payload, sharing the buffer.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn into_tungstenite(self) -> tokio_tungstenite::tungstenite::Utf8Bytes {
        // SAFETY: `self.0` is valid UTF-8 (the invariant of this type), which is all
        // `from_bytes_unchecked` requires.
        unsafe { tokio_tungstenite::tungstenite::Utf8Bytes::from_bytes_unchecked(self.0) }
    }

    /// From tungstenite's text payload (valid UTF-8, checked when it was read), sharing the
    /// buffer.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn from_tungstenite(text: tokio_tungstenite::tungstenite::Utf8Bytes) -> Self {
        Utf8Bytes(Bytes::from(text))
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// Hash and order as the `str` they hold, as `Borrow<str>` requires.
impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Utf8Bytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Utf8Bytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for String {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

/// Takes over the string's buffer (no copy).
impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Utf8Bytes(Bytes::from(text))
    }
}

/// Copies the string (for a literal, [`Utf8Bytes::from_static`] does not).
impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }
}

/// Copies the string.
impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        Utf8Bytes::from(text.as_str())
    }
}

/// Takes over the string's buffer (no copy).
impl From<Box<str>> for Utf8Bytes {
    fn from(text: Box<str>) -> Self {
        Utf8Bytes::from(String::from(text))
    }
}

/// Checks the bytes are UTF-8; keeps the buffer (no copy).
impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Utf8Error;

    fn try_from(bytes: Bytes) -> Result<Self, Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }
}

/// Checks the bytes are UTF-8; keeps the buffer (no copy).
impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = std::string::FromUtf8Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        String::from_utf8(bytes).map(Utf8Bytes::from)
    }
}

/// The UTF-8 bytes, sharing the buffer.
impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.0
    }
}

/// Copies the string into a new `String`.
impl From<Utf8Bytes> for String {
    fn from(text: Utf8Bytes) -> Self {
        text.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn compares_hashes_and_orders_like_str() {
        let text = Utf8Bytes::from(String::from("héllo"));
        assert_eq!(text, "héllo");
        assert_eq!("héllo", text);
        assert_eq!(text, String::from("héllo"));
        assert_eq!(format!("{text} {text:?}"), "héllo \"héllo\"");
        let set: HashSet<Utf8Bytes> = [text.clone()].into();
        assert!(set.contains("héllo"), "Borrow<str> needs str's hash");
        assert!(Utf8Bytes::from_static("a") < Utf8Bytes::from_static("b"));
    }

    #[test]
    fn rejects_invalid_utf8_and_cuts_only_at_char_boundaries() {
        assert!(Utf8Bytes::try_from(Bytes::from_static(&[0xff])).is_err());
        assert!(Utf8Bytes::try_from(vec![0xc3]).is_err());
        let mut text = Utf8Bytes::try_from(Bytes::from("é!")).unwrap();
        assert!(!text.truncate(1));
        assert_eq!(text, "é!");
        assert!(text.truncate(2));
        assert_eq!(text, "é");
    }

    #[test]
    fn clones_and_conversions_share_the_buffer() {
        let text = Utf8Bytes::from(String::from("shared"));
        let clone = text.clone();
        assert_eq!(clone.as_ptr(), text.as_ptr());
        let bytes = Bytes::from(clone);
        assert_eq!(bytes.as_ptr(), text.as_ptr());
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn tungstenite_round_trip_shares_the_buffer() {
        let text = Utf8Bytes::from(String::from("to the wire"));
        let theirs = text.clone().into_tungstenite();
        assert_eq!(theirs.as_str().as_ptr(), text.as_ptr());
        let back = Utf8Bytes::from_tungstenite(theirs);
        assert_eq!(back.as_ptr(), text.as_ptr());
        assert_eq!(back, "to the wire");
    }
}
