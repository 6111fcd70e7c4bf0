// Shared by the JS tests: the npm package in Node, start `unisock serve` on a free loopback
// port, bounded waits, pages in headless Chromium.
//
// The server binary comes from UNISOCK_BIN, default target/release/unisock (scripts/test.sh
// builds it with `cargo build --release --features server --bin unisock`).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Rejects with `what` timed out after `ms`, unless `promise` settles first. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The npm package (pkg/, wasm-pack --target web), initialised for Node: its module, e.g.
 * `{ Socket }`. Needs Node's global WebSocket (`node --experimental-websocket` on Node 20),
 * which the package's browser backend uses.
 */
export async function loadPackage() {
  assert.equal(typeof WebSocket, "function", "run with node --experimental-websocket");
  const pkg = await import(join(ROOT, "pkg", "unisock.js"));
  // --target web: init() would fetch() the .wasm by URL; in Node, pass the bytes instead.
  await pkg.default({ module_or_path: await readFile(join(ROOT, "pkg", "unisock_bg.wasm")) });
  return pkg;
}

/** Resolves with the next event of `type` on `socket` (bounded). */
export function next(socket, type, ms = 10_000) {
  return within(ms, `a "${type}" event`, new Promise((resolve) => socket.addEventListener(type, resolve, { once: true })));
}

/** Polls `condition` every 20 ms until it returns a truthy value (returned), for at most `ms`. */
export async function until(ms, what, condition) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Starts `unisock serve` (on `port`, default a free one) and resolves once it prints its
 * listening line: `{ http, ws, port, logs(), stop() }`.
 */
export async function startServer({ port = 0 } = {}) {
  const bin = process.env.UNISOCK_BIN ?? join(ROOT, "target", "release", "unisock");
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: cargo build --release --features server --bin unisock`);
  }
  const child = spawn(
    bin,
    ["serve", "--port", String(port), "--bind", "127.0.0.1", "--root", join(ROOT, "www"), "--pkg", join(ROOT, "pkg")],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } },
  );
  let stdout = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      stdout += chunk;
      const match = stdout.match(/^unisock serve listening on (http:\/\/[^/\s]+)\/ /m);
      if (match) resolve(match[1]);
    });
    exited.then(({ code, signal }) =>
      reject(new Error(`unisock serve exited (${code ?? signal}) before listening:\n${stdout}${stderr}`)),
    );
  });
  let base;
  try {
    base = await within(60_000, "unisock serve to listen", listening);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  const url = new URL(base);
  return {
    http: base,
    ws: `ws://${url.host}`,
    port: Number(url.port),
    logs: () => stdout + stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}

/** A client id the server accepts ([A-Za-z0-9_.-], 1-64 characters). */
export function clientId(prefix) {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Headless Chromium through playwright-core (tools/node): /usr/bin/chromium, or CHROMIUM. */
export function launchChromium() {
  const { chromium } = createRequire(join(ROOT, "tools", "node", "package.json"))("playwright-core");
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    timeout: 60_000,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    ],
  });
}

/**
 * A new page of the Playwright browser `context` (default timeout `wait` ms) and the list of
 * what goes wrong in it, each line starting with `label`: uncaught errors, HTTP responses of
 * 400 and above, and console errors.
 */
export async function newWatchedPage(context, label, wait) {
  const page = await context.newPage();
  page.setDefaultTimeout(wait);
  const problems = [];
  page.on("pageerror", (error) => problems.push(`${label}: uncaught ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${label}: HTTP ${response.status()} for ${response.url()}`);
  });
  page.on("console", (message) => {
    // Failed loads are reported with their URL by the response handler above.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(`${label}: console.error ${message.text()}`);
    }
  });
  return { page, problems };
}

/**
 * Starts a server (`start`, default `unisock serve`) and headless Chromium before the calling
 * file's tests and stops both after them. The returned object holds them, as `server` and
 * `browser`, once started.
 */
export function serverAndChromium(start = startServer) {
  const env = {};
  before(async () => {
    env.server = await start();
    env.browser = await launchChromium();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
