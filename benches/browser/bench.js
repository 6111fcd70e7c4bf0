// The browser benchmark page: the browser's raw WebSocket, unisock's npm `Socket` and the Rust
// API (benches/browser/rust-app, compiled to wasm) against one echo server, interleaved.
//
// Driven by run.mjs, which serves this page, passes the configuration in `?config=<json>`,
// and receives progress (POST /progress), the results (POST /results) or a failure
// (POST /error). No DevTools client is attached: Chromium would otherwise report every
// WebSocket frame to it, which doubles round trips (see shared/TOOLCHAIN.md).

import initPkg, { Socket } from "../../pkg/unisock.js";
import initApp, * as app from "../../target/bench-browser/app/unisock_bench_app.js";

const config = JSON.parse(new URLSearchParams(location.search).get("config") ?? "{}");
const {
  ws: WS_URL, // the echo endpoint, e.g. ws://127.0.0.1:PORT/echo
  rounds = 1,
  sizes = [16, 1024, 65536],
  rttWarmup = 10,
  rttCount = 50,
  pipeCount = { 16: 200, 1024: 200, 65536: 50 }, // messages per pipelined trial, by size
  pipeWindow = { 16: 64, 1024: 64, 65536: 8 }, // most messages in flight, by size
  maxMs = 2000, // per measured loop
  contenders = ["WebSocket", "Socket", "Rust"], // a subset for profiling (profile.mjs)
  modes = ["rtt", "pipe"],
} = config;
const TRIAL_TIMEOUT_MS = maxMs + 10_000; // a trial that hangs is reported, not waited for

const CONTENDERS = contenders;

/** Every order of `items` (3 contenders: 6 orders). */
function permutations(items) {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}
// Round r runs ORDERS[r % ORDERS.length]: over the rounds every contender runs first, last, and
// right after each other one equally often. A rotation (A B C, B C A, …) would put B right
// after A in every round but one, and what ran just before can change how fast the next one
// runs (native measurements on these VMs: thread wake-ups are fast right after a busy run).
const ORDERS = permutations(CONTENDERS);

function post(path, body) {
  const text = JSON.stringify(body);
  // keepalive (allowed up to 64 KiB): the POST completes even if the page goes away.
  return fetch(path, { method: "POST", body: text, keepalive: text.length < 60_000 });
}

function progress(line) {
  document.getElementById("log").textContent += line + "\n";
  return post("/progress", { line }).catch(() => {});
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- JS contenders: the same code for WebSocket and Socket (a drop-in replacement) --------

function open(Ctor) {
  return new Promise((resolve, reject) => {
    const socket = new Ctor(WS_URL);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error(`${Ctor.name}: connection failed`));
    socket.onclose = (e) => reject(new Error(`${Ctor.name}: closed before open (${e.code})`));
  });
}

function close(socket) {
  // Outside the measured part; bounded, a slow close must not stall the run.
  return new Promise((resolve) => {
    socket.onmessage = null;
    socket.onerror = null;
    socket.onclose = () => resolve();
    socket.close();
    setTimeout(resolve, 2000);
  });
}

/** Sequential ping-pong; resolves to the measured round trips in ms. */
function jsRoundTrips(socket, size, warmup, count) {
  const payload = new Uint8Array(size).fill(0x5a);
  return new Promise((resolve, reject) => {
    const samples = [];
    let received = 0;
    let start = 0;
    let deadline = Infinity;
    socket.onclose = (e) => reject(new Error(`closed early (${e.code})`));
    socket.onmessage = (event) => {
      const end = performance.now();
      if (event.data.byteLength !== size) {
        reject(new Error(`echo of ${event.data.byteLength} bytes, expected ${size}`));
        return;
      }
      received += 1;
      if (received === warmup) deadline = end + maxMs;
      if (received > warmup) samples.push(end - start);
      if (samples.length >= count || end > deadline) {
        resolve(samples);
        return;
      }
      start = performance.now();
      socket.send(payload);
    };
    start = performance.now();
    socket.send(payload);
  });
}

/** How often the pipelined loops look at their deadline (rust-app/src/lib.rs has the same). */
const DEADLINE_EVERY = 32;

/** Pipelined echo, at most `window` in flight; resolves to [messages, ms]. */
function jsPipelined(socket, size, count, window) {
  const payload = new Uint8Array(size).fill(0x5a);
  return new Promise((resolve, reject) => {
    let sent = 0;
    let received = 0;
    const start = performance.now();
    const deadline = start + maxMs;
    socket.onclose = (e) => reject(new Error(`closed early (${e.code})`));
    socket.onmessage = (event) => {
      if (event.data.byteLength !== size) {
        reject(new Error(`echo of ${event.data.byteLength} bytes, expected ${size}`));
        return;
      }
      received += 1;
      // The deadline is a safety bound, not part of what is measured: looked at every
      // DEADLINE_EVERY messages (as in the Rust contender), not paid for per message.
      if (sent < count && (sent % DEADLINE_EVERY !== 0 || performance.now() < deadline)) {
        socket.send(payload);
        sent += 1;
      }
      if (received === sent) resolve([received, performance.now() - start]);
    };
    while (sent < Math.min(count, Math.max(1, window))) {
      socket.send(payload);
      sent += 1;
    }
  });
}

async function runJs(Ctor, mode, size) {
  const socket = await withTimeout(open(Ctor), 10_000, `${Ctor.name} open`);
  try {
    return mode === "rtt"
      ? await jsRoundTrips(socket, size, rttWarmup, rttCount)
      : await jsPipelined(socket, size, pipeCount[size], pipeWindow[size]);
  } finally {
    await close(socket);
  }
}

// --- The Rust contender: the loops run inside wasm (rust-app/src/lib.rs) ------------------

async function runRust(mode, size) {
  if (mode === "rtt") {
    return Array.from(await app.round_trips(WS_URL, size, rttWarmup, rttCount, maxMs));
  }
  return Array.from(await app.pipelined(WS_URL, size, pipeCount[size], pipeWindow[size], maxMs));
}

// --- The run --------------------------------------------------------------------------------

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  // Nearest rank: p99 of 1000 samples is the 990th smallest.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summarize(mode, value) {
  if (mode === "rtt") {
    const sorted = Float64Array.from(value).sort();
    return {
      n: sorted.length,
      p50_us: quantile(sorted, 0.5) * 1000,
      p99_us: quantile(sorted, 0.99) * 1000,
      mean_us: (sorted.reduce((a, b) => a + b, 0) / sorted.length) * 1000,
    };
  }
  const [messages, ms] = value;
  return { n: messages, ms, msgs_per_s: messages / (ms / 1000) };
}

/** The smallest step performance.now() takes: 5 µs when cross-origin isolated, else 100 µs. */
function timerStepUs() {
  let smallest = Infinity;
  let last = performance.now();
  const end = last + 20;
  while (last < end) {
    const t = performance.now();
    if (t > last) {
      smallest = Math.min(smallest, t - last);
      last = t;
    }
  }
  return smallest * 1000;
}

async function main() {
  await initPkg();
  await initApp();
  const env = {
    userAgent: navigator.userAgent,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    timerStepUs: timerStepUs(),
  };
  await progress(`ready: ${JSON.stringify(env)}`);
  const trials = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const size of sizes) {
      for (const mode of modes) {
        const order = ORDERS[round % ORDERS.length];
        for (const contender of order) {
          const run =
            contender === "Rust"
              ? runRust(mode, size)
              : runJs(contender === "Socket" ? Socket : WebSocket, mode, size);
          const trial = { round, size, mode, contender };
          try {
            Object.assign(trial, summarize(mode, await withTimeout(run, TRIAL_TIMEOUT_MS, contender)));
          } catch (error) {
            trial.error = String(error?.message ?? error);
          }
          trials.push(trial);
          await progress(JSON.stringify(trial));
        }
      }
    }
  }
  await post("/results", { env, trials });
}

main().catch((error) => post("/error", { error: String(error?.stack ?? error) }));
