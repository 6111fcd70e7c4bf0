// The unisock demo: a chat room between tabs, an echo panel, a live event log, the
// connection state and round-trip time, and a button that makes the server drop this page's
// connections to show the reconnect and the queued messages arriving.
//
// Served by `unisock serve` (scripts/demo.sh): the page at /, the npm package at /pkg/.
// No bundler: `Socket` is used exactly like the browser's WebSocket, plus options.

import init, { Socket } from "/pkg/unisock.js";

await init();

// --- Elements ------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const ui = {
  state: $("state"),
  rtt: $("rtt"),
  buffered: $("buffered"),
  drop: $("drop"),
  join: $("join"),
  room: $("room"),
  name: $("name"),
  messages: $("messages"),
  compose: $("compose"),
  text: $("text"),
  say: $("say"),
  echoForm: $("echo-form"),
  echoText: $("echo-text"),
  echoBinary: $("echo-binary"),
  echoes: $("echoes"),
  log: $("log"),
  clearLog: $("clear-log"),
  clientId: $("client-id"),
};

// --- Identity ---------------------------------------------------------------------------

// The server knows this page's connections by this id, for POST /drop?client_id=….
const clientId = `tab-${randomHex(6)}`;
ui.clientId.textContent = clientId;
ui.name.value = sessionStorage.getItem("unisock-demo-name") ?? `guest-${randomHex(2)}`;
const hashRoom = new URLSearchParams(location.hash.slice(1)).get("room");
if (hashRoom) ui.room.value = hashRoom;

const WS_BASE = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

/** Reconnect slowly enough to watch it happen. */
const RECONNECT = { minDelay: 1000, maxDelay: 8000, factor: 2, minUptime: 3000 };

// --- Event log ------------------------------------------------------------------------

const MAX_LOG = 300;

function log(source, type, detail = "") {
  const item = document.createElement("li");
  item.dataset.type = type;
  item.append(
    span("time", clock()),
    span("source", source),
    span("type", type),
    span("detail", detail),
  );
  ui.log.prepend(item);
  while (ui.log.childElementCount > MAX_LOG) ui.log.lastElementChild.remove();
}

/**
 * Logs every event of `socket` under the name `source`. `describe(data)` renders a message
 * for the log, or returns null to leave it out.
 */
function logEvents(socket, source, describe = describeData) {
  socket.addEventListener("open", () =>
    log(source, "open", socket.protocol ? `subprotocol ${socket.protocol}` : ""));
  socket.addEventListener("message", (event) => {
    const text = describe(event.data);
    if (text !== null) log(source, "message", text);
  });
  socket.addEventListener("error", (event) => log(source, "error", event.message));
  socket.addEventListener("reconnecting", (event) =>
    log(source, "reconnecting",
      `attempt ${event.attempt} in ${Math.round(event.delay)} ms (closed with ${event.code}${event.reason ? ` "${event.reason}"` : ""})`));
  socket.addEventListener("close", (event) => {
    const unsent = event.unsent.length ? `, ${event.unsent.length} unsent` : "";
    log(source, "close", `${event.code}${event.reason ? ` "${event.reason}"` : ""} ${event.wasClean ? "clean" : "not clean"}${unsent}`);
  });
}

ui.clearLog.addEventListener("click", () => ui.log.replaceChildren());

// --- State badge ------------------------------------------------------------------------

const STATE_NAMES = ["connecting", "open", "closing", "closed"];
let reconnectAt = 0; // when the pending reconnect attempt starts (performance.now())
let reconnectAttempt = 0;

function renderState() {
  const socket = room;
  if (!socket) {
    setBadge("idle", "not connected");
  } else if (socket.readyState === Socket.CONNECTING && reconnectAttempt > 0) {
    const wait = Math.max(0, reconnectAt - performance.now());
    setBadge("reconnecting",
      wait > 0 ? `reconnecting in ${(wait / 1000).toFixed(1)} s (attempt ${reconnectAttempt})`
               : `reconnecting (attempt ${reconnectAttempt})`);
  } else {
    setBadge(STATE_NAMES[socket.readyState], STATE_NAMES[socket.readyState]);
  }
  ui.buffered.textContent = formatBytes(socket ? socket.bufferedAmount : 0);
  ui.drop.disabled = !socket || socket.readyState !== Socket.OPEN;
}

function setBadge(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

setInterval(renderState, 100);

// --- Room chat ------------------------------------------------------------------------

let room = null;
const pending = new Map(); // id of my message → its <li>, until the room sends it back

ui.join.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!ui.room.checkValidity()) return;
  sessionStorage.setItem("unisock-demo-name", ui.name.value);
  history.replaceState(null, "", `#room=${encodeURIComponent(ui.room.value)}`);
  joinRoom(ui.room.value);
});

function joinRoom(name) {
  if (room) {
    room.close(1000, "switching rooms");
  }
  ui.messages.replaceChildren();
  pending.clear();
  reconnectAttempt = 0;
  // notify_self=true: my own messages come back, which confirms their delivery.
  const socket = new Socket(
    `${WS_BASE}/rooms/${encodeURIComponent(name)}?notify_self=true&client_id=${clientId}`,
    { reconnect: RECONNECT },
  );
  room = socket;
  logEvents(socket, "room", (data) => {
    const message = parseChat(data);
    return message.id ? `${message.name}: ${message.text}` : message.text;
  });
  socket.onopen = () => {
    reconnectAttempt = 0;
    notice(`joined room “${name}”`);
    setComposing(true);
    renderState();
  };
  socket.onreconnecting = (event) => {
    reconnectAttempt = event.attempt;
    reconnectAt = performance.now() + event.delay;
    notice("connection lost: reconnecting… (messages you send now are queued)");
    renderState();
  };
  socket.onmessage = (event) => {
    if (room === socket) showChat(event.data);
  };
  socket.onclose = (event) => {
    if (room === socket) {
      notice(`disconnected (${event.code})`);
      setComposing(false);
      renderState();
    }
  };
  renderState();
}

ui.compose.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !room) return;
  const message = { id: `${clientId}-${randomHex(4)}`, from: clientId, name: ui.name.value, text, sentAt: Date.now() };
  const queued = room.readyState !== Socket.OPEN;
  room.send(JSON.stringify(message)); // queued by unisock while (re)connecting
  pending.set(message.id, addChat(message, true, queued ? "queued" : "sending"));
  ui.text.value = "";
  renderState();
});

/** A chat message `{ id, from, name, text, sentAt }` from the room (anything else as text). */
function parseChat(data) {
  try {
    const message = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
    if (typeof message?.text === "string") return message;
  } catch {
    // Not JSON: someone else's client; shown as it is.
  }
  return { from: "?", name: "?", text: describeData(data) };
}

function showChat(data) {
  const message = parseChat(data);
  const mine = pending.get(message.id);
  if (mine) {
    pending.delete(message.id);
    setStatus(mine, "delivered");
    return;
  }
  addChat(message, message.from === clientId, "delivered");
}

function addChat(message, mine, status) {
  const item = document.createElement("li");
  item.className = mine ? "mine" : "theirs";
  item.append(span("who", mine ? "you" : message.name), span("text", message.text), span("status", ""));
  setStatus(item, status);
  ui.messages.append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function setStatus(item, status) {
  item.dataset.status = status;
  const labels = { queued: "⏳ queued", sending: "sending…", delivered: "✓" };
  item.querySelector(".status").textContent = item.classList.contains("mine") ? labels[status] : "";
}

function notice(text) {
  const item = document.createElement("li");
  item.className = "notice";
  item.textContent = text;
  ui.messages.append(item);
  item.scrollIntoView({ block: "nearest" });
}

function setComposing(enabled) {
  ui.text.disabled = !enabled;
  ui.say.disabled = !enabled;
  if (enabled) ui.text.focus({ preventScroll: true });
}

// --- Echo and round-trip time -----------------------------------------------------------

const RTT_PREFIX = "rtt:";
const rtts = [];
const echo = new Socket(`${WS_BASE}/echo?client_id=${clientId}`, { reconnect: RECONNECT });
// The round-trip probes would flood the log: left out.
logEvents(echo, "echo", (data) =>
  typeof data === "string" && data.startsWith(RTT_PREFIX) ? null : describeData(data));

echo.onmessage = (event) => {
  const { data } = event;
  if (typeof data === "string" && data.startsWith(RTT_PREFIX)) {
    rtts.push(performance.now() - Number(data.slice(RTT_PREFIX.length)));
    if (rtts.length > 10) rtts.shift();
    ui.rtt.textContent = formatMs(median(rtts));
    return;
  }
  addEcho("←", describeData(data));
};

// One probe a second, only while open (a probe queued while offline would measure the outage).
setInterval(() => {
  if (echo.readyState === Socket.OPEN) echo.send(`${RTT_PREFIX}${performance.now()}`);
  else ui.rtt.textContent = "–";
}, 1000);

ui.echoForm.addEventListener("submit", (event) => {
  event.preventDefault();
  echo.send(ui.echoText.value);
  addEcho("→", describeData(ui.echoText.value));
});

ui.echoBinary.addEventListener("click", () => {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  echo.send(bytes);
  addEcho("→", describeData(bytes.buffer));
});

function addEcho(direction, text) {
  const item = document.createElement("li");
  item.append(span("dir", direction), span("time", clock()), span("text", text));
  ui.echoes.prepend(item);
  while (ui.echoes.childElementCount > 50) ui.echoes.lastElementChild.remove();
}

// --- Drop connection ------------------------------------------------------------------

ui.drop.addEventListener("click", async () => {
  ui.drop.disabled = true;
  log("page", "drop", `POST /drop?client_id=${clientId}`);
  try {
    const response = await fetch(`/drop?client_id=${encodeURIComponent(clientId)}`, { method: "POST" });
    log("page", "drop", response.ok ? "the server dropped this page's connections" : `HTTP ${response.status}`);
  } catch (error) {
    log("page", "drop", `failed: ${error.message}`);
  }
});

// --- Helpers --------------------------------------------------------------------------

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function clock() {
  const now = new Date();
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)}`;
}

function describeData(data) {
  if (typeof data === "string") return data.length > 120 ? `${data.slice(0, 120)}…` : data;
  const bytes = new Uint8Array(data);
  const hex = [...bytes.slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return `binary ${bytes.length} B [${hex}${bytes.length > 16 ? " …" : ""}]`;
}

function randomHex(bytes) {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function formatMs(ms) {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

function formatBytes(bytes) {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}

// --- Start --------------------------------------------------------------------------------

// For the end-to-end test and the curious (devtools): the live sockets.
window.unisockDemo = {
  clientId,
  get room() { return room; },
  get echo() { return echo; },
};

joinRoom(ui.room.value);
