// The counting page of count.mjs: per received message of a pipelined echo loop, how often each
// contender crosses between JS and wasm (each wasm-bindgen import and export called, by name)
// and queues a microtask (`queueMicrotask`, `Promise.prototype.then`). Deterministic counts,
// unlike timings: for comparing builds exactly. Diagnostics, not a benchmark.
//
// count.mjs serves the npm package's and the Rust app's JS glue with two hooks added
// (`globalThis.__countImports`, `globalThis.__countExports`) that route every crossing through
// the counters below.
const config = JSON.parse(new URLSearchParams(location.search).get("config") ?? "{}");
const { ws: WS_URL, size = 16, count = 4000, window: WINDOW = 64 } = config;

let counting = null; // the counters of the loop being measured, else null
const bump = (key) => {
  if (!counting) return;
  counting.set(key, (counting.get(key) ?? 0) + 1);
  // With config.stacks: also where each crossing comes from (the wasm function names need a
  // build with a name section, see count.mjs).
  if (config.stacks && key.includes("wasm->js")) {
    const where = `${key} <- ${new Error().stack.split("\n").slice(3, 9).map((l) => l.trim().replace(/ \(.*\)$/, "")).join(" < ")}`;
    counting.set(where, (counting.get(where) ?? 0) + 1);
  }
};
globalThis.__countImports = (imports, module) => {
  for (const ns of Object.values(imports)) {
    for (const [name, f] of Object.entries(ns)) {
      if (typeof f !== "function") continue;
      const key = `${module} wasm->js ${name.replace(/_[0-9a-f]{16}$/, "")}`;
      ns[name] = function (...args) {
        bump(key);
        return f.apply(this, args);
      };
    }
  }
  return imports;
};
globalThis.__countExports = (exports, module) => {
  const wrapped = {};
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value !== "function" || name.startsWith("__wbindgen_export") || name.startsWith("__externref")) {
      wrapped[name] = value;
      continue;
    }
    const key = `${module} js->wasm ${name}`;
    wrapped[name] = function (...args) {
      bump(key);
      return value.apply(this, args);
    };
  }
  return wrapped;
};
const queueMicrotask0 = globalThis.queueMicrotask;
globalThis.queueMicrotask = function (callback) {
  bump("queueMicrotask");
  return queueMicrotask0.call(globalThis, callback);
};
const then0 = Promise.prototype.then;
Promise.prototype.then = function (...args) {
  bump("Promise.then");
  return then0.apply(this, args);
};

const { default: initPkg, Socket } = await import("../../pkg/unisock.js");
const { default: initApp, ...app } = await import("../../target/bench-browser/app/unisock_bench_app.js");

function post(path, body) {
  return fetch(path, { method: "POST", body: JSON.stringify(body) });
}

function open(Ctor) {
  return new Promise((resolve, reject) => {
    const socket = new Ctor(WS_URL);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error(`${Ctor.name}: connection failed`));
  });
}

/** bench.js's pipelined loop, counting from the first send to the last echo. */
function pipelined(socket, counters) {
  const payload = new Uint8Array(size).fill(0x5a);
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    socket.onmessage = (event) => {
      if (!event.target || event.data.byteLength !== size) throw new Error("wrong event");
      received += 1;
      if (sent < count) {
        socket.send(payload);
        sent += 1;
      }
      if (received === sent) {
        counting = null;
        resolve(received);
      }
    };
    counting = counters;
    while (sent < Math.min(count, WINDOW)) {
      socket.send(payload);
      sent += 1;
    }
  });
}

async function measure(name, run) {
  if (config.verbose) await post("/progress", { line: name });
  const counters = new Map();
  const messages = await run(counters);
  const perMessage = Object.fromEntries(
    [...counters].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +(v / messages).toFixed(3)]),
  );
  return { name, messages, perMessage };
}

try {
  await initPkg();
  await initApp();
  const results = [];
  for (const [name, Ctor] of [["WebSocket", WebSocket], ["Socket", Socket]]) {
    const socket = await open(Ctor);
    results.push(await measure(name, (counters) => pipelined(socket, counters)));
    socket.onmessage = null;
    socket.close();
  }
  results.push(
    await measure("Rust", async (counters) => {
      counting = counters; // includes connect and close: a few dozen crossings in all
      const [messages] = await app.pipelined(WS_URL, size, count, WINDOW, 60_000);
      counting = null;
      return messages;
    }),
  );
  await post("/results", results);
} catch (error) {
  await post("/error", { error: String(error?.stack ?? error) });
}
