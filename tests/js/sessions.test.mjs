// Acknowledged sessions (`{ session: true }`, docs/session-protocol.md) from the npm package in
// Node 20, against `unisock serve` on 127.0.0.1. Run:
//   NODE_OPTIONS=--experimental-websocket node --test tests/js/sessions.test.mjs

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { clientId, loadPackage, next, startServer, until } from "./support.mjs";

let Socket;
let server;

before(async () => {
  ({ Socket } = await loadPackage());
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

describe("acknowledged sessions from the npm package", () => {
  it("says the session is on, and rejects a bad session option", async () => {
    assert.throws(() => new Socket(`${server.ws}/echo`, { session: "yes" }), TypeError);
    assert.throws(() => new Socket(`${server.ws}/echo`, { session: { maxUnacked: 1 } }), TypeError);
    const socket = new Socket(`${server.ws}/echo`, { session: true });
    const session = next(socket, "session");
    await next(socket, "open");
    assert.equal(socket.protocol, "unisock.v1");
    const event = await session;
    assert.equal(event.acknowledged, true);
    assert.equal(event.resumed, false);
    const echo = next(socket, "message");
    socket.send("hello");
    assert.equal((await echo).data, "hello");
    const close = next(socket, "close");
    socket.close();
    assert.equal((await close).code, 1000);
  });

  it("delivers 2000 messages exactly once and in order through a dropped connection", async () => {
    const id = clientId("session");
    // A heartbeat without ping / pong messages: the session pings by itself.
    assert.throws(() => new Socket(`${server.ws}/echo`, { heartbeat: { interval: 1000 } }), TypeError);
    const socket = new Socket(`${server.ws}/echo?client_id=${id}`, {
      session: true,
      reconnect: { minDelay: 20, maxDelay: 100 },
      heartbeat: { interval: 200, timeout: 200 },
    });
    const received = [];
    const sessions = [];
    const gaps = [];
    socket.onmessage = (event) => received.push(Number(event.data));
    socket.onsession = (event) => sessions.push(event.resumed);
    socket.ongap = (event) => gaps.push(event);
    await next(socket, "open");
    for (let i = 0; i < 1000; i++) socket.send(String(i));
    await until(10_000, "some echoes", () => received.length >= 200);
    const response = await fetch(`${server.http}/drop?client_id=${id}`, { method: "POST" });
    assert.equal(response.status, 204);
    for (let i = 1000; i < 2000; i++) socket.send(String(i));
    await until(20_000, "all echoes and the resume", () => received.length >= 2000 && sessions.length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 100)); // no duplicate arrives late
    assert.deepEqual(received, Array.from({ length: 2000 }, (_, i) => i));
    assert.deepEqual(gaps, []);
    assert.deepEqual(sessions, [false, true], "the session resumed after the drop");
    const close = next(socket, "close");
    socket.close();
    assert.equal((await close).code, 1000);
  });
});
