
// ---- SharedSocket (src/js/shared-socket.d.ts, appended by scripts/build-pkg.sh) ----

/** The options of `new SharedSocket(url, options)`: those of `Socket` except
 * `reconnect.shouldReconnect` (a function cannot be sent to the worker), plus where the
 * connection lives. Pages share a connection when the URL and these options are equal. */
export interface SharedSocketOptions extends Omit<SocketOptions, "reconnect"> {
  /** As `SocketOptions.reconnect`, without `shouldReconnect`. */
  reconnect?: boolean | Omit<ReconnectOptions, "shouldReconnect">;
  /** `"shared"` (the default where `SharedWorker` exists): one connection for every page of
   * the origin. `"dedicated"`: a Worker of this page only (what is used where `SharedWorker`
   * is missing). */
  worker?: "shared" | "dedicated";
  /** Where `unisock-worker.js` is served, if not next to `unisock.js` (some bundlers). */
  workerUrl?: string | URL;
}

/** A `SharedSocket` event: as the `Socket` event, with the `SharedSocket` as its target. */
export type SharedSocketEvent<E extends SocketEventBase> = Omit<E, "target" | "currentTarget"> & {
  readonly target: SharedSocket;
  readonly currentTarget: SharedSocket;
};
export type SharedSocketOpenEvent = SharedSocketEvent<SocketOpenEvent>;
export type SharedSocketMessageEvent = SharedSocketEvent<SocketMessageEvent>;
export type SharedSocketErrorEvent = SharedSocketEvent<SocketErrorEvent>;
export type SharedSocketCloseEvent = SharedSocketEvent<SocketCloseEvent>;
export type SharedSocketReconnectingEvent = SharedSocketEvent<SocketReconnectingEvent>;
/** `session`: after each `open` of the shared connection, and right after `open` for a page
 * that joins a running one (then `resumed` is the connection's last report). */
export type SharedSocketSessionEvent = SharedSocketEvent<SocketSessionEvent>;
/** `gap`: as for `Socket`; an outgoing gap lists the lost messages of every page. */
export type SharedSocketGapEvent = SharedSocketEvent<SocketGapEvent>;

/** The events a `SharedSocket` fires, by type. */
export interface SharedSocketEventMap {
  open: SharedSocketOpenEvent;
  message: SharedSocketMessageEvent;
  error: SharedSocketErrorEvent;
  close: SharedSocketCloseEvent;
  reconnecting: SharedSocketReconnectingEvent;
  session: SharedSocketSessionEvent;
  gap: SharedSocketGapEvent;
}

/** A listener of `SharedSocket` events. */
export type SharedSocketEventListener<E> =
  | ((this: SharedSocket, event: E) => unknown)
  | { handleEvent(event: E): unknown };

/** The async iterator of a `SharedSocket`'s messages: as `Socket`'s `MessageIterator`
 * (without `free`, nothing to free). */
export interface SharedMessageIterator extends Pick<MessageIterator, "next" | "return"> {
  [Symbol.asyncIterator](): SharedMessageIterator;
}

/** The `on…` properties of a `SharedSocket`, one per event of `SharedSocketEventMap`. */
export type SharedSocketHandlers = {
  [K in keyof SharedSocketEventMap as `on${K}`]:
    | ((this: SharedSocket, event: SharedSocketEventMap[K]) => unknown)
    | null;
};

/** What a `SharedSocket` has exactly as a `Socket` has it, and its `on…` properties. */
export interface SharedSocket
  extends
    Pick<Socket, "CONNECTING" | "OPEN" | "CLOSING" | "CLOSED" | "url" | "protocol" | "extensions">,
    SharedSocketHandlers {}

/**
 * One WebSocket connection shared by every page (tab, frame) of the origin that opens the
 * same URL with the same options: it lives in a SharedWorker (`unisock-worker.js`, a
 * dedicated Worker where SharedWorker is missing), reconnects there once for everyone, and
 * delivers each message to every page. The properties, methods and events are `Socket`'s,
 * with these differences: `close()` detaches this page (the connection closes when the last
 * page leaves, or goes away); a full queue in the worker is reported as an `error` event
 * rather than thrown by `send`; `bufferedAmount` counts the shared connection's unsent bytes
 * as last reported by the worker. No `init()` is needed on the page.
 */
export class SharedSocket extends EventTarget {
  /** Opens (or joins) the shared connection; returns at once. Throws a `SyntaxError` for a bad
   * URL and a `TypeError` for bad options on the page; the worker reports the rest as an
   * `error` event followed by `close` (1006). */
  constructor(url: string | URL, protocolsOrOptions?: string | string[] | SharedSocketOptions);
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  /** `0` connecting (also while the shared connection waits to reconnect), `1` open, `2`
   * closing, `3` closed. */
  readonly readyState: SocketReadyState;
  /** Reconnect attempts of the shared connection since it was last stable. */
  readonly retryCount: number;
  /** Bytes this page sent that the worker has not taken yet, plus the shared connection's
   * unsent bytes as the worker last reported them. */
  readonly bufferedAmount: number;
  /** Always `"arraybuffer"`; `"blob"` throws. */
  binaryType: "arraybuffer";
  /** Queues a message: a `string` as text, bytes as binary. Throws a `TypeError` for other
   * data and a `UnisockError` (`"Closed"`, `"MessageTooLarge"`). */
  send(data: SendData): void;
  /** Detaches this socket (its `close` event follows); the last page to leave closes the
   * connection with this code (1000 or 3000-4999) and reason. */
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof SharedSocketEventMap>(
    type: K,
    listener: SharedSocketEventListener<SharedSocketEventMap[K]> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof SharedSocketEventMap>(
    type: K,
    listener: SharedSocketEventListener<SharedSocketEventMap[K]> | null,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  /** The data of each message received from now on; done once the socket is closed. */
  [Symbol.asyncIterator](): SharedMessageIterator;
}
