//! Acknowledged sessions (`unisock.v1`, specified in docs/session-protocol.md): the frame
//! codec and the sequence / acknowledgement / replay-buffer state machine, shared by the
//! client (both targets) and `unisock serve`. Pure: no I/O, no clocks, no tasks, so that
//! every rule is unit-tested deterministically.
//!
//! Every frame under the subprotocol is `payload ++ trailer`. The trailer is ASCII: a tag
//! letter, fields as lower-case hex numbers separated by `.`, and one final length byte
//! (`0x20 + trailer length`, printable). A text frame therefore stays valid UTF-8 and its
//! payload is recovered by truncating the string in place (no copy); a binary frame keeps
//! its bytes. Data keep their WebSocket frame type (text or binary).

use std::collections::VecDeque;
use std::fmt;

use crate::buffer::Arena;
use crate::Message;

/// The subprotocol name that turns acknowledged sessions on.
pub const PROTOCOL: &str = "unisock.v1";

/// Longest resume token accepted, in bytes.
pub(crate) const MAX_TOKEN_LEN: usize = 64;

/// The peer broke the session protocol: the connection is closed with 1002.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation(pub(crate) &'static str);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session protocol ({PROTOCOL}) violation: {}", self.0)
    }
}

impl From<Violation> for crate::Error {
    fn from(violation: Violation) -> Self {
        crate::Error::Protocol {
            reason: violation.to_string(),
        }
    }
}

/// How the server answered a resume request (the `status` of a Welcome frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// No token offered: a new session.
    New = 0,
    /// The session was found and continues.
    Resumed = 1,
    /// The token is not known to this server (never issued, forged, or the server restarted):
    /// a new session.
    Unknown = 2,
    /// The token was issued by this server, but its session expired (grace period over) or
    /// was evicted: a new session.
    Expired = 3,
}

impl Status {
    fn from_u64(value: u64) -> Result<Self, Violation> {
        Ok(match value {
            0 => Status::New,
            1 => Status::Resumed,
            2 => Status::Unknown,
            3 => Status::Expired,
            _ => return Err(Violation("unknown welcome status")),
        })
    }
}

/// One frame of the session protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// An application message with its sequence number and a piggybacked cumulative ack.
    Data {
        seq: u64,
        ack: u64,
        message: Message,
    },
    /// A standalone cumulative ack.
    Ack { ack: u64 },
    /// A liveness probe carrying an ack; the peer answers with an `Ack`.
    Ping { ack: u64 },
    /// Client → server, first frame: resume `token` (empty: new session) and the last
    /// sequence number received in order from the server.
    Hello { token: String, received: u64 },
    /// Server → client, answer to `Hello`.
    Welcome {
        token: String,
        status: Status,
        /// The last client sequence number the server received in order.
        acked: u64,
        /// The sequence number of the first server message sent on this connection.
        next: u64,
    },
}

const LEN_BIAS: u8 = 0x20;
/// Longest trailer: 1 + 4 × 16 + 3 + 1 = 69 bytes.
const MAX_TRAILER: usize = 69;

/// The trailer `tag fields… len` (ASCII), built on the stack.
struct Trailer {
    bytes: [u8; MAX_TRAILER],
    len: usize,
}

impl Trailer {
    fn new(tag: u8, fields: &[u64]) -> Self {
        let mut trailer = Trailer {
            bytes: [0; MAX_TRAILER],
            len: 0,
        };
        trailer.push(tag);
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                trailer.push(b'.');
            }
            trailer.push_hex(*field);
        }
        // At most MAX_TRAILER bytes: the biased length stays printable ASCII.
        trailer.push(LEN_BIAS + (trailer.len + 1) as u8);
        trailer
    }

    fn push(&mut self, byte: u8) {
        // Callers pass at most 4 fields; a longer trailer is cut rather than panicking.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn push_hex(&mut self, value: u64) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // At least one digit (for 0); written straight into place, last digit first.
        let digits = (64 - (value | 1).leading_zeros()).div_ceil(4) as usize;
        let Some(slots) = self.bytes.get_mut(self.len..self.len + digits) else {
            return;
        };
        let mut rest = value;
        for slot in slots.iter_mut().rev() {
            *slot = DIGITS[(rest & 0xf) as usize];
            rest >>= 4;
        }
        self.len += digits;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// `payload ++ trailer`, of the payload's kind, and the trailer's length. A small frame is
/// cut from `arena`; a large payload is not copied when its buffer is not shared (WebSocket
/// needs the frame's payload in one piece): see [`crate::buffer::append`].
fn seal(payload: Message, tag: u8, fields: &[u64], arena: &mut Arena) -> (Message, usize) {
    let trailer = Trailer::new(tag, fields);
    let frame = match payload {
        Message::Text(text) => Message::Text(text.append(trailer.as_str(), arena)),
        Message::Binary(bytes) => {
            Message::Binary(crate::buffer::append(bytes, trailer.as_bytes(), arena))
        }
    };
    (frame, trailer.len)
}

/// The payload of a frame built by [`seal`] with a trailer of `trailer_len` bytes: the frame,
/// truncated (no copy).
fn unseal(frame: Message, trailer_len: usize) -> Message {
    let cut = frame.len().saturating_sub(trailer_len);
    match frame {
        Message::Text(mut text) => {
            // The trailer is ASCII and follows a whole string: `cut` is a char boundary.
            let _ = text.truncate(cut);
            Message::Text(text)
        }
        Message::Binary(mut bytes) => {
            bytes.truncate(cut);
            Message::Binary(bytes)
        }
    }
}

/// A control frame: `token ++ trailer`, always text.
fn seal_control(token: &str, tag: u8, fields: &[u64]) -> Message {
    let trailer = Trailer::new(tag, fields);
    let mut out = String::with_capacity(token.len() + trailer.len);
    out.push_str(token);
    out.push_str(trailer.as_str());
    Message::text(out)
}

impl Frame {
    /// The frame as a WebSocket message.
    pub(crate) fn encode(self) -> Message {
        match self {
            Frame::Data { seq, ack, message } => {
                seal(message, b'D', &[seq, ack], &mut Arena::new()).0
            }
            Frame::Ack { ack } => seal_control("", b'A', &[ack]),
            Frame::Ping { ack } => seal_control("", b'P', &[ack]),
            Frame::Hello { token, received } => seal_control(&token, b'H', &[received]),
            Frame::Welcome {
                token,
                status,
                acked,
                next,
            } => seal_control(&token, b'W', &[status as u64, acked, next]),
        }
    }

    /// Parses a WebSocket message received under the subprotocol. Never panics; anything
    /// malformed is a [`Violation`].
    pub(crate) fn decode(message: Message) -> Result<Frame, Violation> {
        let bytes = message.as_bytes();
        let Some(&last) = bytes.last() else {
            return Err(Violation("empty frame"));
        };
        let len = usize::from(last.wrapping_sub(LEN_BIAS));
        if !(2..=69).contains(&len) || len > bytes.len() || last >= 0x7f {
            return Err(Violation("bad trailer length"));
        }
        let cut = bytes.len() - len;
        let tag = bytes[cut];
        let (fields, count) = parse_fields(&bytes[cut + 1..bytes.len() - 1])?;
        let fields = &fields[..count];
        let is_text = message.is_text();
        let payload = match message {
            // Truncating shares the buffer: the payload is not copied.
            Message::Text(mut text) => {
                // The trailer is ASCII (checked above), so `cut` is a char boundary.
                if !text.truncate(cut) {
                    return Err(Violation("trailer splits a character"));
                }
                Message::Text(text)
            }
            Message::Binary(mut bytes) => {
                bytes.truncate(cut);
                Message::Binary(bytes)
            }
        };
        let control_token = |payload: Message| -> Result<String, Violation> {
            match payload {
                Message::Text(token) if is_text => {
                    if token.len() > MAX_TOKEN_LEN
                        || !token
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        return Err(Violation("malformed resume token"));
                    }
                    Ok(token.as_str().to_owned())
                }
                _ => Err(Violation("control frame must be a text frame")),
            }
        };
        let frame = match (tag, fields) {
            (b'D', &[seq, ack]) if seq > 0 => Frame::Data {
                seq,
                ack,
                message: payload,
            },
            (b'A', &[ack]) if payload.is_empty() && is_text => Frame::Ack { ack },
            (b'P', &[ack]) if payload.is_empty() && is_text => Frame::Ping { ack },
            (b'H', &[received]) => Frame::Hello {
                token: control_token(payload)?,
                received,
            },
            (b'W', &[status, acked, next]) if next > 0 => Frame::Welcome {
                token: control_token(payload)?,
                status: Status::from_u64(status)?,
                acked,
                next,
            },
            _ => return Err(Violation("unknown frame or wrong fields")),
        };
        Ok(frame)
    }
}

/// Value of each byte as a hex digit (`0..=15`), `0xff` for anything else.
const HEX: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// The numbers of a trailer (at most 4, no allocation) and how many there are. Every message
/// is parsed here, on both sides: one pass over the bytes, one table look-up each.
fn parse_fields(bytes: &[u8]) -> Result<([u64; 4], usize), Violation> {
    const MALFORMED: Violation = Violation("malformed number");
    let mut fields = [0u64; 4];
    if bytes.is_empty() {
        return Ok((fields, 0));
    }
    let mut count = 0;
    let mut value = 0u64;
    let mut digits = 0usize;
    for &b in bytes {
        let digit = HEX[usize::from(b)];
        if digit <= 0xf {
            // Bits shifted out of a too long number do not matter: it is refused below.
            value = (value << 4) | u64::from(digit);
            digits += 1;
        } else if b == b'.' {
            if !canonical(value, digits) {
                return Err(MALFORMED);
            }
            // A fifth number follows.
            let Some(slot) = fields.get_mut(count).filter(|_| count < 3) else {
                return Err(Violation("too many fields"));
            };
            *slot = value;
            count += 1;
            value = 0;
            digits = 0;
        } else {
            return Err(MALFORMED);
        }
    }
    if !canonical(value, digits) {
        return Err(MALFORMED);
    }
    // At most 3 before the last one: `count < 4`.
    if let Some(slot) = fields.get_mut(count) {
        *slot = value;
    }
    Ok((fields, count + 1))
}

/// Whether `digits` hex digits that make `value` are a number as [`Trailer`] writes it: 1 to
/// 16 digits, no leading zero (the first digit of several is not 0).
fn canonical(value: u64, digits: usize) -> bool {
    match digits {
        1 => true,
        2..=16 => value >> (4 * (digits - 1)) != 0,
        _ => false,
    }
}

/// Bounds of a replay buffer: messages sent and not acknowledged yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
}

/// What happened to an incoming data frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// The next message in order: deliver it.
    New,
    /// Already received (a resend after a reconnect): drop it.
    Duplicate,
}

/// A message kept for replay: its last frame (`payload ++ trailer`) once it was sent, its bare
/// payload before.
#[derive(Debug)]
struct Kept {
    frame: Message,
    /// Length of the trailer behind the payload (0: not sent yet).
    trailer_len: usize,
}

impl Kept {
    fn payload_len(&self) -> usize {
        self.frame.len() - self.trailer_len
    }

    fn into_payload(self) -> Message {
        unseal(self.frame, self.trailer_len)
    }
}

/// One direction pair of a session: sequence numbers and the replay buffer of what this side
/// sent, and the in-order receive position (for dedupe and acks) of what it received.
#[derive(Debug)]
pub(crate) struct AckState {
    limits: Limits,
    /// Sequence number the next pushed message gets (starts at 1).
    next_seq: u64,
    /// Sent and not acknowledged, by consecutive sequence number from `first_unacked`.
    unacked: VecDeque<Kept>,
    unacked_bytes: usize,
    /// Sequence number of `unacked[0]` (or `next_seq` when empty).
    first_unacked: u64,
    /// Last sequence number received in order from the peer.
    received: u64,
    /// `received` as last told to the peer.
    ack_sent: u64,
    /// Where the frames of small messages are built (see [`Arena`]).
    arena: Arena,
}

impl AckState {
    /// A fresh session: nothing sent, nothing received.
    pub(crate) fn new(limits: Limits) -> Self {
        AckState {
            limits,
            next_seq: 1,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            first_unacked: 1,
            received: 0,
            ack_sent: 0,
            arena: Arena::new(),
        }
    }

    /// A session rebuilt elsewhere (the server resuming another server's session from Redis):
    /// its next message gets `next_seq`, and everything up to `received` was received.
    #[cfg(feature = "server")]
    pub(crate) fn resumed_at(limits: Limits, next_seq: u64, received: u64) -> Self {
        let next_seq = next_seq.max(1);
        AckState {
            limits,
            next_seq,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            first_unacked: next_seq,
            received,
            ack_sent: received,
            arena: Arena::new(),
        }
    }

    /// Whether a message of `size` bytes fits into the replay buffer (one message of any size
    /// fits into an empty one).
    pub(crate) fn has_room(&self, size: usize) -> bool {
        self.unacked.is_empty()
            || (self.unacked.len() < self.limits.max_messages
                && self.unacked_bytes.saturating_add(size) <= self.limits.max_bytes)
    }

    /// Keeps `message` for replay until acknowledged; returns its sequence number.
    pub(crate) fn push(&mut self, message: Message) -> u64 {
        self.keep(Kept {
            frame: message,
            trailer_len: 0,
        })
    }

    /// Keeps `message` for replay and returns its sequence number and its frame, sealed with
    /// the current ack: [`AckState::push`] and then [`AckState::data_frame`], in one step.
    pub(crate) fn push_framed(&mut self, message: Message) -> (u64, Message) {
        let (frame, trailer_len) = seal(
            message,
            b'D',
            &[self.next_seq, self.received],
            &mut self.arena,
        );
        self.ack_sent = self.received;
        let seq = self.keep(Kept {
            frame: frame.clone(),
            trailer_len,
        });
        (seq, frame)
    }

    /// Gives the next sequence number to `kept` and keeps it for replay.
    fn keep(&mut self, kept: Kept) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked_bytes += kept.payload_len();
        self.unacked.push_back(kept);
        seq
    }

    /// Pushes `message` and hands its frame to `write`, as one step: when `write` fails, the
    /// message is taken back (as if never pushed) and returned, for the caller to queue it.
    pub(crate) fn push_and_write<E>(
        &mut self,
        message: Message,
        write: impl FnOnce(Message) -> Result<(), E>,
    ) -> Result<(), Message> {
        let ack_sent = self.ack_sent;
        let (_, frame) = self.push_framed(message);
        if write(frame).is_ok() {
            return Ok(());
        }
        self.ack_sent = ack_sent;
        self.next_seq -= 1;
        let kept = self.unacked.pop_back().expect("the message just pushed");
        self.unacked_bytes -= kept.payload_len();
        Err(kept.into_payload())
    }

    /// Like [`AckState::push`], but makes room by dropping the oldest unacknowledged messages
    /// (the server's policy for a client that is away or too slow: a gap, reported to the
    /// client when it resumes, instead of unbounded memory).
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's policy
    pub(crate) fn push_evicting(&mut self, message: Message) -> u64 {
        self.make_room(message.len());
        self.push(message)
    }

    /// [`AckState::push_evicting`] and then [`AckState::data_frame`], in one step (see
    /// [`AckState::push_framed`]).
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's policy
    pub(crate) fn push_evicting_framed(&mut self, message: Message) -> (u64, Message) {
        self.make_room(message.len());
        self.push_framed(message)
    }

    /// Drops the oldest unacknowledged messages until one of `size` bytes fits.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's policy
    fn make_room(&mut self, size: usize) {
        while !self.has_room(size) {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) -> bool {
        let Some(kept) = self.unacked.pop_front() else {
            return false;
        };
        self.unacked_bytes -= kept.payload_len();
        self.first_unacked += 1;
        true
    }

    /// Lets go of the memory kept for building frames (not of the frames kept for replay):
    /// for a session whose connection is gone.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's detached sessions
    pub(crate) fn release_buffers(&mut self) {
        self.arena.release();
    }

    /// The peer acknowledges everything up to `ack`. Older (stale) acks are ignored; an ack of
    /// something never sent is a violation.
    pub(crate) fn on_ack(&mut self, ack: u64) -> Result<(), Violation> {
        if ack >= self.next_seq {
            return Err(Violation("ack of a message never sent"));
        }
        while self.first_unacked <= ack && self.drop_oldest() {}
        // After evictions the buffer may start above `ack`; nothing more to free then.
        if self.unacked.is_empty() {
            self.arena.trim();
        }
        Ok(())
    }

    /// A data frame with sequence number `seq` arrived.
    pub(crate) fn on_data(&mut self, seq: u64) -> Result<Received, Violation> {
        if seq <= self.received {
            Ok(Received::Duplicate)
        } else if seq == self.received + 1 {
            self.received = seq;
            Ok(Received::New)
        } else {
            Err(Violation("sequence number skips ahead"))
        }
    }

    /// The data frame of message `seq` from the replay buffer, with the current ack. `None`
    /// once the message has been acknowledged (nothing to send).
    ///
    /// The frame is kept in the buffer in place of the payload and shares it with the
    /// returned one. Its payload is not copied when nothing else holds its buffer: a message
    /// whose sender let go of it, or the frame of an earlier send that the connection let go of
    /// (a resend, sealed again with the new ack); otherwise it is copied once (see [`seal`]).
    pub(crate) fn data_frame(&mut self, seq: u64) -> Option<Message> {
        let index = usize::try_from(seq.checked_sub(self.first_unacked)?).ok()?;
        let kept = self.unacked.get_mut(index)?;
        // Moved out (not cloned), so that the buffer can be unique.
        let last = std::mem::replace(&mut kept.frame, Message::Binary(bytes::Bytes::new()));
        let (frame, trailer_len) = seal(
            unseal(last, kept.trailer_len),
            b'D',
            &[seq, self.received],
            &mut self.arena,
        );
        kept.frame = frame.clone();
        kept.trailer_len = trailer_len;
        self.ack_sent = self.received;
        Some(frame)
    }

    /// A standalone ack of everything received so far.
    pub(crate) fn ack_frame(&mut self) -> Message {
        self.ack_sent = self.received;
        Frame::Ack { ack: self.received }.encode()
    }

    /// A ping (answered by an ack), carrying our own ack.
    pub(crate) fn ping_frame(&mut self) -> Message {
        self.ack_sent = self.received;
        Frame::Ping { ack: self.received }.encode()
    }

    /// Messages received since the peer was last told.
    pub(crate) fn ack_due(&self) -> u64 {
        self.received - self.ack_sent
    }

    /// The peer was told nothing on this connection yet (a new connection starts unacked).
    pub(crate) fn reset_ack_sent(&mut self) {
        self.ack_sent = 0;
    }

    /// Last sequence number received in order.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Sequence number the next pushed message gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Sequence number of the oldest message still kept for replay (`next_seq` if none).
    pub(crate) fn first_unacked(&self) -> u64 {
        self.first_unacked
    }

    /// Messages kept for replay.
    pub(crate) fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Bytes kept for replay.
    #[cfg(test)]
    pub(crate) fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    /// Message `seq` in the replay buffer.
    #[cfg(test)]
    pub(crate) fn unacked(&self, seq: u64) -> Option<Message> {
        let index = seq.checked_sub(self.first_unacked)?;
        let kept = self.unacked.get(usize::try_from(index).ok()?)?;
        Some(unseal(kept.frame.clone(), kept.trailer_len))
    }

    /// Continues after the peer lost messages up to `next - 1` (a gap it was told about):
    /// the next message expected in order is `next`.
    pub(crate) fn skip_to(&mut self, next: u64) {
        self.received = self.received.max(next.saturating_sub(1));
    }

    /// Moves the whole state out, leaving a fresh one behind (same limits).
    pub(crate) fn take(&mut self) -> AckState {
        let fresh = AckState::new(self.limits);
        std::mem::replace(self, fresh)
    }

    /// Ends this session: returns the messages never acknowledged (with the sequence number
    /// of the first) and starts over from sequence number 1.
    pub(crate) fn take_unacked(&mut self) -> (u64, Vec<Message>) {
        let first = self.first_unacked;
        let messages = std::mem::take(&mut self.unacked)
            .into_iter()
            .map(Kept::into_payload)
            .collect();
        *self = AckState::new(self.limits);
        (first, messages)
    }
}

/// What the client makes of a Welcome frame (the server's answer to its resume request).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resumption {
    /// Whether the previous session continues.
    pub(crate) resumed: bool,
    /// Server messages that may be lost: `(first, last)`, `last` unknown when the session is
    /// gone.
    pub(crate) incoming_gap: Option<(u64, Option<u64>)>,
    /// Client messages sent but never acknowledged, handed back (first sequence number and the
    /// messages) because the session they belong to is gone.
    pub(crate) outgoing_gap: Option<(u64, Vec<Message>)>,
    /// Why the session is gone, when it is.
    pub(crate) status: Status,
}

/// The client's side of a session across connections.
#[derive(Debug)]
pub(crate) struct ClientSession {
    pub(crate) token: Option<String>,
    pub(crate) state: AckState,
}

impl ClientSession {
    pub(crate) fn new(limits: Limits) -> Self {
        ClientSession {
            token: None,
            state: AckState::new(limits),
        }
    }

    /// The first frame on a new connection.
    pub(crate) fn hello(&self) -> Message {
        Frame::Hello {
            token: self.token.clone().unwrap_or_default(),
            received: self.state.received,
        }
        .encode()
    }

    /// Applies the server's Welcome. Afterwards every unacknowledged message (from
    /// `state.first_unacked()`) is to be resent, in order, before new ones.
    pub(crate) fn welcome(
        &mut self,
        token: String,
        status: Status,
        acked: u64,
        next: u64,
    ) -> Result<Resumption, Violation> {
        if token.is_empty() {
            return Err(Violation("welcome without a token"));
        }
        let state = &mut self.state;
        state.reset_ack_sent();
        if status == Status::Resumed {
            if self.token.as_deref() != Some(token.as_str()) {
                return Err(Violation("resumed a session that was not asked for"));
            }
            if acked < state.first_unacked.saturating_sub(1) {
                return Err(Violation("resumed acknowledgement went backwards"));
            }
            state.on_ack(acked)?;
            if next <= state.received {
                return Err(Violation("resume starts before what was received"));
            }
            let incoming_gap = (next > state.received + 1).then(|| {
                let gap = (state.received + 1, Some(next - 1));
                state.skip_to(next);
                gap
            });
            return Ok(Resumption {
                resumed: true,
                incoming_gap,
                outgoing_gap: None,
                status,
            });
        }
        if next != 1 || acked != 0 {
            return Err(Violation("a new session starts at sequence number 1"));
        }
        let had_session = self.token.is_some();
        let received = state.received;
        let (first, messages) = state.take_unacked();
        self.token = Some(token);
        Ok(Resumption {
            resumed: false,
            incoming_gap: had_session.then_some((received + 1, None)),
            outgoing_gap: (!messages.is_empty()).then_some((first, messages)),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Utf8Bytes;

    const LIMITS: Limits = Limits {
        max_messages: 4,
        max_bytes: 100,
    };

    fn roundtrip(frame: Frame) {
        let encoded = frame.clone().encode();
        assert_eq!(Frame::decode(encoded).unwrap(), frame);
    }

    #[test]
    fn frames_roundtrip_and_keep_their_kind() {
        for seq in [1, 9, 15, 16, 255, 1 << 32, u64::MAX] {
            roundtrip(Frame::Data {
                seq,
                ack: seq / 2,
                message: Message::text("héllo ✓"),
            });
            roundtrip(Frame::Data {
                seq,
                ack: 0,
                message: Message::binary(vec![0xff, 0x00, 0x44, 0x20]),
            });
        }
        roundtrip(Frame::Data {
            seq: 1,
            ack: 0,
            message: Message::text(""),
        });
        roundtrip(Frame::Ack { ack: 77 });
        roundtrip(Frame::Ping { ack: 0 });
        roundtrip(Frame::Hello {
            token: String::new(),
            received: 0,
        });
        roundtrip(Frame::Welcome {
            token: "abc-123".into(),
            status: Status::Expired,
            acked: u64::MAX,
            next: u64::MAX,
        });
        let data = Frame::Data {
            seq: 0x1a,
            ack: 3,
            message: Message::text("x"),
        }
        .encode();
        assert_eq!(data, Message::text("xD1a.3&"));
    }

    #[test]
    fn hostile_frames_are_violations_not_panics() {
        let bad: Vec<Message> = vec![
            Message::text(""),
            Message::binary(Vec::new()),
            Message::text("x"),
            Message::text("\u{7f}"),
            Message::binary(vec![0xff]),
            Message::text("D1.2\""), // length 2 but 5 bytes of trailer
            Message::text("D01.2&"), // leading zero
            Message::text("DG.2%"),  // not hex
            Message::text("D1#"),    // too few fields
            Message::text("D0.0%"),  // seq 0
            Message::text("Z1.2%"),  // unknown tag
            Message::text("yA1#"),   // ack with payload
            Message::binary(b"A1#".to_vec()), // control frame as binary
            Message::text("bad tokenH0#"),
            Message::text(format!("{}H0#", "a".repeat(65))),
            Message::text("tokW9.0.1'"),            // unknown status
            Message::text("D11111111111111111.05"), // 17 digits
        ];
        for message in bad {
            assert!(Frame::decode(message.clone()).is_err(), "{message:?}");
        }
        // Every truncation and single-byte corruption of a valid frame decodes or fails cleanly.
        let valid = Frame::Data {
            seq: 300,
            ack: 7,
            message: Message::binary(vec![1, 2, 3]),
        }
        .encode()
        .into_bytes()
        .to_vec();
        // What decodes is canonical: encoding the frame again gives the same message.
        let check = |message: Message| {
            if let Ok(frame) = Frame::decode(message.clone()) {
                assert_eq!(frame.encode(), message);
            }
        };
        for cut in 0..valid.len() {
            check(Message::binary(valid[..cut].to_vec()));
            for byte in [0u8, b'.', b'D', b'0', 0x7f, 0x80, b'a', b'#'] {
                let mut corrupt = valid.clone();
                corrupt[cut] = byte;
                check(Message::binary(corrupt));
            }
        }
    }

    #[test]
    fn in_order_delivery_drops_duplicates_and_refuses_skips() {
        let mut state = AckState::new(LIMITS);
        assert_eq!(state.on_data(1), Ok(Received::New));
        assert_eq!(state.on_data(2), Ok(Received::New));
        assert_eq!(state.on_data(1), Ok(Received::Duplicate));
        assert_eq!(state.on_data(2), Ok(Received::Duplicate));
        assert!(state.on_data(4).is_err());
        assert_eq!(state.received(), 2);
        assert_eq!(state.ack_due(), 2);
        let frame = state.ack_frame();
        assert_eq!(Frame::decode(frame).unwrap(), Frame::Ack { ack: 2 });
        assert_eq!(state.ack_due(), 0);
    }

    #[test]
    fn acks_free_the_replay_buffer_and_bound_it() {
        let mut state = AckState::new(LIMITS);
        for i in 0..4 {
            assert!(state.has_room(10));
            assert_eq!(state.push(Message::text(i.to_string())), i + 1);
        }
        assert!(!state.has_room(1), "count bound");
        assert!(state.on_ack(5).is_err(), "ack of an unsent message");
        state.on_ack(2).unwrap();
        assert_eq!(state.first_unacked(), 3);
        assert_eq!(state.unacked(3), Some(Message::text("2")));
        assert_eq!(state.unacked(2), None);
        state.on_data(1).unwrap();
        assert_eq!(
            Frame::decode(state.data_frame(3).unwrap()).unwrap(),
            Frame::Data {
                seq: 3,
                ack: 1,
                message: Message::text("2")
            }
        );
        assert_eq!(state.ack_due(), 0, "the frame carried the ack");
        assert_eq!(state.data_frame(2), None, "acknowledged: nothing to send");
        state.on_ack(1).unwrap(); // stale: ignored
        assert_eq!(state.unacked_len(), 2);
        // Byte bound: one message of any size fits an empty buffer, not a full one.
        state.on_ack(4).unwrap();
        assert!(state.has_room(1000));
        state.push(Message::binary(vec![0; 1000]));
        assert!(!state.has_room(1));
    }

    #[test]
    fn a_failed_write_takes_the_push_back() {
        let mut state = AckState::new(LIMITS);
        state.on_data(1).unwrap();
        let mut written = Vec::new();
        let ok = state.push_and_write(Message::text("a"), |frame| {
            written.push(frame);
            Ok::<(), ()>(())
        });
        assert_eq!(ok, Ok(()));
        assert_eq!(decode_data(written[0].clone()), (1, 1, Message::text("a")));
        state.on_data(2).unwrap();
        let failed = state.push_and_write(Message::text("bé"), |_| Err(()));
        assert_eq!(failed, Err(Message::text("bé")), "the bare payload back");
        assert_eq!((state.next_seq(), state.unacked_len()), (2, 1));
        assert_eq!(state.unacked_bytes(), 1);
        assert_eq!(state.ack_due(), 1, "the peer was not told");
        // The next message gets the number the failed one had.
        state
            .push_and_write(Message::text("c"), |frame| {
                written.push(frame);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(decode_data(written[1].clone()), (2, 2, Message::text("c")));
    }

    #[test]
    fn evicting_push_drops_oldest_and_counts() {
        let mut state = AckState::new(LIMITS);
        for i in 0..6u8 {
            state.push_evicting(Message::binary(vec![i]));
        }
        assert_eq!(state.first_unacked(), 3);
        assert_eq!(state.unacked_len(), 4);
        assert_eq!(state.unacked_bytes(), 4);
        // An ack below the buffer start (evicted ones) is fine.
        state.on_ack(2).unwrap();
        assert_eq!(state.first_unacked(), 3);
    }

    fn decode_data(frame: Message) -> (u64, u64, Message) {
        match Frame::decode(frame).unwrap() {
            Frame::Data { seq, ack, message } => (seq, ack, message),
            other => panic!("not data: {other:?}"),
        }
    }

    /// Limits that let large messages into the replay buffer.
    const BIG: Limits = Limits {
        max_messages: 8,
        max_bytes: 1 << 24,
    };

    #[test]
    fn frames_of_unshared_large_payloads_reuse_their_buffer() {
        let large = crate::buffer::SMALL + 1;
        let mut state = AckState::new(BIG);
        // A binary payload with spare room (as a `Vec` built by pushing has).
        let mut vec = Vec::with_capacity(large + 64);
        vec.resize(large, b'a');
        let at = vec.as_ptr();
        let seq = state.push(Message::binary(vec));
        let frame = state.data_frame(seq).unwrap();
        assert_eq!(frame.as_bytes().as_ptr(), at, "sealed in place");
        assert_eq!(
            decode_data(frame.clone()),
            (1, 0, Message::binary(vec![b'a'; large]))
        );
        // Text, with a multi-byte character right before the trailer: still valid UTF-8.
        let mut text = String::with_capacity(large + 64);
        while text.len() < large - "✓".len() {
            text.push('é');
        }
        text.push('✓');
        let at = text.as_ptr();
        let expected = text.clone();
        let seq = state.push(Message::text(text));
        let text_frame = state.data_frame(seq).unwrap();
        assert_eq!(text_frame.as_bytes().as_ptr(), at, "sealed in place");
        assert!(text_frame.as_text().unwrap().ends_with("✓D2.0%"));
        assert_eq!(decode_data(text_frame.clone()).2, Message::text(&*expected));
        // The buffer keeps the frame; the payload is what is handed back.
        assert_eq!(state.unacked(2), Some(Message::text(&*expected)));
        assert_eq!(state.unacked_bytes(), large + expected.len());

        // A resend after the connection let go of the frame: the trailer is rewritten in place
        // with the current ack (one more digit than before).
        drop(text_frame);
        for seq in 1..=16 {
            state.on_data(seq).unwrap();
        }
        let resent = state.data_frame(2).unwrap();
        assert_eq!(resent.as_bytes().as_ptr(), at, "resealed in place");
        assert_eq!(
            decode_data(resent.clone()),
            (2, 16, Message::text(&*expected))
        );
        // While something still holds the frame, a resend copies and leaves it alone.
        state.on_data(17).unwrap();
        let again = state.data_frame(2).unwrap();
        assert_ne!(again.as_bytes().as_ptr(), at);
        assert_eq!(decode_data(again).1, 17);
        assert_eq!(decode_data(resent).1, 16, "the held frame is unchanged");

        // A payload without spare room grows; a big one is not copied (realloc), whatever the
        // allocator does with the address: only the content can be checked here.
        let seq = state.push(Message::binary(vec![9u8; 1 << 16]));
        let frame = state.data_frame(seq).unwrap();
        let (_, _, payload) = decode_data(frame);
        assert_eq!(payload, Message::binary(vec![9u8; 1 << 16]));

        // Ending the session hands back the bare payloads.
        state.on_ack(1).unwrap();
        let (first, messages) = state.take_unacked();
        assert_eq!(first, 2);
        assert_eq!(
            messages,
            vec![
                Message::text(&*expected),
                Message::binary(vec![9u8; 1 << 16])
            ]
        );
    }

    #[test]
    fn frames_of_small_payloads_are_cut_from_one_buffer_and_shared_with_the_replay_buffer() {
        let mut state = AckState::new(LIMITS);
        let binary = Message::binary(vec![1u8, 2, 3]);
        let b = state.push(binary.clone());
        let t = state.push(Message::text("héllo ✓"));
        let first = state.data_frame(b).unwrap();
        let second = state.data_frame(t).unwrap();
        // One after the other in the same buffer: no allocation per frame.
        assert_eq!(
            second.as_bytes().as_ptr(),
            first.as_bytes().as_ptr().wrapping_add(first.len())
        );
        assert_eq!(decode_data(first.clone()), (1, 0, binary.clone()));
        assert_eq!(second.as_text(), Some("héllo ✓D2.0%"));
        // The replay buffer keeps the very frame that was sent (shared, not copied).
        let kept = &state.unacked[1].frame;
        assert_eq!(kept.as_bytes().as_ptr(), second.as_bytes().as_ptr());
        assert_eq!(kept, &second);
        assert_eq!(state.unacked(2), Some(Message::text("héllo ✓")));

        // After a reconnect the resend carries the same payload with the current ack, and
        // leaves the frame sent before alone.
        for seq in 1..=20 {
            state.on_data(seq).unwrap();
        }
        state.reset_ack_sent();
        let resent = state.data_frame(b).unwrap();
        assert_eq!(decode_data(resent), (1, 20, binary.clone()));
        let resent = state.data_frame(t).unwrap();
        assert_eq!(resent.as_text(), Some("héllo ✓D2.14&"));
        assert_eq!(decode_data(first).1, 0, "the first frame is unchanged");
        assert_eq!(second.as_text(), Some("héllo ✓D2.0%"));
        assert_eq!(binary, Message::binary(vec![1u8, 2, 3]), "untouched");

        // Acknowledged and dropped everywhere: the buffer is reused from its start.
        let start = second.as_bytes().as_ptr().wrapping_sub(binary.len() + 5);
        drop((second, resent));
        state.on_ack(2).unwrap();
        let mut reused = false;
        for _ in 0..200 {
            let seq = state.push(Message::binary(vec![5u8; 90]));
            let frame = state.data_frame(seq).unwrap();
            assert_eq!(decode_data(frame.clone()).2, Message::binary(vec![5u8; 90]));
            reused |= frame.as_bytes().as_ptr() == start;
            drop(frame);
            state.on_ack(seq).unwrap();
            if reused {
                break;
            }
        }
        assert!(reused, "the buffer was filled again from its start");
    }

    #[test]
    fn frames_of_shared_payloads_copy_and_leave_them_alone() {
        let mut state = AckState::new(LIMITS);
        let binary = Message::binary(vec![1u8, 2, 3]);
        let text = Message::text("ü");
        let b = state.push(binary.clone());
        let t = state.push(text.clone());
        let frame = state.data_frame(b).unwrap();
        assert_ne!(frame.as_bytes().as_ptr(), binary.as_bytes().as_ptr());
        assert_eq!(decode_data(frame).2, binary);
        let frame = state.data_frame(t).unwrap();
        assert_eq!(frame.as_text(), Some("üD2.0%"));
        assert_eq!((binary.len(), text.as_text()), (3, Some("ü")), "untouched");
        // A static payload is never unique.
        let s = state.push(Message::text(Utf8Bytes::from_static("static")));
        assert_eq!(
            decode_data(state.data_frame(s).unwrap()).2,
            Message::text("static")
        );
    }

    fn welcome(client: &mut ClientSession, token: &str, status: Status, acked: u64, next: u64) {
        let r = client
            .welcome(token.into(), status, acked, next)
            .expect("valid welcome");
        assert_eq!(r.resumed, status == Status::Resumed);
    }

    #[test]
    fn resume_acknowledges_resends_and_reports_gaps() {
        let mut client = ClientSession::new(LIMITS);
        welcome(&mut client, "t1", Status::New, 0, 1);
        for i in 0..3 {
            client.state.push(Message::text(i.to_string()));
        }
        client.state.on_data(1).unwrap();
        client.state.on_data(2).unwrap();
        assert_eq!(
            Frame::decode(client.hello()).unwrap(),
            Frame::Hello {
                token: "t1".into(),
                received: 2
            }
        );
        // The server got message 1; it resends from 3: nothing missed.
        let r = client.welcome("t1".into(), Status::Resumed, 1, 3).unwrap();
        assert_eq!((r.incoming_gap, r.outgoing_gap), (None, None));
        assert_eq!(client.state.first_unacked(), 2, "2 and 3 are resent");
        // Next time the server had dropped 3..=5 (overflow) and resends from 6.
        let r = client.welcome("t1".into(), Status::Resumed, 3, 6).unwrap();
        assert_eq!(r.incoming_gap, Some((3, Some(5))));
        assert_eq!(client.state.on_data(6), Ok(Received::New));
        // Violations: another token, acks going back or beyond, resending what we have.
        assert!(client.welcome("t2".into(), Status::Resumed, 3, 7).is_err());
        assert!(client.welcome("t1".into(), Status::Resumed, 9, 7).is_err());
        assert!(client.welcome("t1".into(), Status::Resumed, 3, 5).is_err());
        assert!(client.welcome(String::new(), Status::New, 0, 1).is_err());
        assert!(client.welcome("t3".into(), Status::New, 0, 2).is_err());
    }

    #[test]
    fn lost_session_hands_back_unacked_and_reports_the_incoming_gap() {
        let mut client = ClientSession::new(LIMITS);
        welcome(&mut client, "t1", Status::New, 0, 1);
        for i in 0..3 {
            client.state.push(Message::text(i.to_string()));
        }
        client.state.on_ack(1).unwrap();
        client.state.on_data(1).unwrap();
        let r = client.welcome("t2".into(), Status::Expired, 0, 1).unwrap();
        assert_eq!(r.status, Status::Expired);
        assert_eq!(r.incoming_gap, Some((2, None)));
        assert_eq!(
            r.outgoing_gap,
            Some((2, vec![Message::text("1"), Message::text("2")]))
        );
        assert_eq!(client.token.as_deref(), Some("t2"));
        assert_eq!(client.state.next_seq(), 1);
        assert_eq!(client.state.received(), 0);
    }
}
