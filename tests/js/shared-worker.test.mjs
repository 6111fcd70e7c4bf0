// SharedSocket (pkg/unisock-shared.js + pkg/unisock-worker.js) in headless Chromium through
// playwright-core: pages of one origin share ONE server connection held in a SharedWorker,
// every page gets every message, a page reload does not drop it, it closes once the last page
// is gone (also when pages cannot say goodbye: Web Locks), and the dedicated-Worker fallback.
// Run:
//   node --test --test-force-exit tests/js/shared-worker.test.mjs
// Needs pkg/ (bash scripts/build-pkg.sh), tools/node (playwright-core) and tests/peers (ws).
// The server is in this file: a Node http server on 127.0.0.1 serving pkg/ and a blank page,
// with a `ws` WebSocket server on the same port that counts connections. Every wait is bounded.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { extname, join, normalize } from "node:path";
import { describe, it } from "node:test";

import { ROOT, clientId, serverAndChromium, newWatchedPage, startServer as startUnisockServe, until } from "./support.mjs";

const { WebSocketServer } = createRequire(join(ROOT, "tests", "peers", "package.json"))("ws");

const WAIT = 10_000; // ms, for anything the pages or the server do
const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".ts": "text/plain", ".json": "application/json" };


/**
 * HTTP: `/` a blank page, `/pkg/…` the package. WebSocket, any path: the connections are
 * counted per path (`opened`, `open`), what they send is recorded (`received`), their closes
 * too (`closes`); `broadcast(path, data)` sends to every open connection of that path; the
 * subprotocol "chat" is selected when offered.
 */
async function startServer() {
  const http = createServer(async (request, response) => {
    const path = new URL(request.url, "http://x").pathname;
    if (path === "/favicon.ico") {
      response.writeHead(204).end();
      return;
    }
    if (path === "/") {
      response.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>shared</title>");
      return;
    }
    const file = normalize(join(ROOT, path));
    if (!path.startsWith("/pkg/") || !file.startsWith(join(ROOT, "pkg"))) {
      response.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  const state = { opened: new Map(), sockets: new Map(), received: [], closes: [] };
  const wss = new WebSocketServer({
    server: http,
    handleProtocols: (protocols) => (protocols.has("chat") ? "chat" : false),
  });
  wss.on("connection", (socket, request) => {
    const path = request.url;
    state.opened.set(path, (state.opened.get(path) ?? 0) + 1);
    if (!state.sockets.has(path)) state.sockets.set(path, new Set());
    state.sockets.get(path).add(socket);
    socket.on("message", (data, isBinary) => {
      state.received.push({ path, data: isBinary ? [...data] : data.toString() });
    });
    socket.on("close", (code, reason) => {
      state.sockets.get(path).delete(socket);
      state.closes.push({ path, code, reason: reason.toString(), at: Date.now() });
    });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address();
  return {
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    /** Connections ever opened on `path`. */
    opened: (path) => state.opened.get(path) ?? 0,
    /** Connections open now on `path`. */
    open: (path) => state.sockets.get(path)?.size ?? 0,
    received: (path) => state.received.filter((r) => r.path === path).map((r) => r.data),
    closes: (path) => state.closes.filter((c) => c.path === path),
    broadcast(path, data) {
      for (const socket of state.sockets.get(path) ?? []) socket.send(data);
    },
    /** Drops every connection of `path` without a close frame. */
    cut(path) {
      for (const socket of state.sockets.get(path) ?? []) socket.terminate();
    },
    stop: () => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      http.closeAllConnections?.();
      http.close(() => resolve());
    }),
  };
}

const env = serverAndChromium(startServer);

let paths = 0;
/** A fresh WebSocket path per test, so that the server's counts are the test's own. */
function freshPath(name) {
  paths += 1;
  return `/${name}-${paths}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A new page of the test origin, collecting its errors. `before` runs in the page first. */
async function newPage(context, label, before) {
  const { page, problems } = await newWatchedPage(context, label, WAIT);
  if (before) await page.addInitScript(before);
  await page.goto(`${env.server.http}/`);
  return { page, problems };
}

/**
 * In `page`: `window.sockets[name] = new SharedSocket(url, options)`, every event recorded in
 * `window.logs[name]`; waits for `open` (unless `waitOpen` is false). Returns what the socket
 * shows right after the constructor.
 */
function openSocket(page, name, url, options, waitOpen = true) {
  return page.evaluate(async ({ name, url, options, waitOpen, wait }) => {
    const { SharedSocket } = await import("/pkg/unisock.js");
    const socket = new SharedSocket(url, options);
    window.sockets ??= {};
    window.logs ??= {};
    window.sockets[name] = socket;
    const log = (window.logs[name] = []);
    const plain = (data) => (typeof data === "string" ? data : { bytes: [...new Uint8Array(data)] });
    for (const type of ["open", "message", "error", "close", "reconnecting", "session", "gap"]) {
      socket.addEventListener(type, function (event) {
        const entry = { type, target: event.target === socket && this === socket };
        if (type === "message") Object.assign(entry, { data: plain(event.data), origin: event.origin, isMessageEvent: event instanceof MessageEvent });
        if (type === "error") Object.assign(entry, { kind: event.error?.kind, message: event.message });
        if (type === "close") {
          Object.assign(entry, {
            code: event.code, reason: event.reason, wasClean: event.wasClean,
            unsent: event.unsent.map(plain), isCloseEvent: event instanceof CloseEvent,
          });
        }
        if (type === "reconnecting") Object.assign(entry, { attempt: event.attempt, delay: event.delay, code: event.code, reason: event.reason, wasClean: event.wasClean });
        if (type === "session") Object.assign(entry, { acknowledged: event.acknowledged, resumed: event.resumed });
        if (type === "gap") Object.assign(entry, { direction: event.direction, first: event.first, last: event.last, reason: event.reason, messages: event.messages.map(plain) });
        log.push(entry);
      });
    }
    const initial = { readyState: socket.readyState, url: socket.url, bufferedAmount: socket.bufferedAmount };
    if (waitOpen) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no open event`)), wait);
        socket.addEventListener("open", () => { clearTimeout(timer); resolve(); }, { once: true });
        socket.addEventListener("close", (e) => { clearTimeout(timer); reject(new Error(`${name}: closed (${e.code}) before open`)); }, { once: true });
      });
    }
    return initial;
  }, { name, url, options, waitOpen, wait: WAIT });
}

/** The events `name` recorded in `page`. */
const logOf = (page, name) => page.evaluate((name) => window.logs[name], name);

/** Waits until `name` in `page` has recorded an event matching `predicate`; returns the log. */
async function untilLogged(page, name, what, predicate) {
  return until(WAIT, `${name}: ${what}`, async () => {
    const log = await logOf(page, name);
    return log.some(predicate) ? log : null;
  });
}

const messagesOf = (log) => log.filter((e) => e.type === "message").map((e) => e.data);

/** Fails unless `condition` stays false for `ms`. */
async function never(ms, what, condition) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    assert.ok(!(await condition()), what);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("SharedSocket in a SharedWorker", () => {
  it("two pages share one connection, both get every message, a reload keeps it, the last page to go closes it", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const path = freshPath("room");
    const url = `${env.server.ws}${path}`;
    const options = { protocols: ["chat"], reconnect: { minDelay: 50, maxDelay: 50 } };
    const a = await newPage(context, "page A");
    const b = await newPage(context, "page B");

    const initial = await openSocket(a.page, "s", `${url}?token=secret#x`, options);
    assert.deepEqual(initial, { readyState: 0, url, bufferedAmount: 0 });
    await openSocket(b.page, "s", `${url}?token=secret`, options);
    // ONE connection, and it stays one.
    assert.equal(env.server.opened(`${path}?token=secret`), 1);
    await never(300, "a second connection was opened", () => env.server.opened(`${path}?token=secret`) > 1);
    const p = `${path}?token=secret`;

    for (const { page } of [a, b]) {
      assert.deepEqual(await page.evaluate(() => {
        const s = window.sockets.s;
        return { readyState: s.readyState, protocol: s.protocol, url: s.url, binaryType: s.binaryType, OPEN: s.OPEN };
      }), { readyState: 1, protocol: "chat", url, binaryType: "arraybuffer", OPEN: 1 });
    }

    // Both pages get every message, text and binary.
    env.server.broadcast(p, "hello pages");
    env.server.broadcast(p, Buffer.from([1, 2, 3]));
    for (const { page } of [a, b]) {
      const log = await untilLogged(page, "s", "two messages", (e) => e.type === "message" && e.data.bytes);
      assert.deepEqual(messagesOf(log), ["hello pages", { bytes: [1, 2, 3] }]);
      const message = log.find((e) => e.type === "message");
      assert.deepEqual([message.target, message.origin, message.isMessageEvent], [true, env.server.ws, true]);
    }

    // Both pages send on the one connection, text and binary (views are copied at once).
    await a.page.evaluate(() => {
      const bytes = new Uint8Array([9, 8, 7, 6]);
      window.sockets.s.send("from A");
      window.sockets.s.send(bytes.subarray(1, 3));
      bytes.fill(0);
    });
    await b.page.evaluate(() => window.sockets.s.send("from B"));
    await until(WAIT, "3 messages at the server", () => env.server.received(p).length >= 3);
    assert.deepEqual(env.server.received(p).slice(0, 2), ["from A", [8, 7]]);
    assert.ok(env.server.received(p).includes("from B"));
    await until(WAIT, "bufferedAmount back to 0", () => a.page.evaluate(() => window.sockets.s.bufferedAmount === 0));

    // Reload A: B's connection stays up, untouched; A joins it again.
    await a.page.reload();
    await openSocket(a.page, "s", `${url}?token=secret`, options);
    assert.equal(env.server.opened(p), 1, "still the first connection");
    assert.deepEqual(env.server.closes(p), []);
    env.server.broadcast(p, "after the reload");
    for (const { page } of [a, b]) {
      await untilLogged(page, "s", "the message after the reload", (e) => e.data === "after the reload");
    }
    const bLog = await logOf(b.page, "s");
    assert.deepEqual(bLog.map((e) => e.type), ["open", "message", "message", "message"], "B saw no drop");

    // Close both pages: the server sees the connection close, once, soon after the last.
    await a.page.close();
    await never(500, "the connection closed while B was still there", () => env.server.closes(p).length > 0);
    await b.page.close();
    const closed = Date.now();
    await until(5_000, "the server to see the close", () => env.server.closes(p).length > 0);
    assert.equal(env.server.closes(p)[0].code, 1000);
    assert.ok(env.server.closes(p)[0].at - closed < 5_000);
    assert.equal(env.server.opened(p), 1);
    assert.deepEqual([...a.problems, ...b.problems], []);
    await context.close();
  });

  it("notices pages that go away without a goodbye (Web Locks)", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const path = freshPath("locks");
    // Swallow `pagehide` before SharedSocket sees it, as if the page had crashed.
    const silent = () => window.addEventListener("pagehide", (event) => event.stopImmediatePropagation(), true);
    const a = await newPage(context, "page A", silent);
    const b = await newPage(context, "page B", silent);
    await openSocket(a.page, "s", `${env.server.ws}${path}`);
    await openSocket(b.page, "s", `${env.server.ws}${path}`);
    assert.equal(env.server.opened(path), 1);

    await a.page.close();
    await never(500, "the connection closed while B was still there", () => env.server.closes(path).length > 0);
    env.server.broadcast(path, "still here");
    await untilLogged(b.page, "s", "a message after A went", (e) => e.data === "still here");

    // The worker has let A go: B is the last page, so its close() closes the connection (were
    // A still counted, it would only detach B). Without the lock, only the browser ending the
    // worker after the last page would close it, with 1001.
    await b.page.evaluate(() => window.sockets.s.close(4005, "B was last"));
    await until(WAIT, "the server to see B's close", () => env.server.closes(path).length > 0);
    assert.deepEqual([env.server.closes(path)[0].code, env.server.closes(path)[0].reason], [4005, "B was last"]);
    assert.equal(env.server.opened(path), 1);
    await context.close();
  });

  it("reconnects once, in the worker, for every page", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const path = freshPath("reconnect");
    const options = { reconnect: { minDelay: 50, maxDelay: 50 } };
    const a = await newPage(context, "page A");
    const b = await newPage(context, "page B");
    await openSocket(a.page, "s", `${env.server.ws}${path}`, options);
    await openSocket(b.page, "s", `${env.server.ws}${path}`, options);

    env.server.cut(path);
    for (const { page } of [a, b]) {
      const log = await until(WAIT, "reopened", async () => {
        const log = await logOf(page, "s");
        return log.filter((e) => e.type === "open").length === 2 ? log : null;
      });
      assert.deepEqual(log.map((e) => e.type), ["open", "reconnecting", "open"]);
      const reconnecting = log[1];
      assert.deepEqual([reconnecting.attempt, reconnecting.code, reconnecting.wasClean, reconnecting.target], [1, 1006, false, true]);
      assert.equal(typeof reconnecting.delay, "number");
    }
    assert.equal(env.server.opened(path), 2, "one reconnect for both pages");
    assert.equal(await a.page.evaluate(() => window.sockets.s.readyState), 1);
    await b.page.evaluate(() => window.sockets.s.send("after the reconnect"));
    await until(WAIT, "the message after the reconnect", () => env.server.received(path).includes("after the reconnect"));
    await context.close();
  });

  it("a for await loop that falls receiveBuffer behind gets what it holds, then ReaderLagged", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const path = freshPath("lagged");
    const a = await newPage(context, "page A");
    await openSocket(a.page, "s", `${env.server.ws}${path}`, { receiveBuffer: 2 });
    await a.page.evaluate(() => { window.iterator = window.sockets.s[Symbol.asyncIterator](); });
    for (const text of ["m0", "m1", "m2", "m3"]) env.server.broadcast(path, text);
    await until(WAIT, "four messages", async () => messagesOf(await logOf(a.page, "s")).length === 4);
    const read = await a.page.evaluate(async () => {
      const got = [(await window.iterator.next()).value, (await window.iterator.next()).value];
      const error = await window.iterator.next().then(() => null, (e) => ({ name: e.name, kind: e.kind }));
      return { got, error, after: await window.iterator.next(), readyState: window.sockets.s.readyState };
    });
    assert.deepEqual(read, { got: ["m0", "m1"], error: { name: "UnisockError", kind: "ReaderLagged" }, after: { value: undefined, done: true }, readyState: 1 });
    assert.deepEqual(a.problems, []);
    await context.close();
  });

  it("close(code, reason) detaches a page; the last one closes the connection with its code", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const path = freshPath("close");
    const a = await newPage(context, "page A");
    const b = await newPage(context, "page B");
    await openSocket(a.page, "s", `${env.server.ws}${path}`);
    await openSocket(b.page, "s", `${env.server.ws}${path}`);

    const thrown = await a.page.evaluate(() => {
      const s = window.sockets.s;
      const name = (f) => { try { f(); return "none"; } catch (e) { return e.name; } };
      return [name(() => s.close(1001)), name(() => s.close(4000, "x".repeat(124))), name(() => s.send(new Blob(["x"]))), name(() => s.send(42))];
    });
    assert.deepEqual(thrown, ["InvalidAccessError", "SyntaxError", "TypeError", "TypeError"]);

    await a.page.evaluate(() => window.sockets.s.close(4000, "A leaves"));
    const aLog = await untilLogged(a.page, "s", "close", (e) => e.type === "close");
    assert.deepEqual(aLog.at(-1), { type: "close", target: true, code: 4000, reason: "A leaves", wasClean: true, unsent: [], isCloseEvent: true });
    assert.deepEqual(await a.page.evaluate(() => {
      const s = window.sockets.s;
      let kind = "none";
      try { s.send("late"); } catch (e) { kind = e.kind; }
      return [s.readyState, kind];
    }), [3, "Closed"]);
    await never(300, "A's close closed the shared connection", () => env.server.closes(path).length > 0);

    env.server.broadcast(path, "only B");
    await untilLogged(b.page, "s", "a message after A left", (e) => e.data === "only B");
    await b.page.evaluate(() => window.sockets.s.close(4001, "B is last"));
    const bLog = await untilLogged(b.page, "s", "close", (e) => e.type === "close");
    assert.deepEqual(bLog.at(-1), { type: "close", target: true, code: 4001, reason: "B is last", wasClean: true, unsent: [], isCloseEvent: true });
    await until(WAIT, "the server to see B's close", () => env.server.closes(path).length > 0);
    assert.deepEqual([env.server.closes(path)[0].code, env.server.closes(path)[0].reason], [4001, "B is last"]);
    assert.deepEqual(messagesOf(await logOf(a.page, "s")), [], "A got nothing after it left");
    assert.deepEqual([...a.problems, ...b.problems], []);
    await context.close();
  });

  it("one worker, a connection per URL and options; errors reach the page", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const [one, two] = [freshPath("one"), freshPath("two")];
    const a = await newPage(context, "page A");
    const b = await newPage(context, "page B");
    await openSocket(a.page, "one", `${env.server.ws}${one}`);
    await openSocket(a.page, "two", `${env.server.ws}${two}`);
    await openSocket(b.page, "one", `${env.server.ws}${one}`);
    // Same URL, other options: a connection of its own.
    await openSocket(b.page, "other", `${env.server.ws}${one}`, { connectTimeout: 5_000 });
    assert.deepEqual([env.server.opened(one), env.server.opened(two)], [2, 1]);
    // The on… handlers and `for await` see the messages too.
    const seen = a.page.evaluate((wait) => new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error("no messages through onmessage and for await")), wait);
      const s = window.sockets.two;
      let handled;
      s.onmessage = function (event) { handled = [this === s, event.data]; };
      (async () => {
        const iterated = [];
        for await (const data of s) {
          iterated.push(data);
          if (iterated.length === 2) break;
        }
        resolve({ handled, iterated, handler: typeof s.onmessage });
      })();
    }), WAIT);
    await until(WAIT, "the listeners to be set", () => a.page.evaluate(() => window.sockets.two.onmessage !== null));
    env.server.broadcast(two, "to two");
    env.server.broadcast(two, "again");
    assert.deepEqual(await seen, { handled: [true, "again"], iterated: ["to two", "again"], handler: "function" });
    assert.deepEqual(messagesOf(await logOf(a.page, "one")), []);

    // Thrown in the page: a bad URL, functions in the options; from the worker: bad options.
    const thrown = await a.page.evaluate(async () => {
      const { SharedSocket } = await import("/pkg/unisock.js");
      const name = (f) => { try { f(); return "none"; } catch (e) { return e.name; } };
      return [
        name(() => new SharedSocket("ftp://127.0.0.1/x")),
        name(() => new SharedSocket("ws://127.0.0.1:1/x", { reconnect: { shouldReconnect: () => true } })),
        name(() => new SharedSocket("ws://127.0.0.1:1/x", { worker: "nope" })),
      ];
    });
    assert.deepEqual(thrown, ["SyntaxError", "TypeError", "TypeError"]);
    await openSocket(a.page, "bad", `${env.server.ws}${one}`, { reconect: false }, false);
    const log = await untilLogged(a.page, "bad", "close", (e) => e.type === "close");
    assert.deepEqual(log.map((e) => [e.type, e.code]), [["error", undefined], ["close", 1006]]);
    assert.match(log[0].message, /unknown option options\.reconect/);
    assert.deepEqual(env.server.opened(one), 2);

    // A worker script that does not load: the sockets fail (error, then close 1006).
    await openSocket(a.page, "lost", `${env.server.ws}${one}`, { workerUrl: "/pkg/missing.js" }, false);
    const lost = await untilLogged(a.page, "lost", "close", (e) => e.type === "close");
    assert.deepEqual(lost.map((e) => [e.type, e.kind ?? e.code]), [["error", "Runtime"], ["close", 1006]]);
    assert.deepEqual(env.server.opened(one), 2);
    await context.close();
  });
});

describe("SharedSocket with acknowledged sessions (unisock serve)", () => {
  it("tells every page the session mode, resumes once for all, and forwards gaps", { timeout: 90_000 }, async () => {
    let unisock = await startUnisockServe();
    const context = await env.browser.newContext();
    try {
      const id = clientId("shared");
      const url = `${unisock.ws}/echo?client_id=${id}`;
      const options = { session: true, reconnect: { minDelay: 20, maxDelay: 200 }, heartbeat: { interval: 200, timeout: 200 } };
      const sessionsOf = (log) => log.filter((e) => e.type === "session").map((e) => [e.acknowledged, e.resumed]);
      const a = await newPage(context, "page A");
      await openSocket(a.page, "s", url, options);
      await untilLogged(a.page, "s", "the session event", (e) => e.type === "session");
      // B joins the running connection: it hears the current mode right after its open.
      const b = await newPage(context, "page B");
      await openSocket(b.page, "s", url, options);
      const joined = await untilLogged(b.page, "s", "the session event", (e) => e.type === "session");
      assert.deepEqual(joined.map((e) => e.type), ["open", "session"]);
      assert.deepEqual(sessionsOf(await logOf(a.page, "s")), [[true, false]]);
      assert.deepEqual(sessionsOf(joined), [[true, false]]);

      // The server drops the connection: one resume, reported to both pages, nothing lost.
      await a.page.evaluate(() => window.sockets.s.send("before the drop"));
      await untilLogged(b.page, "s", "the first echo", (e) => e.type === "message");
      const dropped = await fetch(`${unisock.http}/drop?client_id=${id}`, { method: "POST" });
      assert.equal(dropped.status, 204);
      await b.page.evaluate(() => window.sockets.s.send("after the drop"));
      for (const { page } of [a, b]) {
        const log = await untilLogged(page, "s", "the resume", (e) => e.type === "session" && e.resumed);
        assert.deepEqual(sessionsOf(log), [[true, false], [true, true]]);
        const echoes = await until(WAIT, "both echoes", async () => {
          const messages = messagesOf(await logOf(page, "s"));
          return messages.length >= 2 ? messages : null;
        });
        assert.deepEqual(echoes, ["before the drop", "after the drop"]);
      }

      // A restarted server has lost the session: each page gets the gap and a fresh session.
      const port = unisock.port;
      await unisock.stop();
      unisock = await startUnisockServe({ port });
      for (const { page } of [a, b]) {
        const log = await until(WAIT, "the gap and a new session", async () => {
          const log = await logOf(page, "s");
          return sessionsOf(log).length === 3 && log.some((e) => e.type === "gap") ? log : null;
        });
        const gaps = log.filter((e) => e.type === "gap");
        assert.ok(gaps.every((gap) => gap.reason === "sessionUnknown" && gap.target), JSON.stringify(gaps));
        assert.deepEqual(sessionsOf(log)[2], [true, false]);
      }
      assert.deepEqual([...a.problems, ...b.problems], []);
    } finally {
      await context.close();
      await unisock.stop();
    }
  });
});

describe("SharedSocket with a dedicated Worker (the fallback)", () => {
  it("is used where SharedWorker is missing, and with worker: \"dedicated\": a connection per page", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const path = freshPath("dedicated");
    const options = { reconnect: { minDelay: 50, maxDelay: 50 } };
    // Page A has no SharedWorker; page B asks for a dedicated worker.
    const a = await newPage(context, "page A", () => { delete window.SharedWorker; });
    const b = await newPage(context, "page B");
    await openSocket(a.page, "s", `${env.server.ws}${path}`, options);
    await openSocket(b.page, "s", `${env.server.ws}${path}`, { ...options, worker: "dedicated" });
    assert.equal(env.server.opened(path), 2, "no sharing without a SharedWorker");

    // Messages both ways, a reconnect, then close(code, reason) reaches the server.
    env.server.broadcast(path, "hello");
    env.server.broadcast(path, Buffer.from([4, 5]));
    await a.page.evaluate(() => window.sockets.s.send(new Uint8Array([7, 7]).buffer));
    for (const { page } of [a, b]) {
      const log = await untilLogged(page, "s", "two messages", (e) => e.type === "message" && e.data.bytes);
      assert.deepEqual(messagesOf(log), ["hello", { bytes: [4, 5] }]);
    }
    await until(WAIT, "A's binary message", () => env.server.received(path).some((d) => Array.isArray(d) && d.join() === "7,7"));

    env.server.cut(path);
    for (const { page } of [a, b]) {
      await until(WAIT, "reopened", async () => (await logOf(page, "s")).filter((e) => e.type === "open").length === 2);
    }
    assert.equal(env.server.opened(path), 4);

    await a.page.evaluate(() => window.sockets.s.close(4002, "dedicated bye"));
    await untilLogged(a.page, "s", "close", (e) => e.type === "close" && e.code === 4002 && e.wasClean);
    await until(WAIT, "the server to see the close", () => env.server.closes(path).some((c) => c.code === 4002 && c.reason === "dedicated bye"));

    // Closing B's page ends its worker and its connection.
    await b.page.close();
    await until(5_000, "the server to see B's connection end", () => env.server.open(path) === 0);
    assert.deepEqual([...a.problems, ...b.problems], []);
    await context.close();
  });
});
