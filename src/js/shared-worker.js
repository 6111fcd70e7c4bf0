// The worker behind SharedSocket (src/js/shared-socket.js), shipped as pkg/unisock-worker.js:
// a module SharedWorker (or, as the fallback, a dedicated Worker) that runs the wasm `Socket`
// of pkg/unisock.js and shares each connection between the pages attached to it.
//
// - Pages that open the same URL with the same options (the `key` the page computes) share
//   one `Socket`; other URLs get their own, in this same worker.
// - Everything the connection reports (open, message, error, reconnecting, session, gap,
//   close) goes to every attached socket; reconnects happen once, here. A page that attaches
//   later hears the current session mode with `attached`.
// - A page's `close()` detaches that socket; the last one to leave closes the connection with
//   its code and reason. A page that goes away without a word is noticed through its Web Lock
//   (granted to us exactly when the page is gone) or, without Web Locks, by unanswered pings.
//
// Messages from a page: hello {lock}, attach {id, url, options, key}, send {id, data, n},
// close {id, code, reason}, detach, pong. To a page: attached, open, message, error,
// reconnecting, session, gap, state, close (each with the socket's id), ping, fatal.

import init, { Socket } from "./unisock.js";

/** Without Web Locks, a page that has not answered for this long is taken for gone. Pages'
 * `message` handlers are not throttled like their timers, so a background tab still answers. */
const PING_INTERVAL = 10_000;
const PING_TIMEOUT = 35_000;
/** How often `bufferedAmount` is reported while the connection has unsent bytes. */
const STATE_INTERVAL = 50;

const ready = init();
/** Open connections, by key; a closing one is no longer here (a new page gets a new one). */
const connections = new Map();
const clients = new Set();
let pingTimer = null;

const shared = typeof SharedWorkerGlobalScope === "function" && self instanceof SharedWorkerGlobalScope;
if (shared) {
  self.addEventListener("connect", (event) => accept(event.ports[0], false));
} else {
  accept(self, true);
}

/** A page's port: its sockets (`id` → subscription) and how we know it is still there. */
function accept(port, dedicated) {
  const client = { port, subs: new Map(), gone: false, ping: false, lastSeen: Date.now(), fatal: false };
  clients.add(client);
  port.onmessage = (event) => {
    client.lastSeen = Date.now();
    ready.then(
      () => handle(client, event.data),
      (error) => {
        if (client.fatal) return;
        client.fatal = true;
        port.postMessage({ t: "fatal", error: serializeError(error) });
      },
    );
  };
  // A dedicated worker dies with its page: no liveness checks needed.
  if (dedicated) client.watched = true;
}

function handle(client, message) {
  if (client.gone) return;
  switch (message.t) {
    case "hello":
      watch(client, message.lock);
      break;
    case "attach":
      attach(client, message);
      break;
    case "send": {
      const sub = client.subs.get(message.id);
      if (!sub) return;
      sub.received += message.n;
      try {
        sub.conn.socket.send(message.data);
      } catch (error) {
        post(sub, { t: "error", error: serializeError(error) });
      }
      scheduleState(sub.conn);
      break;
    }
    case "close": {
      const sub = client.subs.get(message.id);
      if (sub) leave(sub, message.code, message.reason, true);
      break;
    }
    case "detach":
      for (const sub of [...client.subs.values()]) leave(sub, 1000, "", false);
      break;
    case "pong":
      break;
  }
}

/** Notices the page going away: its lock is granted to us only once the page released it. */
function watch(client, lock) {
  if (client.watched) return;
  client.watched = true;
  const locks = self.navigator?.locks;
  if (lock && locks && typeof locks.request === "function") {
    locks.request(lock, () => drop(client)).catch(() => startPinging(client));
  } else {
    startPinging(client);
  }
}

function startPinging(client) {
  client.ping = true;
  pingTimer ??= setInterval(() => {
    const now = Date.now();
    let pinging = 0;
    for (const client of clients) {
      if (!client.ping) continue;
      if (now - client.lastSeen > PING_TIMEOUT) {
        drop(client);
      } else {
        pinging += 1;
        client.port.postMessage({ t: "ping" });
      }
    }
    if (pinging === 0) {
      clearInterval(pingTimer);
      pingTimer = null;
    }
  }, PING_INTERVAL);
}

/** The page is gone: its sockets leave their connections. */
function drop(client) {
  if (client.gone) return;
  client.gone = true;
  clients.delete(client);
  for (const sub of [...client.subs.values()]) leave(sub, 1000, "", false);
  if (client.port !== self) client.port.close();
}

function attach(client, { id, url, options, key }) {
  let conn = connections.get(key);
  if (!conn) {
    try {
      conn = connect(key, url, options);
    } catch (error) {
      client.port.postMessage({ t: "error", id, error: serializeError(error) });
      client.port.postMessage({ t: "close", id, code: 1006, reason: "", wasClean: false, unsent: [] });
      return;
    }
  }
  const sub = { client, id, conn, received: 0, acked: -1 };
  client.subs.set(id, sub);
  conn.subs.add(sub);
  const { socket } = conn;
  post(sub, {
    t: "attached",
    url: socket.url,
    readyState: socket.readyState,
    protocol: socket.protocol,
    retryCount: socket.retryCount,
    buffered: socket.bufferedAmount,
    session: conn.session,
  });
}

function connect(key, url, options) {
  const socket = new Socket(url, options);
  const conn = { key, socket, subs: new Set(), closing: false, last: null, lastBuffered: 0, stateTimer: null, session: null };
  connections.set(key, conn);
  socket.onopen = () => broadcast(conn, { t: "open", protocol: socket.protocol, retryCount: socket.retryCount });
  socket.onmessage = (event) => broadcast(conn, { t: "message", data: event.data });
  socket.onerror = (event) => broadcast(conn, { t: "error", error: serializeError(event.error) });
  socket.onreconnecting = (event) => broadcast(conn, {
    t: "reconnecting", attempt: event.attempt, delay: event.delay, code: event.code, reason: event.reason, wasClean: event.wasClean,
  });
  socket.onsession = (event) => {
    conn.session = { acknowledged: event.acknowledged, resumed: event.resumed };
    broadcast(conn, { t: "session", ...conn.session });
  };
  // An outgoing gap lists messages of every page: each page hears it (it cannot tell whose).
  socket.ongap = (event) => broadcast(conn, {
    t: "gap", direction: event.direction, first: event.first, last: event.last, reason: event.reason, messages: event.messages,
  });
  socket.onclose = (event) => {
    if (connections.get(key) === conn) connections.delete(key);
    clearTimeout(conn.stateTimer);
    const close = { t: "close", code: event.code, reason: event.reason, wasClean: event.wasClean, unsent: event.unsent };
    const subs = conn.last ? [conn.last] : [...conn.subs];
    for (const sub of subs) {
      sub.client.subs.delete(sub.id);
      post(sub, close);
    }
    conn.subs.clear();
  };
  return conn;
}

/** A socket leaves its connection; the last one closes it (`reply`: the page asked, and gets
 * the connection's final close event; otherwise the page is gone and hears nothing). */
function leave(sub, code, reason, reply) {
  const { conn, client } = sub;
  client.subs.delete(sub.id);
  conn.subs.delete(sub);
  if (conn.subs.size > 0 || conn.closing) {
    if (reply) post(sub, { t: "close", code, reason, wasClean: true, unsent: [] });
    return;
  }
  conn.closing = true;
  if (connections.get(conn.key) === conn) connections.delete(conn.key);
  if (reply) {
    conn.last = sub;
    client.subs.set(sub.id, sub);
  }
  try {
    conn.socket.close(code, reason);
  } catch {
    conn.socket.close();
  }
}

/** Reports `bufferedAmount` and how many bytes of each page's sends were taken, once the
 * current burst of sends is handled, then while anything is left unsent. */
function scheduleState(conn) {
  if (conn.stateTimer !== null) return;
  conn.stateTimer = setTimeout(() => {
    conn.stateTimer = null;
    if (conn.socket.readyState === Socket.CLOSED) return;
    const buffered = conn.socket.bufferedAmount;
    const retryCount = conn.socket.retryCount;
    for (const sub of conn.subs) {
      if (sub.acked === sub.received && buffered === conn.lastBuffered) continue;
      sub.acked = sub.received;
      post(sub, { t: "state", acked: sub.received, buffered, retryCount });
    }
    conn.lastBuffered = buffered;
    if (buffered > 0) scheduleState(conn);
  }, conn.lastBuffered > 0 ? STATE_INTERVAL : 0);
}

function broadcast(conn, message) {
  for (const sub of conn.subs) post(sub, message);
  if (message.t !== "message") scheduleState(conn);
}

function post(sub, message) {
  sub.client.port.postMessage({ ...message, id: sub.id });
}

/** Errors cross postMessage as plain data (a structured clone would drop `kind`). */
function serializeError(error) {
  return {
    name: error?.name ?? "Error",
    message: String(error?.message ?? error),
    kind: error?.kind,
    status: error?.status,
  };
}
