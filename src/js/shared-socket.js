// unisock's SharedSocket: one WebSocket connection for every page of an origin, kept in a
// SharedWorker (pkg/unisock-worker.js, which runs the wasm `Socket`), talked to through a
// MessagePort. Shipped as pkg/unisock-shared.js and re-exported by pkg/unisock.js
// (scripts/build-pkg.sh); its types are src/js/shared-socket.d.ts.
//
// Why a class of its own rather than `new Socket(url, { shared: true })`: `Socket` is a
// wasm-bindgen class whose constructor cannot hand back a different object, and a shared
// connection differs in ways a user must know about: `close()` detaches this page (the
// connection closes when the last page leaves), some failures of `send` arrive as `error`
// events instead of being thrown (the queue lives in the worker), and options cannot hold
// functions (`shouldReconnect`: functions cannot be posted to a worker). The page side needs
// no wasm at all: `init()` is not required before `new SharedSocket(...)`.
//
// Liveness: a page that goes away must release its share even when it cannot say so (crash,
// killed renderer). Each page holds a Web Lock with a unique name for as long as it lives and
// tells the worker the name; the worker requests the same lock, which the browser grants
// exactly when the page is gone: no timers, so a throttled or frozen background tab is never
// mistaken for a dead one. `pagehide` additionally says goodbye at once (not `beforeunload`:
// another handler can cancel the unload, and it disables the back/forward cache in some
// browsers). Without Web Locks (insecure context, old browser) the worker pings each page
// instead. With a dedicated Worker (the fallback where SharedWorker is missing, or
// `worker: "dedicated"`) the worker belongs to the page and dies with it.

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

const PREFIX = "unisock SharedSocket";
const DEFAULT_MAX_MESSAGE_SIZE = 64 << 20;
const DEFAULT_RECEIVE_BUFFER = 1024;
const EVENT_TYPES = ["open", "message", "error", "close", "reconnecting", "session", "gap"];

/** The page's channels to workers, by kind and worker URL. */
const channels = new Map();

/** What the channel calls on a socket; symbols keep them off the public API. */
const RECEIVE = Symbol("receive");
const FINISH = Symbol("finish");

/**
 * A WebSocket connection shared by every page of the origin that opens the same URL with the
 * same options, held in a SharedWorker. Same properties, methods and events as `Socket`.
 */
export class SharedSocket extends EventTarget {
  static get CONNECTING() { return CONNECTING; }
  static get OPEN() { return OPEN; }
  static get CLOSING() { return CLOSING; }
  static get CLOSED() { return CLOSED; }

  #channel;
  #id;
  #url;
  #origin;
  #maxMessageSize;
  #receiveBuffer;
  #readyState = CONNECTING;
  #protocol = "";
  #retryCount = 0;
  /** Bytes this page posted, bytes the worker has taken, and the connection's own buffer. */
  #posted = 0;
  #acked = 0;
  #buffered = 0;
  #handlers = new Map();
  #iterators = new Set();

  /**
   * `new SharedSocket(url, protocolsOrOptions)`, like `new Socket`. Throws a `SyntaxError`
   * for a bad URL and a `TypeError` for options that cannot be sent to a worker; other option
   * errors come from the worker as an `error` event followed by `close` (1006).
   */
  constructor(url, protocolsOrOptions) {
    super();
    if (url === undefined) {
      throw new TypeError(`${PREFIX}: the constructor needs a URL: new SharedSocket(url, protocolsOrOptions)`);
    }
    const target = resolveUrl(String(url));
    const { options, worker, workerUrl } = splitOptions(protocolsOrOptions);
    this.#url = `${target.protocol}//${target.host}${target.pathname}`;
    this.#origin = `${target.protocol}//${target.host}`;
    this.#maxMessageSize = typeof options.maxMessageSize === "number" ? options.maxMessageSize : DEFAULT_MAX_MESSAGE_SIZE;
    this.#receiveBuffer = typeof options.receiveBuffer === "number" ? options.receiveBuffer : DEFAULT_RECEIVE_BUFFER;
    this.#channel = channelFor(worker, workerUrl);
    this.#id = this.#channel.attach(this, {
      url: target.href,
      options,
      key: JSON.stringify([target.href, canonical(options)]),
    });
  }

  get CONNECTING() { return CONNECTING; }
  get OPEN() { return OPEN; }
  get CLOSING() { return CLOSING; }
  get CLOSED() { return CLOSED; }

  /** `0` connecting (also while the shared connection waits to reconnect), `1` open,
   * `2` closing, `3` closed. */
  get readyState() { return this.#readyState; }
  /** The URL, without userinfo, query string or fragment. */
  get url() { return this.#url; }
  /** The subprotocol the server selected, or `""`. */
  get protocol() { return this.#protocol; }
  /** Always `""`, as for `Socket`. */
  get extensions() { return ""; }
  /** Reconnect attempts of the shared connection since it was last stable. */
  get retryCount() { return this.#retryCount; }
  /** What this page posted and the worker has not taken yet, plus the shared connection's
   * own unsent bytes (from every page) as the worker last reported them. */
  get bufferedAmount() { return this.#posted - this.#acked + this.#buffered; }
  /** Always `"arraybuffer"`. */
  get binaryType() { return "arraybuffer"; }
  set binaryType(value) {
    if (value === "blob") {
      throw new DOMException(`${PREFIX}: binaryType "blob" is not supported: binary messages are ArrayBuffers`, "NotSupportedError");
    }
  }

  /**
   * Queues a message on the shared connection: a string as text, an `ArrayBuffer`, typed
   * array or `DataView` as binary (copied at once). Throws a `TypeError` for other data and a
   * `UnisockError` (`kind` `"Closed"` or `"MessageTooLarge"`); a full queue in the worker is
   * reported as an `error` event (`kind` `"QueueFull"`).
   */
  send(data) {
    let payload;
    let bytes;
    let transfer = [];
    if (typeof data === "string") {
      payload = data;
      bytes = utf8Length(data);
    } else if (isArrayBuffer(data)) {
      payload = data.slice(0);
      bytes = payload.byteLength;
      transfer = [payload];
    } else if (ArrayBuffer.isView(data)) {
      payload = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
      bytes = payload.byteLength;
      transfer = [payload];
    } else {
      const blob = typeof Blob === "function" && data instanceof Blob
        ? " (send `await blob.arrayBuffer()` instead: a Blob is read asynchronously, which could reorder messages)"
        : "";
      throw new TypeError(`${PREFIX}: send: the data must be a string, an ArrayBuffer or an ArrayBufferView, got ${describe(data)}${blob}`);
    }
    if (this.#readyState >= CLOSING) {
      throw unisockError("Closed", "the socket is closing or closed");
    }
    if (bytes > this.#maxMessageSize) {
      throw unisockError("MessageTooLarge", `message of ${bytes} bytes exceeds the limit of ${this.#maxMessageSize} bytes`);
    }
    this.#posted += bytes;
    this.#channel.post({ t: "send", id: this.#id, data: payload, n: bytes }, transfer);
  }

  /**
   * Leaves the shared connection: this socket gets its `close` event, the other pages keep the
   * connection; the last page to leave closes it with `code` and `reason`. `code`: 1000 (the
   * default) or 3000-4999, else an `InvalidAccessError`; `reason`: at most 123 bytes of UTF-8,
   * else a `SyntaxError`. Does nothing if already closing or closed.
   */
  close(code, reason) {
    if (code !== undefined) {
      code = clampCode(Number(code));
      if (code !== 1000 && (code < 3000 || code > 4999)) {
        throw new DOMException(`${PREFIX}: close code ${code} is not allowed (1000 or 3000-4999)`, "InvalidAccessError");
      }
    }
    reason = reason === undefined ? "" : String(reason);
    if (utf8Length(reason) > 123) {
      throw new DOMException(`${PREFIX}: the close reason is longer than 123 bytes`, "SyntaxError");
    }
    if (this.#readyState >= CLOSING) return;
    this.#readyState = CLOSING;
    this.#channel.post({ t: "close", id: this.#id, code: code ?? 1000, reason });
  }

  /** An async iterator over the data of the messages received from now on, done once the
   * socket is closed: `for await (const data of socket) { … }`. As `Socket`'s, it holds at
   * most `receiveBuffer` unread messages: a loop that falls further behind gets those, then
   * a `"ReaderLagged"` error. */
  [Symbol.asyncIterator]() {
    const limit = this.#receiveBuffer;
    const state = { buffer: [], waiting: [], done: this.#readyState === CLOSED, lagged: false, limit };
    const finish = (discard) => {
      state.done = true;
      if (discard) {
        state.buffer.length = 0;
        state.lagged = false;
      }
      this.#iterators.delete(state);
      for (const resolve of state.waiting.splice(0)) resolve({ value: undefined, done: true });
    };
    state.finish = finish;
    if (!state.done) this.#iterators.add(state);
    const iterator = {
      next() {
        if (state.buffer.length > 0) return Promise.resolve({ value: state.buffer.shift(), done: false });
        if (state.lagged) {
          state.lagged = false;
          return Promise.reject(unisockError("ReaderLagged", `a reader fell more than ${limit} messages behind and stopped`));
        }
        if (state.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => state.waiting.push(resolve));
      },
      return() {
        finish(true);
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() { return iterator; },
    };
    return iterator;
  }

  /** Called by the channel with what the worker says about this socket. */
  [RECEIVE](message) {
    switch (message.t) {
      case "attached":
        this.#url = message.url || this.#url;
        this.#retryCount = message.retryCount;
        this.#buffered = message.buffered;
        if (message.readyState === OPEN) {
          this.#opened(message.protocol);
          // Joining a running connection: its current mode, as a `session` event after `open`.
          if (message.session) this.#dispatchSession(message.session);
        }
        break;
      case "open":
        this.#retryCount = message.retryCount;
        this.#opened(message.protocol);
        break;
      case "message":
        for (const state of this.#iterators) {
          if (state.waiting.length > 0) {
            state.waiting.shift()({ value: message.data, done: false });
          } else if (state.buffer.length < state.limit) {
            state.buffer.push(message.data);
          } else {
            // Too far behind: keep what it has, take nothing more (as Socket's iterator).
            state.lagged = true;
            state.finish(false);
          }
        }
        this.dispatchEvent(new MessageEvent("message", { data: message.data, origin: this.#origin }));
        break;
      case "error":
        this.#dispatchError(reviveError(message.error));
        break;
      case "reconnecting": {
        if (this.#readyState === OPEN) this.#readyState = CONNECTING;
        this.#retryCount = message.attempt;
        this.dispatchEvent(withFields(new Event("reconnecting"), {
          attempt: message.attempt, delay: message.delay, code: message.code, reason: message.reason, wasClean: message.wasClean,
        }));
        break;
      }
      case "session":
        this.#dispatchSession(message);
        break;
      case "gap":
        this.dispatchEvent(withFields(new Event("gap"), {
          direction: message.direction, first: message.first, last: message.last, reason: message.reason, messages: message.messages,
        }));
        break;
      case "state":
        this.#acked = message.acked;
        this.#buffered = message.buffered;
        this.#retryCount = message.retryCount;
        break;
      case "close":
        this[FINISH](message.code, message.reason, message.wasClean, message.unsent ?? []);
        break;
    }
  }

  #opened(protocol) {
    if (this.#readyState !== CONNECTING) return;
    this.#readyState = OPEN;
    this.#protocol = protocol ?? "";
    this.dispatchEvent(new Event("open"));
  }

  #dispatchSession({ acknowledged, resumed }) {
    this.dispatchEvent(withFields(new Event("session"), { acknowledged, resumed }));
  }

  #dispatchError(error) {
    this.dispatchEvent(withFields(new Event("error"), { error, message: error.message }));
  }

  /** The final close (from the worker, or because the worker or the page went away). */
  [FINISH](code, reason, wasClean, unsent, error) {
    if (this.#readyState === CLOSED) return;
    this.#channel.forget(this.#id);
    if (error) this.#dispatchError(error);
    this.#readyState = CLOSED;
    this.#acked = this.#posted;
    for (const state of [...this.#iterators]) state.finish(false);
    const event = typeof CloseEvent === "function"
      ? new CloseEvent("close", { code, reason, wasClean })
      : withFields(new Event("close"), { code, reason, wasClean });
    this.dispatchEvent(withFields(event, { unsent }));
  }
}

// The `on…` handler properties, as the DOM defines them: the handler takes its place among the
// listeners when first set, replacing it keeps that place, `null` removes it.
for (const type of EVENT_TYPES) {
  Object.defineProperty(SharedSocket.prototype, `on${type}`, {
    configurable: true,
    enumerable: true,
    get() {
      return handlerSlot(this, type).handler;
    },
    set(value) {
      const slot = handlerSlot(this, type);
      const handler = typeof value === "function" ? value : null;
      if (handler && !slot.handler) this.addEventListener(type, slot.listener);
      if (!handler && slot.handler) this.removeEventListener(type, slot.listener);
      slot.handler = handler;
    },
  });
}

const slots = new WeakMap();
function handlerSlot(socket, type) {
  let bySocket = slots.get(socket);
  if (!bySocket) slots.set(socket, (bySocket = new Map()));
  let slot = bySocket.get(type);
  if (!slot) {
    slot = { handler: null };
    slot.listener = function (event) {
      return slot.handler?.call(this, event);
    };
    bySocket.set(type, slot);
  }
  return slot;
}

/** One page's connection to a worker: a MessagePort (or the dedicated Worker itself), with the
 * sockets attached through it. */
class Channel {
  #key;
  #port;
  #sockets = new Map();
  #nextId = 1;
  /** Messages posted before the page's lock was granted (the worker must learn the lock name
   * first, or it could request the lock before the page holds it). */
  #outbox = [];
  #broken = false;

  constructor(kind, workerUrl, key) {
    this.#key = key;
    const options = { type: "module", name: "unisock" };
    // The `new URL(…, import.meta.url)` literal inside the constructor call is what bundlers
    // recognise to emit the worker file.
    if (kind === "shared") {
      const worker = workerUrl
        ? new SharedWorker(workerUrl, options)
        : new SharedWorker(new URL("./unisock-worker.js", import.meta.url), options);
      worker.addEventListener("error", () => this.#fail("the SharedWorker failed to load (pkg/unisock-worker.js)"));
      this.#port = worker.port;
      holdPageLock().then((lock) => {
        this.#port.postMessage({ t: "hello", lock });
        for (const [message, transfer] of this.#outbox.splice(0)) this.#port.postMessage(message, transfer);
        this.#outbox = null;
      });
    } else {
      const worker = workerUrl
        ? new Worker(workerUrl, options)
        : new Worker(new URL("./unisock-worker.js", import.meta.url), options);
      worker.addEventListener("error", (event) => {
        event.preventDefault?.();
        this.#fail(`the Worker failed: ${event.message ?? "pkg/unisock-worker.js did not load"}`);
      });
      this.#port = worker;
      this.#outbox = null;
    }
    this.#port.onmessage = (event) => this.#receive(event.data);
    if (typeof globalThis.addEventListener === "function" && typeof Window === "function" && globalThis instanceof Window) {
      globalThis.addEventListener("pagehide", () => this.#leave());
    }
  }

  attach(socket, { url, options, key }) {
    const id = this.#nextId++;
    this.#sockets.set(id, socket);
    this.post({ t: "attach", id, url, options, key });
    if (this.#broken) queueMicrotask(() => socket[FINISH](1006, "", false, [], workerError("the worker is not available")));
    return id;
  }

  forget(id) {
    this.#sockets.delete(id);
  }

  post(message, transfer = []) {
    if (this.#broken) return;
    if (this.#outbox) this.#outbox.push([message, transfer]);
    else this.#port.postMessage(message, transfer);
  }

  #receive(message) {
    if (message.t === "ping") {
      this.post({ t: "pong" });
    } else if (message.t === "fatal") {
      this.#fail(message.error.message);
    } else {
      this.#sockets.get(message.id)?.[RECEIVE](message);
    }
  }

  /** The page is going away: say goodbye now rather than when its lock is released. */
  #leave() {
    this.post({ t: "detach" });
    for (const socket of [...this.#sockets.values()]) socket[FINISH](1001, "the page was hidden", false, []);
  }

  /** The worker cannot serve: every socket fails, and the next one gets a fresh worker. */
  #fail(reason) {
    if (this.#broken) return;
    this.#broken = true;
    channels.delete(this.#key);
    const error = workerError(reason);
    for (const socket of [...this.#sockets.values()]) socket[FINISH](1006, "", false, [], error);
  }
}

function channelFor(worker, workerUrl) {
  const kind = worker === "dedicated" || typeof SharedWorker !== "function" ? "dedicated" : "shared";
  if (kind === "dedicated" && typeof Worker !== "function") {
    throw unisockError("Unsupported", "neither SharedWorker nor Worker exists here");
  }
  const key = `${kind} ${workerUrl ?? ""}`;
  let channel = channels.get(key);
  if (!channel) channels.set(key, (channel = new Channel(kind, workerUrl, key)));
  return channel;
}

/** Holds a uniquely named Web Lock until the page goes away; resolves with its name once
 * granted, or with `null` where there are no Web Locks (the worker then pings the page). */
function holdPageLock() {
  const locks = globalThis.navigator?.locks;
  if (!locks || typeof locks.request !== "function") return Promise.resolve(null);
  const name = `unisock-page-${randomId()}`;
  return new Promise((granted) => {
    locks.request(name, () => {
      granted(name);
      return new Promise(() => {}); // never released while the page lives
    }).catch(() => granted(null));
  });
}

function randomId() {
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The URL as `new WebSocket` resolves it: relative to the page, `http(s):` meaning `ws(s):`. */
function resolveUrl(input) {
  let url;
  try {
    url = new URL(input, globalThis.location?.href);
  } catch {
    throw new DOMException(`${PREFIX}: invalid URL ${JSON.stringify(input)}`, "SyntaxError");
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new DOMException(`${PREFIX}: the URL scheme must be ws:, wss:, http: or https:, got ${url.protocol}`, "SyntaxError");
  }
  url.hash = "";
  return url;
}

/** Separates the page-side options (`worker`, `workerUrl`) from the connection's. */
function splitOptions(value) {
  if (value === undefined || value === null) return { options: {} };
  if (typeof value === "string" || Array.isArray(value)) return { options: { protocols: value } };
  if (typeof value !== "object") {
    throw new TypeError(`${PREFIX}: the second argument must be a subprotocol, an array of subprotocols or an options object, got ${describe(value)}`);
  }
  const { worker, workerUrl, ...options } = value;
  if (worker !== undefined && worker !== "shared" && worker !== "dedicated") {
    throw new TypeError(`${PREFIX}: options.worker must be "shared" or "dedicated", got ${describe(worker)}`);
  }
  rejectFunctions(options, "options");
  return { options, worker, workerUrl: workerUrl === undefined ? undefined : String(workerUrl) };
}

function rejectFunctions(value, path) {
  if (typeof value === "function") {
    throw new TypeError(`${PREFIX}: ${path} cannot be a function: the connection lives in a worker, and functions cannot be sent there`);
  }
  if (value && typeof value === "object" && !isArrayBuffer(value) && !ArrayBuffer.isView(value)) {
    for (const [key, field] of Object.entries(value)) rejectFunctions(field, `${path}.${key}`);
  }
}

/** A stable form of the options for the sharing key: sorted keys, bytes as arrays. */
function canonical(value) {
  if (isArrayBuffer(value)) return { $bytes: Array.from(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) return { $bytes: Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical(value[key])]));
  }
  return value;
}

function isArrayBuffer(value) {
  return Object.prototype.toString.call(value) === "[object ArrayBuffer]";
}

/** UTF-8 length of a string (lone surrogates count as U+FFFD, 3 bytes, as they are sent). */
function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** WebIDL `[Clamp] unsigned short`. */
function clampCode(code) {
  if (Number.isNaN(code)) return 0;
  const clamped = Math.min(Math.max(code, 0), 65535);
  const floor = Math.floor(clamped);
  const fraction = clamped - floor;
  return fraction > 0.5 || (fraction === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

function unisockError(kind, message) {
  const error = new Error(message);
  error.name = "UnisockError";
  error.kind = kind;
  return error;
}

function workerError(reason) {
  return unisockError("Runtime", `${PREFIX}: ${reason}`);
}

/** Rebuilds an error the worker serialised (`{ name, message, kind, status }`). */
function reviveError({ name, message, kind, status }) {
  if (name === "UnisockError") {
    const error = unisockError(kind, message);
    if (status !== undefined) error.status = status;
    return error;
  }
  if (name === "TypeError") return new TypeError(message);
  return new DOMException(message, name);
}

function withFields(event, fields) {
  for (const [key, value] of Object.entries(fields)) {
    Object.defineProperty(event, key, { value, enumerable: true, configurable: true });
  }
  return event;
}

function describe(value) {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a value of type ${typeof value}`;
}
