//! [`Message`]: one WebSocket data message, text or binary.

use std::fmt;

use bytes::Bytes;

use crate::Utf8Bytes;

/// One complete WebSocket data message, as sent or received.
///
/// Control frames (ping, pong, close) never appear here: pings are answered for you and a
/// close arrives as [`Event::Close`](crate::Event::Close).
///
/// Payloads are reference-counted buffers ([`Utf8Bytes`], [`Bytes`]): cloning a message, and
/// handing it to or taking it from the connection (natively: tungstenite), shares the buffer
/// instead of copying it. So sending the same large payload many times costs no copies:
/// clone the message (or the `Bytes`).
///
/// ```
/// use unisock::{Bytes, Message};
///
/// let text = Message::text("hello");
/// let binary = Message::binary(vec![1u8, 2, 3]);
/// assert_eq!(text.as_text(), Some("hello"));
/// assert_eq!(binary.len(), 3);
/// // A borrowed slice is copied once, explicitly:
/// let buffer = [7u8; 64];
/// let copied = Message::binary(Bytes::copy_from_slice(&buffer[..10]));
/// assert_eq!(copied.len(), 10);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A UTF-8 text message (the browser's `string` data).
    Text(Utf8Bytes),
    /// A binary message (the browser's `ArrayBuffer` data).
    Binary(Bytes),
}

impl Message {
    /// A text message: from a `String` (no copy), a `&str` (copied) or a [`Utf8Bytes`].
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message: from a `Vec<u8>` (no copy), [`Bytes`], or a `&'static [u8]`. Copy a
    /// borrowed slice with [`Bytes::copy_from_slice`].
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Message::Binary(bytes.into())
    }

    /// Payload length in bytes (UTF-8 bytes for text).
    pub fn len(&self) -> usize {
        match self {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            Message::Binary(_) => None,
        }
    }

    /// The payload bytes (UTF-8 bytes for text).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload as [`Bytes`] (UTF-8 bytes for text), without copying. `Vec::from(bytes)`
    /// turns it into a `Vec<u8>` (without copying when the buffer is not shared).
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(text) => text.into(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// A text message holding `value` serialized as JSON.
    ///
    /// ```
    /// # #[cfg(feature = "json")] {
    /// let msg = unisock::Message::json(&[1, 2, 3]).unwrap();
    /// assert_eq!(msg.as_text(), Some("[1,2,3]"));
    /// let back: Vec<u32> = msg.parse_json().unwrap();
    /// assert_eq!(back, [1, 2, 3]);
    /// # }
    /// ```
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Message::text)
    }

    /// Parses the payload (text or binary) as JSON.
    #[cfg(feature = "json")]
    pub fn parse_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.as_bytes())
    }
}

impl fmt::Debug for Message {
    // Payloads can be megabytes: show the kind, the length and a short prefix only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREVIEW: usize = 32;
        match self {
            Message::Text(text) => {
                let mut end = text.len().min(PREVIEW);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let more = if end < text.len() { "…" } else { "" };
                write!(f, "Text({} bytes: {:?}{more})", text.len(), &text[..end])
            }
            Message::Binary(bytes) => {
                let end = bytes.len().min(PREVIEW);
                let more = if end < bytes.len() { "…" } else { "" };
                write!(
                    f,
                    "Binary({} bytes: {:02x?}{more})",
                    bytes.len(),
                    &bytes[..end]
                )
            }
        }
    }
}

/// A text message (no copy).
impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::text(text)
    }
}

/// A text message (the text is copied).
impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::text(text)
    }
}

/// A text message (no copy).
impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Message::Text(text)
    }
}

/// A binary message (no copy).
impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::binary(bytes)
    }
}

/// A binary message (the bytes are copied).
impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(bytes))
    }
}

/// A binary message (no copy).
impl From<Bytes> for Message {
    fn from(bytes: Bytes) -> Self {
        Message::Binary(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_short_and_respects_char_boundaries() {
        let long = "é".repeat(100);
        let shown = format!("{:?}", Message::text(long));
        assert!(shown.starts_with("Text(200 bytes: "));
        assert!(shown.len() < 80, "{shown}");
        let shown = format!("{:?}", Message::binary(vec![0xab; 1000]));
        assert!(shown.starts_with("Binary(1000 bytes: [ab, ab"));
    }

    #[test]
    fn conversions_keep_kind() {
        assert!(Message::from("a").is_text());
        assert!(Message::from(vec![1u8]).is_binary());
        assert_eq!(Message::text("abc").into_bytes(), &b"abc"[..]);
        assert!(Message::binary(Vec::new()).is_empty());
        assert!(Message::from(Bytes::from_static(b"x")).is_binary());
    }

    #[test]
    fn clones_share_the_payload() {
        let binary = Message::binary(vec![1u8; 4096]);
        assert_eq!(
            binary.clone().as_bytes().as_ptr(),
            binary.as_bytes().as_ptr()
        );
        let text = Message::text("x".repeat(4096));
        let bytes = text.clone().into_bytes();
        assert_eq!(bytes.as_ptr(), text.as_bytes().as_ptr());
    }
}
