// The npm package (pkg/, wasm-pack --target web) used from Node 20 the way a user would,
// against `unisock serve` on 127.0.0.1. Run:
//   NODE_OPTIONS=--experimental-websocket node --test tests/js/package.test.mjs
// (Node 20 has a global WebSocket only with --experimental-websocket; the browser backend
// of unisock uses it.)

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { clientId, loadPackage, next, startServer, until, within } from "./support.mjs";

let Socket;
let server;

before(async () => {
  ({ Socket } = await loadPackage());
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** Collects every event of the given types, in order, as `[type, event]`. */
function record(socket, types = ["open", "message", "error", "close", "reconnecting"]) {
  const seen = [];
  for (const type of types) socket.addEventListener(type, (event) => seen.push([type, event]));
  return seen;
}

/** Closes `socket` and waits for its close event. */
async function closed(socket, code = 1000, reason = "") {
  if (socket.readyState === Socket.CLOSED) return;
  const close = next(socket, "close");
  socket.close(code, reason);
  return close;
}

describe("Socket from the npm package in Node", () => {
  it("has the WebSocket constants", () => {
    assert.deepEqual([Socket.CONNECTING, Socket.OPEN, Socket.CLOSING, Socket.CLOSED], [0, 1, 2, 3]);
  });

  it("echoes text and binary (ArrayBuffer, Uint8Array views, DataView), in order", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    assert.equal(socket.readyState, socket.CONNECTING);
    assert.equal(socket.url, `${server.ws}/echo`);
    assert.equal(socket.binaryType, "arraybuffer");
    const messages = [];
    socket.onmessage = (event) => messages.push(event.data);
    // Sent before the connection is open: queued, then delivered in order.
    const bytes = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    socket.send("hello ✓");
    socket.send(bytes.buffer.slice(0, 3));
    socket.send(bytes.subarray(2, 5)); // a view with an offset: only its own bytes
    socket.send(new DataView(bytes.buffer, 8, 2));
    socket.send("");
    socket.send(new ArrayBuffer(0));
    await next(socket, "open");
    assert.equal(socket.readyState, Socket.OPEN);
    await until(10_000, "6 echoes", () => messages.length >= 6);
    assert.equal(messages[0], "hello ✓");
    assert.ok(messages[1] instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(messages[1])], [9, 8, 7]);
    assert.deepEqual([...new Uint8Array(messages[2])], [7, 6, 5]);
    assert.deepEqual([...new Uint8Array(messages[3])], [1, 0]);
    assert.equal(messages[4], "");
    assert.ok(messages[5] instanceof ArrayBuffer);
    assert.equal(messages[5].byteLength, 0);
    assert.equal(socket.bufferedAmount, 0);
    await closed(socket);
  });

  it("closes with a code and reason, seen in onclose; then send throws", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    const seen = record(socket);
    await next(socket, "open");
    const close = next(socket, "close");
    socket.close(4001, "bye now");
    assert.equal(socket.readyState, Socket.CLOSING);
    const event = await close;
    assert.equal(event.type, "close");
    assert.equal(event.code, 4001);
    assert.equal(event.reason, "bye now");
    assert.equal(event.wasClean, true);
    assert.deepEqual(event.unsent, []);
    assert.equal(socket.readyState, Socket.CLOSED);
    assert.deepEqual(seen.map(([type]) => type), ["open", "close"]);
    // The event points at the socket (a second wrapper of it: same state, not ===).
    assert.ok(event.target instanceof Socket);
    assert.equal(event.target.readyState, Socket.CLOSED);
    assert.equal(event.target.url, socket.url);
    assert.throws(() => socket.send("late"), { name: "UnisockError", kind: "Closed" });
    socket.close(); // already closed: does nothing, as with WebSocket
  });

  it("throws like WebSocket for bad arguments", () => {
    assert.throws(() => new Socket("not a url"), { name: "SyntaxError" });
    assert.throws(() => new Socket("ftp://127.0.0.1/"), { name: "SyntaxError" });
    assert.throws(() => new Socket(), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, ["chat", "chat"]), { name: "SyntaxError" });
    assert.throws(() => new Socket(`${server.ws}/echo`, "bad protocol"), { name: "SyntaxError" });
    assert.throws(() => new Socket(`${server.ws}/echo`, 42), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, { reconect: false }), /unknown option options\.reconect/);
    assert.throws(() => new Socket(`${server.ws}/echo`, { connectTimeout: "5s" }), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, { reconnect: { minDelay: -1 } }), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, { reconnect: { minDelay: 500, maxDelay: 100 } }), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, { queue: { maxMessages: 0 } }), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, { heartbeat: { ping: "ping" } }), /pong/);
    assert.throws(() => new Socket(`${server.ws}/echo`, { heartbeat: { ping: 1, pong: 2 } }), TypeError);

    const socket = new Socket(`${server.ws}/echo`, { reconnect: false });
    assert.throws(() => socket.close(1001), { name: "InvalidAccessError" });
    assert.throws(() => socket.close(2999), { name: "InvalidAccessError" });
    assert.throws(() => socket.close(1000, "x".repeat(124)), { name: "SyntaxError" });
    assert.throws(() => socket.send(42), TypeError);
    assert.throws(() => socket.send({}), TypeError);
    assert.throws(() => socket.send(new Blob(["x"])), /arrayBuffer/);
    assert.throws(() => (socket.binaryType = "blob"), { name: "NotSupportedError" });
    assert.throws(() => socket.addEventListener("open", 5), TypeError);
    socket.close();
  });

  it("iterates messages with for await until the socket closes", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    socket.send("one");
    socket.send(new Uint8Array([2]));
    socket.send("three");
    const received = [];
    await within(10_000, "the for await loop to end", (async () => {
      for await (const data of socket) {
        received.push(data);
        if (received.length === 3) socket.close(1000, "done");
      }
    })());
    assert.equal(received.length, 3);
    assert.equal(received[0], "one");
    assert.deepEqual([...new Uint8Array(received[1])], [2]);
    assert.equal(received[2], "three");
    assert.equal(socket.readyState, Socket.CLOSED);

    // An iterator of a closed socket is done at once.
    const result = await socket[Symbol.asyncIterator]().next();
    assert.deepEqual(result, { value: undefined, done: true });
  });

  it("a for await loop that falls receiveBuffer behind gets what it holds, then ReaderLagged", async () => {
    assert.throws(() => new Socket(`${server.ws}/echo`, { receiveBuffer: 0 }), TypeError);
    const socket = new Socket(`${server.ws}/echo`, { receiveBuffer: 3 });
    const iterator = socket[Symbol.asyncIterator]();
    const echoed = [];
    socket.onmessage = (event) => echoed.push(event.data);
    for (let i = 0; i < 6; i++) socket.send(String(i));
    await until(10_000, "all six echoes", () => echoed.length === 6);
    // The iterator was not read meanwhile: it kept the first three and stopped.
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await iterator.next()).value);
    assert.deepEqual(got, ["0", "1", "2"]);
    await assert.rejects(iterator.next(), { name: "UnisockError", kind: "ReaderLagged" });
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
    // The socket is unharmed, and a new loop starts afresh.
    assert.equal(socket.readyState, Socket.OPEN);
    const fresh = socket[Symbol.asyncIterator]();
    socket.send("after");
    assert.deepEqual(await within(10_000, "the next echo", fresh.next()), { value: "after", done: false });
    await closed(socket);
  });

  it("leaving a for await loop early keeps the socket open", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    socket.send("a");
    socket.send("b");
    for await (const data of socket) {
      assert.equal(data, "a");
      break;
    }
    assert.equal(socket.readyState, Socket.OPEN);
    // The echo of "b" may still be on its way: wait for the one sent after the loop.
    const echo = within(10_000, "the echo of 'still open'", new Promise((resolve) => {
      socket.addEventListener("message", (event) => event.data === "still open" && resolve(event));
    }));
    socket.send("still open");
    assert.equal((await echo).data, "still open");
    await closed(socket);
  });

  it("points every message event at its own socket (binary and text, two sockets at once)", async () => {
    const sockets = [new Socket(`${server.ws}/echo`), new Socket(`${server.ws}/echo`)];
    const seen = [[], []];
    sockets.forEach((socket, i) => {
      socket.onmessage = function (event) {
        seen[i].push({
          self: this === event.target,
          current: event.currentTarget === event.target,
          src: event.srcElement === event.target,
          // Its own socket: the alias shares that socket's state, its handler included.
          own: event.target.onmessage === socket.onmessage,
          data: typeof event.data === "string" ? event.data : [...new Uint8Array(event.data)],
          type: event.type,
        });
      };
      socket.addEventListener("message", (event) => {
        // A listener may stop the later ones, as on an EventTarget.
        if (event.data === "stop") event.stopImmediatePropagation();
      });
      socket.addEventListener("message", (event) => seen[i].push(`after ${event.type}`));
    });
    await Promise.all(sockets.map((socket) => next(socket, "open")));
    sockets.forEach((socket, i) => {
      socket.send(new Uint8Array([i, 1, 2]));
      socket.send(`text ${i}`);
      socket.send("stop");
    });
    await until(10_000, "the echoes", () => seen.every((s) => s.length === 5));
    seen.forEach((s, i) => {
      const check = (data) => ({ self: true, current: true, src: true, own: true, data, type: "message" });
      assert.deepEqual(s, [check([i, 1, 2]), "after message", check(`text ${i}`), "after message", check("stop")]);
    });
    await Promise.all(sockets.map((socket) => closed(socket)));
  });

  it("delivers events asynchronously, in order, to listeners and handlers in DOM order", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    const calls = [];
    // Registered after the constructor returned: still in time, events are asynchronous.
    socket.addEventListener("message", () => calls.push("listener 1"));
    socket.onmessage = () => calls.push("onmessage (first set here)");
    socket.addEventListener("message", { handleEvent: () => calls.push("handleEvent object") });
    const once = () => calls.push("once");
    socket.addEventListener("message", once, { once: true });
    socket.addEventListener("message", once, { once: true }); // the same again: added once
    const removed = () => calls.push("removed");
    socket.addEventListener("message", removed);
    socket.removeEventListener("message", removed);
    const controller = new AbortController();
    socket.addEventListener("message", () => calls.push("aborted"), { signal: controller.signal });
    controller.abort();
    socket.onmessage = function (event) {
      // Replacing the handler keeps its place; `this` is the socket.
      assert.equal(this.readyState, Socket.OPEN);
      calls.push(`onmessage ${event.data}`);
    };
    socket.send("1");
    assert.deepEqual(calls, [], "nothing is dispatched from inside send()");
    socket.send("2");
    await until(10_000, "two messages", () => calls.filter((c) => c.startsWith("listener")).length === 2);
    assert.deepEqual(calls, [
      "listener 1", "onmessage 1", "handleEvent object", "once",
      "listener 1", "onmessage 2", "handleEvent object",
    ]);
    await closed(socket);
  });

  it("keeps the DOM's rules when listeners add, remove and dispatch from inside a dispatch", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    const calls = [];
    const late = (event) => calls.push(`late ${event.data}`);
    const second = () => calls.push("second");
    const first = (event) => {
      calls.push(`first ${event.data}`);
      if (event.data === "1") {
        socket.addEventListener("message", late); // not called for this event
        socket.dispatchEvent(new Event("custom")); // nested, another type
        socket.dispatchEvent(new Event("message")); // nested, the same type: sees `late`
        socket.removeEventListener("message", second); // not called for this event any more
      }
      if (event.data === "2") {
        socket.removeEventListener("message", first);
        socket.removeEventListener("message", late);
        socket.onmessage = (event) => calls.push(`handler ${event.data}`);
      }
    };
    socket.addEventListener("custom", (event) => calls.push(`custom ${event.type}`));
    socket.addEventListener("message", first);
    socket.addEventListener("message", second);
    for (const data of ["1", "2", "3"]) {
      socket.send(data);
      await until(10_000, `the echo of ${data}`, () => calls.some((c) => c.endsWith(` ${data}`)));
    }
    assert.deepEqual(calls, [
      "first 1", "custom custom", "first undefined", "second", "late undefined",
      "first 2", // `late`, removed by `first`, is not called any more
      "handler 3",
    ]);
    // No listener left: a message still reaches an iterator, and nothing else.
    socket.onmessage = null;
    const iterator = socket[Symbol.asyncIterator]();
    socket.send(new Uint8Array([4]));
    const { value } = await within(10_000, "the echo of [4]", iterator.next());
    assert.deepEqual([...new Uint8Array(value)], [4]);
    assert.equal(calls.length, 7);
    await closed(socket);
  });

  it("reports a listener's exception (reportError) and still runs the next listener", async () => {
    // Browsers and workers have reportError; Node 20 does not (there, the exception becomes
    // an unhandled rejection, which node:test would count as a failure): stand one in.
    const reported = [];
    globalThis.reportError = (error) => reported.push(error);
    try {
      const socket = new Socket(`${server.ws}/echo`);
      socket.addEventListener("open", () => {
        throw new Error("listener bug");
      });
      await next(socket, "open"); // the second listener still runs
      assert.equal(reported.length, 1);
      assert.equal(reported[0].message, "listener bug");
      await closed(socket);
    } finally {
      delete globalThis.reportError;
    }
  });

  it("reconnects after the connection drops, delivering what was sent meanwhile", async () => {
    const id = clientId("node");
    const socket = new Socket(`${server.ws}/echo?client_id=${id}`, {
      reconnect: { minDelay: 200, maxDelay: 400 },
    });
    assert.equal(socket.url, `${server.ws}/echo`, "the query string is not shown");
    const seen = record(socket);
    await next(socket, "open");
    const reconnecting = next(socket, "reconnecting");
    const response = await fetch(`${server.http}/drop?client_id=${id}`, { method: "POST" });
    assert.equal(response.status, 204);
    const event = await reconnecting;
    assert.equal(event.attempt, 1);
    assert.equal(event.code, 1006);
    assert.equal(event.wasClean, false);
    assert.ok(event.delay >= 0 && event.delay <= 200, `delay ${event.delay}`);
    assert.equal(socket.readyState, Socket.CONNECTING);
    assert.equal(socket.retryCount, 1);
    socket.send("sent while down"); // queued until the next open
    assert.ok(socket.bufferedAmount > 0);
    const echo = next(socket, "message");
    assert.equal((await echo).data, "sent while down");
    assert.equal(socket.readyState, Socket.OPEN);
    // An `error` may come before `reconnecting`, depending on how the platform saw the drop.
    assert.deepEqual(
      seen.map(([type]) => type).filter((type) => type !== "error"),
      ["open", "reconnecting", "open", "message"],
    );
    await closed(socket);
  });

  it("hands back unsent messages in the final close event", async () => {
    // Nothing listens on the port of a stopped server: the connect fails for good.
    const gone = await startServer();
    await gone.stop();
    const socket = new Socket(`${gone.ws}/echo`, { reconnect: false });
    socket.send("first");
    socket.send(new Uint8Array([1, 2]));
    const seen = record(socket);
    const close = await next(socket, "close");
    assert.equal(close.code, 1006);
    assert.equal(close.wasClean, false);
    assert.equal(close.unsent.length, 2);
    assert.equal(close.unsent[0], "first");
    assert.deepEqual([...new Uint8Array(close.unsent[1])], [1, 2]);
    assert.deepEqual(seen.map(([type]) => type), ["error", "close"]);
    const error = seen[0][1];
    assert.equal(error.error.name, "UnisockError");
    assert.equal(error.error.kind, "ConnectFailed");
    assert.match(error.message, /could not connect/);
  });

  it("gives up after maxRetries, calling shouldReconnect for each failure", async () => {
    const gone = await startServer();
    await gone.stop();
    const asked = [];
    const socket = new Socket(`${gone.ws}/echo`, {
      reconnect: {
        minDelay: 10,
        maxDelay: 20,
        maxRetries: 2,
        shouldReconnect(info) {
          asked.push(info);
          return info.retryByDefault;
        },
      },
    });
    const seen = record(socket);
    await next(socket, "close");
    assert.deepEqual(seen.map(([type]) => type), ["error", "reconnecting", "error", "reconnecting", "error", "close"]);
    assert.deepEqual(seen.filter(([t]) => t === "reconnecting").map(([, e]) => e.attempt), [1, 2]);
    assert.ok(asked.length >= 2);
    assert.equal(asked[0].code, 1006);
    assert.equal(asked[0].error.kind, "ConnectFailed");
  });

  it("keeps a heartbeat answered without delivering the pongs", async () => {
    // The echo endpoint answers the ping with the same message: that is the pong.
    const socket = new Socket(`${server.ws}/echo`, {
      heartbeat: { interval: 50, timeout: 1_000, ping: "hb", pong: "hb" },
      reconnect: false,
    });
    const seen = record(socket);
    await next(socket, "open");
    await new Promise((resolve) => setTimeout(resolve, 400)); // several heartbeats
    assert.equal(socket.readyState, Socket.OPEN);
    assert.deepEqual(seen.map(([type]) => type), ["open"], "no pong delivered, no error");
    await closed(socket);
  });

  it("drops a connection whose heartbeat is not answered", async () => {
    // A room with nobody else in it never answers.
    const socket = new Socket(`${server.ws}/rooms/silent-${clientId("hb")}`, {
      heartbeat: { interval: 50, timeout: 150, ping: new Uint8Array([1]), pong: new Uint8Array([2]) },
      reconnect: false,
    });
    const seen = record(socket);
    const close = await next(socket, "close");
    assert.equal(close.code, 1006);
    const errors = seen.filter(([type]) => type === "error").map(([, event]) => event.error.kind);
    assert.deepEqual(errors, ["HeartbeatTimeout"]);
  });

  it("enforces maxMessageSize and the queue limits in send", async () => {
    const socket = new Socket(`${server.ws}/echo`, { maxMessageSize: 10, queue: { maxMessages: 2 } });
    assert.throws(() => socket.send("x".repeat(11)), { name: "UnisockError", kind: "MessageTooLarge" });
    socket.send("1");
    socket.send("2");
    assert.throws(() => socket.send("3"), { name: "UnisockError", kind: "QueueFull" });
    assert.equal(socket.bufferedAmount, 2);
    await next(socket, "open");
    await until(5_000, "the queue to drain", () => socket.bufferedAmount === 0);
    await closed(socket);
  });

  it("drops its listeners and handlers after the final close", async () => {
    const socket = new Socket(`${server.ws}/echo`);
    socket.onmessage = () => {};
    socket.onclose = () => {};
    assert.equal(typeof socket.onmessage, "function");
    await next(socket, "open");
    await closed(socket);
    assert.equal(socket.onmessage, null);
    assert.equal(socket.onclose, null);
  });

  it("selects a subprotocol", async () => {
    const socket = new Socket(`${server.ws}/echo`, ["nope", "chat"]);
    await next(socket, "open");
    assert.equal(socket.protocol, "chat");
    await closed(socket);
  });
});
