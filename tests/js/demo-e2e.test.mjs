// End to end: the demo page (www/, served by `unisock serve` with pkg/) in headless Chromium
// through playwright-core. Two pages chat in a room; one presses "Drop connection", its log
// shows the reconnect, and a message sent while it was down reaches the other page after
// the reconnect. Saves a screenshot to target/demo-e2e.png. Run:
//   node --test tests/js/demo-e2e.test.mjs
// Chromium is /usr/bin/chromium (CHROMIUM to change it); every wait is bounded.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

import { ROOT, newWatchedPage, serverAndChromium } from "./support.mjs";


const SCREENSHOT = join(ROOT, "target", "demo-e2e.png");
const WAIT = 20_000; // ms, for anything the page does


const env = serverAndChromium();

/** Opens the demo in a new page, joined to `room`; collects the page's errors. */
async function openDemo(context, room, label) {
  const { page, problems } = await newWatchedPage(context, label, WAIT);
  await page.goto(`${env.server.http}/#room=${room}`);
  await page.locator("#state").filter({ hasText: /^open$/ }).waitFor();
  return { page, problems };
}

/** Types `text` into the chat box and sends it. */
async function say(page, text) {
  await page.fill("#text", text);
  await page.click("#say");
}

/** Waits until a chat message from someone else with this text shows on `page`. */
async function seesMessage(page, text) {
  await page.locator("#messages li.theirs .text", { hasText: text }).first().waitFor();
}

describe("demo page", () => {
  it("chats between two pages and delivers a message queued during a dropped connection", { timeout: 120_000 }, async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 860 } });
    const room = `e2e-${Math.random().toString(36).slice(2, 8)}`;
    const a = await openDemo(context, room, "page A");
    const b = await openDemo(context, room, "page B");

    // Both joined: the RTT through /echo is measured (once a second).
    await a.page.locator("#rtt").filter({ hasText: /ms$/ }).waitFor();

    // Chat both ways.
    await say(a.page, "hello from A");
    await seesMessage(b.page, "hello from A");
    await say(b.page, "hi from B");
    await seesMessage(a.page, "hi from B");
    // A's own message came back through the room: marked delivered.
    await a.page.locator('#messages li.mine[data-status="delivered"]', { hasText: "hello from A" }).waitFor();

    // Drop A's connections. The moment A's room socket announces the reconnect (it is then
    // down, and stays down for the backoff delay), type a message in A and send it: it must
    // be queued, not sent.
    const stateWhenSent = await a.page.evaluate((wait) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no reconnecting event after the drop")), wait);
      const room = window.unisockDemo.room;
      room.addEventListener("reconnecting", () => {
        clearTimeout(timer);
        document.getElementById("text").value = "typed while down";
        document.getElementById("compose").requestSubmit();
        resolve(room.readyState);
      }, { once: true });
      document.getElementById("drop").click();
    }), WAIT);
    assert.equal(stateWhenSent, 0, "the room socket was CONNECTING when the message was sent");
    await a.page.locator('#messages li.mine[data-status="queued"]', { hasText: "typed while down" }).waitFor();

    // A's log shows the drop and the reconnect; A is open again; B gets the queued message.
    await a.page.locator('#log li[data-type="reconnecting"]').first().waitFor();
    await a.page.locator("#state").filter({ hasText: /^open$/ }).waitFor();
    await seesMessage(b.page, "typed while down");
    await a.page.locator('#messages li.mine[data-status="delivered"]', { hasText: "typed while down" }).waitFor();
    assert.ok(await a.page.locator('#log li[data-type="drop"]').count() >= 1, "the drop is in the log");
    const roomOpens = a.page.locator('#log li[data-type="open"]')
      .filter({ has: a.page.locator(".source", { hasText: /^room$/ }) });
    assert.equal(await roomOpens.count(), 2, "the room socket opened, then opened again after the reconnect");

    // The echo panel: text and binary round trips.
    await a.page.click("#echo-form button[type=submit]");
    await a.page.locator("#echoes li", { hasText: "←" }).filter({ hasText: "hello, echo" }).waitFor();
    await a.page.click("#echo-binary");
    await a.page.locator("#echoes li", { hasText: "←" }).filter({ hasText: "binary 8 B" }).waitFor();
    // And B keeps chatting with A after A's reconnect.
    await say(b.page, "welcome back");
    await seesMessage(a.page, "welcome back");

    await mkdir(join(ROOT, "target"), { recursive: true });
    await a.page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.deepEqual([...a.problems, ...b.problems], [], "no errors in the pages");
    await context.close();
  });

  it("works in a module Worker and resolves relative URLs in a page", { timeout: 60_000 }, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(`${env.server.http}/index.html`);
    const result = await page.evaluate(async (wait) => {
      // A worker has no window: the package must not need one.
      const code = `
        import init, { Socket } from "${location.origin}/pkg/unisock.js";
        await init();
        const socket = new Socket("ws://${location.host}/echo", { reconnect: false });
        const got = [];
        socket.onmessage = (event) => {
          got.push(typeof event.data === "string" ? event.data : [...new Uint8Array(event.data)]);
          if (got.length === 2) socket.close(4000, "worker done");
        };
        socket.onclose = function (event) {
          postMessage({
            got, code: event.code, reason: event.reason, window: typeof window,
            // A real CloseEvent, pointing at the socket, which is also \`this\`.
            closeEvent: event instanceof CloseEvent && event.target instanceof Socket && this === event.target,
          });
        };
        socket.send("from the worker");
        socket.send(new Uint8Array([1, 2, 3]));
      `;
      const worker = new Worker(URL.createObjectURL(new Blob([code], { type: "text/javascript" })), { type: "module" });
      const fromWorker = await new Promise((resolve, reject) => {
        setTimeout(() => reject(new Error("no answer from the worker")), wait);
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => reject(new Error(`worker error: ${event.message}`));
      });
      worker.terminate();

      // In the page: a relative URL, resolved against the page like `new WebSocket("/echo")`.
      const { Socket } = await import("/pkg/unisock.js");
      const relative = new Socket("/echo", { reconnect: false });
      const url = relative.url;
      await new Promise((resolve) => (relative.onopen = resolve));
      relative.close();
      return { fromWorker, url };
    }, WAIT);
    assert.deepEqual(result.fromWorker, {
      got: ["from the worker", [1, 2, 3]], code: 4000, reason: "worker done", window: "undefined", closeEvent: true,
    });
    assert.equal(result.url, `${env.server.ws}/echo`);
    await context.close();
  });
});
