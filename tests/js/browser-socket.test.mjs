// The npm package's Socket in headless Chromium (playwright-core), against `unisock serve` on
// 127.0.0.1: what only a browser shows. Received messages reach the listeners as the
// browser's own trusted MessageEvents (text and binary), pointed at the socket, in order,
// straight from the browser's event callback (a listener may send and close from there), and
// never from inside a call into the socket; with an acknowledged session the text is still
// stripped of the session's trailer. Run:
//   node --test --test-force-exit tests/js/browser-socket.test.mjs
// Needs pkg/ (bash scripts/build-pkg.sh), tools/node (playwright-core) and target/release/unisock
// (or UNISOCK_BIN). Every wait is bounded.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { newWatchedPage, serverAndChromium } from "./support.mjs";

const WAIT = 15_000; // ms, for anything the page or the server does


const env = serverAndChromium();

/**
 * A document of the server's origin that runs nothing by itself (the package's package.json;
 * the demo page at / would connect on its own, and a page Playwright makes up is not on the
 * loopback address, so Chromium's local network checks block its WebSockets), with the
 * package loaded as `window.unisock`.
 */
async function packagePage(label) {
  const context = await env.browser.newContext();
  const { page, problems } = await newWatchedPage(context, label, WAIT);
  await page.goto(`${env.server.http}/pkg/package.json`);
  await page.evaluate(async () => {
    const unisock = await import("/pkg/unisock.js");
    await unisock.default();
    window.unisock = unisock;
  });
  return { page, problems, context };
}

/**
 * In the page: ping-pong of `rounds` messages (text, including non-ASCII and empty, and
 * binary) on a Socket with `options`, each next one sent from inside the message handler,
 * the last handler call closing the socket. Resolves to what each message event showed and
 * the close code.
 */
function pingPong(page, options, rounds) {
  return page.evaluate(
    ({ ws, options, rounds, wait }) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no close within ${wait} ms: ${seen.length} messages, readyState ${socket.readyState}, last ${JSON.stringify(seen.at(-1))}`)), wait);
        const message = (n) =>
          n % 3 === 0 ? `round ${n} ✓` : n % 3 === 1 ? new Uint8Array([n & 255, n >> 8, 7]) : n % 6 === 2 ? "" : `r${n}`;
        const socket = new window.unisock.Socket(`${ws}/echo`, options);
        let inCall = false;
        const call = (f) => {
          inCall = true;
          try {
            f();
          } finally {
            inCall = false;
          }
        };
        const seen = [];
        socket.onmessage = function (event) {
          seen.push({
            inCall,
            trusted: event.isTrusted,
            messageEvent: event instanceof MessageEvent,
            self: this === event.target,
            current: event.currentTarget === event.target,
            own: event.target.onmessage === socket.onmessage,
            origin: event.origin,
            data: typeof event.data === "string" ? event.data : [...new Uint8Array(event.data)],
          });
          if (seen.length < rounds) call(() => socket.send(message(seen.length)));
          else call(() => socket.close(4000, "done"));
        };
        socket.onclose = (event) => {
          clearTimeout(timer);
          resolve({ seen, code: event.code, inCall, expected: Array.from({ length: rounds }, (_, n) => {
            const m = message(n);
            return typeof m === "string" ? m : [...m];
          }) });
        };
        socket.onopen = () => call(() => socket.send(message(0)));
      }),
    { ws: env.server.ws, options, rounds, wait: WAIT },
  );
}

describe("Socket from the npm package in Chromium", () => {
  it("delivers the browser's own trusted MessageEvents, text and binary, in order, to handlers that send and close", { timeout: 60_000 }, async () => {
    const { page, problems, context } = await packagePage("plain");
    const { seen, code, expected } = await pingPong(page, undefined, 300);
    assert.equal(code, 4000);
    assert.deepEqual(seen.map((s) => s.data), expected);
    for (const s of seen) {
      // An empty message has no buffer of its own to find its event by: it gets a new one,
      // as before (so not trusted); every other is the browser's own.
      const trusted = s.data.length > 0;
      assert.deepEqual(
        { ...s, data: undefined },
        { inCall: false, trusted, messageEvent: true, self: true, current: true, own: true, origin: env.server.ws, data: undefined },
        JSON.stringify(s),
      );
    }
    assert.deepEqual(problems.filter((p) => !p.includes("favicon")), []);
    await context.close();
  });

  it("strips an acknowledged session's trailer from text and binary alike", { timeout: 60_000 }, async () => {
    const { page, problems, context } = await packagePage("session");
    const { seen, code, expected } = await pingPong(page, { session: true }, 120);
    assert.equal(code, 4000);
    assert.deepEqual(seen.map((s) => s.data), expected);
    for (const s of seen) {
      assert.deepEqual(
        { inCall: s.inCall, messageEvent: s.messageEvent, self: s.self, own: s.own, origin: s.origin },
        { inCall: false, messageEvent: true, self: true, own: true, origin: env.server.ws },
      );
    }
    assert.deepEqual(problems.filter((p) => !p.includes("favicon")), []);
    await context.close();
  });
});
