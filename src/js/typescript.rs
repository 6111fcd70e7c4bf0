//! TypeScript declarations that wasm-bindgen cannot derive from the Rust signatures: the
//! options object, the events and their listeners, the error type, the async iterator, and
//! the generic `addEventListener` overloads (merged into the generated `Socket` class by
//! declaration merging, as `lib.dom.d.ts` does for `WebSocket`). They land in
//! `pkg/unisock.d.ts`; `tests/js/types-check.ts` is compiled against them with
//! `tsc --strict`.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT: &'static str = r#"
/** A received message's data: text as a `string`, binary as an `ArrayBuffer`. */
export type SocketData = string | ArrayBuffer;

/** What `send` (and the heartbeat's `ping` and `pong`) accept: a `string` is sent as text, the
 * bytes of an `ArrayBuffer`, typed array or `DataView` as binary. */
export type SendData = string | ArrayBuffer | ArrayBufferView;

/** `Socket.CONNECTING` (0, also while waiting to reconnect), `OPEN` (1), `CLOSING` (2),
 * `CLOSED` (3). */
export type SocketReadyState = 0 | 1 | 2 | 3;

/** The options object: `new Socket(url, options)`. Every field is optional; times are in
 * milliseconds, sizes in bytes. A key that is not listed here throws a `TypeError`. */
export interface SocketOptions {
  /** Subprotocols to offer, in order of preference; the one the server picked is in
   * `socket.protocol`. Default: none. */
  protocols?: string | string[];
  /** How long one connection attempt may take before it fails (and, with `reconnect`, is
   * retried). `null` or `Infinity`: as long as the browser waits. Default: 10000. */
  connectTimeout?: number | null;
  /** How long to wait for the server to answer `close()` before dropping the connection
   * (the close is then not clean). Default: 5000. */
  closeTimeout?: number;
  /** Largest message sent or received. Sending a larger one throws (`kind`
   * `"MessageTooLarge"`); receiving one closes the connection with 1009. Default: 64 MiB. */
  maxMessageSize?: number;
  /** Most messages a `for await` loop over the socket may fall behind: beyond, its iterator
   * stops taking new ones and, after those it holds, throws (`kind` `"ReaderLagged"`), so
   * memory stays bounded and nothing is lost silently. Default: 1024. */
  receiveBuffer?: number;
  /** Reconnect automatically after the connection drops or an attempt fails, with
   * exponential backoff and full jitter. `false` turns it off: the first close is final, as
   * with `WebSocket`. Default: `true` (the defaults of `ReconnectOptions`). */
  reconnect?: boolean | ReconnectOptions;
  /** Bounds on the outgoing queue: messages accepted by `send` and not yet written, including
   * everything sent while disconnected. Beyond them `send` throws (`kind` `"QueueFull"`). */
  queue?: QueueOptions;
  /** Detects a dead connection (half-open, blackholed) by sending `ping` after `interval` ms
   * of silence and dropping the connection when nothing arrives within `timeout` ms. The
   * server must answer `ping` with `pong`; the pongs are not delivered as messages.
   * Default: off. */
  heartbeat?: false | null | HeartbeatOptions | SessionHeartbeatOptions;
  /** Acknowledged sessions with `unisock serve` (the `unisock.v1` subprotocol, offered
   * first): every message arrives exactly once and in order across reconnects; a `session`
   * event after each `open` says whether the server agreed, and a `gap` event reports what
   * may have been lost when a session could not be resumed. Default: `false`. */
  session?: boolean | null | SessionOptions;
}

/** Bounds of an acknowledged session (`session: { … }`). */
export interface SessionOptions {
  /** Most messages sent and not yet acknowledged; more wait in the queue. Default: 1024. */
  maxUnackedMessages?: number;
  /** Most bytes sent and not yet acknowledged. Default: 8 MiB. */
  maxUnackedBytes?: number;
  /** How long received messages may go unacknowledged when nothing flows back. Default: 20. */
  ackDelay?: number;
}

/** When and how fast to reconnect. The delay before attempt `n` is drawn at random from
 * `[0, min(maxDelay, minDelay * factor ** (n - 1))]`; the count restarts once a connection
 * has stayed up for `minUptime`. A `close()` of yours never reconnects. */
export interface ReconnectOptions {
  /** Ceiling of the first delay. Default: 500. */
  minDelay?: number;
  /** Largest ceiling of any delay. Default: 30000. */
  maxDelay?: number;
  /** Growth of the ceiling per attempt, >= 1. Default: 2. */
  factor?: number;
  /** Attempts in a row after which to give up (`null` or `Infinity`: never). Default: `null`. */
  maxRetries?: number | null;
  /** How long a connection must stay up for the attempt count to restart. Default: 5000. */
  minUptime?: number;
  /** Decides whether to retry after a disconnect. By default a close with code 1008 (policy
   * violation) is final and everything else is retried (`info.retryByDefault`). */
  shouldReconnect?: (info: DisconnectInfo) => boolean;
}

/** Why a connection ended, as `shouldReconnect` sees it. */
export interface DisconnectInfo {
  /** The close code: from the server's close frame, or 1006 if the connection dropped or
   * could not be opened. */
  code: number;
  /** The close reason, or `""`. */
  reason: string;
  /** Whether the closing handshake completed. */
  wasClean: boolean;
  /** What failed, when the connection failed rather than closed. */
  error: UnisockError | null;
  /** What the default policy would decide. */
  retryByDefault: boolean;
}

/** Bounds on the outgoing queue (`SocketOptions.queue`). */
export interface QueueOptions {
  /** Most messages waiting, >= 1. Default: 10000. */
  maxMessages?: number;
  /** Most bytes waiting, >= 1 (one larger message is still accepted into an empty queue).
   * Default: 16 MiB. */
  maxBytes?: number;
}

/** The heartbeat of an acknowledged session (`session` set): the session's own ping frame,
 * answered by the server, so no `ping` / `pong` messages. */
export interface SessionHeartbeatOptions {
  /** Silence after which the session pings. Default: 30000. */
  interval?: number;
  /** How long to wait for any sign of life after a ping. Default: 10000. */
  timeout?: number;
  ping?: never;
  pong?: never;
}

/** An application-level heartbeat (`SocketOptions.heartbeat`). */
export interface HeartbeatOptions {
  /** Silence after which `ping` is sent. Default: 30000. */
  interval?: number;
  /** How long to wait for any message (the `pong` or anything else) after a ping. Default:
   * 10000. */
  timeout?: number;
  /** The message to send. */
  ping: SendData;
  /** The server's answer; it is consumed, not delivered as a message. */
  pong: SendData;
}

/** The `kind` of a `UnisockError`: the name of the Rust `unisock::Error` variant. In a
 * browser a failed connection is always `"ConnectFailed"` (pages are not told why) and an
 * error on an open one `"BrowserError"`. */
export type UnisockErrorKind =
  | "InvalidUrl" | "UnsupportedScheme" | "InvalidOption" | "Unsupported" | "Resolve"
  | "ConnectionRefused" | "ConnectTimeout" | "ConnectFailed" | "BrowserError" | "Tls"
  | "HandshakeRejected" | "Handshake" | "Io" | "MessageTooLarge" | "InvalidUtf8"
  | "Protocol" | "InvalidCloseCode" | "CloseReasonTooLong" | "QueueFull" | "ReaderLagged"
  | "HeartbeatTimeout" | "Closed" | "Runtime";

/** What unisock reports: thrown by `send` and carried by `error` events. */
export interface UnisockError extends Error {
  readonly name: "UnisockError";
  /** What went wrong, to branch on. */
  readonly kind: UnisockErrorKind;
  /** The HTTP status of a rejected handshake (native peers only). */
  readonly status?: number;
}

/** What every socket event has: `target` and `currentTarget` are the socket (see the
 * package docs: a second wrapper of it, not `===` to the object `new Socket` returned). */
export interface SocketEventBase extends Event {
  readonly target: Socket;
  readonly currentTarget: Socket;
}

/** `open`: the connection is open (again, after a reconnect). */
export interface SocketOpenEvent extends SocketEventBase {
  readonly type: "open";
}

/** `message`: a message arrived (a `MessageEvent` where the platform has one). */
export interface SocketMessageEvent extends SocketEventBase {
  readonly type: "message";
  /** Text as a `string`, binary as an `ArrayBuffer`. */
  readonly data: SocketData;
  /** The origin of the socket's URL, e.g. `"ws://127.0.0.1:9001"`. */
  readonly origin: string;
}

/** `error`: something went wrong; a `reconnecting` or `close` event follows when the error
 * ended the connection. */
export interface SocketErrorEvent extends SocketEventBase {
  readonly type: "error";
  /** What went wrong. */
  readonly error: UnisockError;
  /** `error.message`. */
  readonly message: string;
}

/** `close`: the socket is closed for good; always the last event. */
export interface SocketCloseEvent extends SocketEventBase {
  readonly type: "close";
  /** 1000 normal, 1001 going away, 3000-4999 application codes, 1005 no code, 1006 the
   * connection dropped or could not be opened. */
  readonly code: number;
  /** The close reason, or `""`. */
  readonly reason: string;
  /** Whether the closing handshake completed. */
  readonly wasClean: boolean;
  /** Messages accepted by `send` that were never written to the network, in order. */
  readonly unsent: SocketData[];
}

/** `reconnecting`: the connection dropped (or an attempt failed) and the next attempt starts
 * after `delay` ms; `open` follows when it succeeds. */
export interface SocketReconnectingEvent extends SocketEventBase {
  readonly type: "reconnecting";
  /** The attempt about to be made: 1 for the first retry. */
  readonly attempt: number;
  /** Milliseconds before it. */
  readonly delay: number;
  /** How the previous connection ended (1006 if it dropped or could not be opened). */
  readonly code: number;
  /** Its close reason, or `""`. */
  readonly reason: string;
  /** Whether its closing handshake completed. */
  readonly wasClean: boolean;
}

/** `session`: after each `open` with `{ session: true }`: which delivery mode runs. */
export interface SocketSessionEvent extends SocketEventBase {
  readonly type: "session";
  /** `true`: an acknowledged session (exactly once); `false`: plain WebSocket. */
  readonly acknowledged: boolean;
  /** `true` when the previous session continued: nothing was lost. */
  readonly resumed: boolean;
}

/** `gap`: messages of an acknowledged session that may have been lost. */
export interface SocketGapEvent extends SocketEventBase {
  readonly type: "gap";
  /** `"incoming"`: from the server; `"outgoing"`: sent but never acknowledged. */
  readonly direction: "incoming" | "outgoing";
  /** Sequence number of the first message possibly lost. */
  readonly first: number;
  /** Of the last one, or `null` when unknown (the server lost the session). */
  readonly last: number | null;
  /** Why. */
  readonly reason: "sessionUnknown" | "sessionExpired" | "overflow" | "noSession" | "ended";
  /** For `"outgoing"`: the messages themselves (they are not sent again). */
  readonly messages: SocketData[];
}

/** The events a `Socket` fires, by type. */
export interface SocketEventMap {
  open: SocketOpenEvent;
  message: SocketMessageEvent;
  error: SocketErrorEvent;
  close: SocketCloseEvent;
  reconnecting: SocketReconnectingEvent;
  session: SocketSessionEvent;
  gap: SocketGapEvent;
}

/** A listener: a function (called with `this` = the socket) or an object with `handleEvent`. */
export type SocketEventListener<E extends Event = Event> =
  | ((this: Socket, event: E) => unknown)
  | { handleEvent(event: E): unknown };

export interface Socket {
  /** Adds a listener for one of the socket's events (see `SocketEventMap`), like
   * `EventTarget.addEventListener`: options `once`, `signal`, `capture` and `passive`. */
  addEventListener<K extends keyof SocketEventMap>(
    type: K,
    listener: SocketEventListener<SocketEventMap[K]> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Adds a listener for any event type (e.g. for `dispatchEvent`). */
  addEventListener(
    type: string,
    listener: SocketEventListener | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Removes a listener added with the same type, listener and `capture`. */
  removeEventListener<K extends keyof SocketEventMap>(
    type: K,
    listener: SocketEventListener<SocketEventMap[K]> | null,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Removes a listener added with the same type, listener and `capture`. */
  removeEventListener(
    type: string,
    listener: SocketEventListener | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** The async iterator of a socket's messages (what `for await (const data of socket)`
 * uses): yields each message's data received after it was created; done once the socket is
 * closed for good and what it buffered is read. It holds at most `receiveBuffer` unread
 * messages: a loop that falls further behind gets those, then a `"ReaderLagged"` error. */
export class MessageIterator {
  private constructor();
  /** The next message's data, or `{ done: true }` once the socket is closed; rejects with a
   * `UnisockError` (`"ReaderLagged"`) once after the loop fell too far behind. */
  next(): Promise<IteratorResult<SocketData, undefined>>;
  /** Stops iterating (what `break` calls): drops what was buffered; the socket stays open. */
  return(): Promise<IteratorResult<SocketData, undefined>>;
  /** The iterator itself. */
  [Symbol.asyncIterator](): MessageIterator;
  /** Frees the Rust side now instead of when garbage collected. */
  free(): void;
}
"#;
