// Where does a browser contender spend its time? A CPU profile of the benchmark page, taken
// through the DevTools protocol with ONLY the Profiler domain enabled (the Network domain,
// which makes Chromium report every WebSocket frame, stays off). Diagnostics, not a benchmark.
//
//   node --experimental-websocket benches/browser/profile.mjs [Socket|Rust|WebSocket] [size] [rtt|pipe] [PKG_DIR]
//
// PKG_DIR: a wasm-bindgen output with a name section, served at /pkg/ instead of pkg/ (the
// shipped one has none after wasm-opt), e.g.
//   wasm-bindgen --target web --out-dir /tmp/prof-pkg --out-name unisock \
//       target/wasm32-unknown-unknown/release/unisock.wasm
// APP_DIR=dir does the same for the Rust app (wasm-bindgen of target/bench-browser/cargo/…).
// Prints the functions with the most self time, then the shares of the busy (not idle) time:
// unisock's own (wasm, JS glue, wasm-to-js crossings), the WebSocket's send, the page's code,
// the browser's own. Needs what run.mjs needs, built.

import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { CHROMIUM_FLAGS, ROOT, TYPES, lifecycle, lineOf, startEcho } from "./diag.mjs";

const [contender = "Socket", size = "16", mode = "pipe", pkgDir = join(ROOT, "pkg")] = process.argv.slice(2);
const { children, userDataDir } = lifecycle("profile");
const port = await startEcho(children);

let done;
const finished = new Promise((r) => (done = r));
const http = createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
  if (request.method === "POST") {
    let body = "";
    request.on("data", (c) => (body += c));
    request.on("end", () => {
      response.writeHead(204).end();
      if (path === "/progress") console.error(JSON.parse(body).line);
      if (path === "/results" || path === "/error") done(body);
    });
    return;
  }
  const appPrefix = "/target/bench-browser/app/";
  const file = path.startsWith("/pkg/")
    ? join(pkgDir, path.slice(5))
    : path.startsWith(appPrefix) && process.env.APP_DIR
      ? join(process.env.APP_DIR, path.slice(appPrefix.length))
      : join(ROOT, path);
  if (!existsSync(file)) return response.writeHead(404).end();
  response.writeHead(200, {
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
  });
  response.end(readFileSync(file));
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));

const config = {
  ws: `ws://127.0.0.1:${port}/echo`,
  rounds: 3,
  sizes: [Number(size)],
  contenders: [contender],
  modes: [mode],
  rttWarmup: 200,
  rttCount: 3000,
  pipeCount: { [size]: 20000 },
  pipeWindow: { [size]: Number(size) >= 65536 ? 8 : 64 },
  maxMs: 3000,
};
const url = `http://127.0.0.1:${http.address().port}/benches/browser/index.html`;
const chromium = spawn(
  "/usr/bin/chromium",
  [...CHROMIUM_FLAGS, "--remote-debugging-port=0", `--user-data-dir=${userDataDir}`, "about:blank"],
  { detached: true, stdio: ["ignore", "pipe", "pipe"] },
);
children.push(chromium);
const [, devtoolsPort] = await lineOf(chromium, /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//);
const targets = await (await fetch(`http://127.0.0.1:${devtoolsPort}/json/list`)).json();
const page = targets.find((t) => t.type === "page");
const cdp = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((r) => (cdp.onopen = r));
let nextId = 0;
const pending = new Map();
cdp.onmessage = (event) => {
  const message = JSON.parse(event.data);
  pending.get(message.id)?.(message);
};
const send = (method, params = {}) =>
  new Promise((r) => {
    const id = ++nextId;
    pending.set(id, r);
    cdp.send(JSON.stringify({ id, method, params }));
  });

// Profiler only: no Network.enable, so WebSocket frames are not reported to DevTools.
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Page.navigate", {
  url: `${url}?config=${encodeURIComponent(JSON.stringify(config))}`,
});
await new Promise((r) => setTimeout(r, 1500)); // let it load and warm up a little
await send("Profiler.start");
const results = await finished;
const { result } = await send("Profiler.stop");
console.error(results.slice(0, 2000));

const { nodes, samples, timeDeltas } = result.profile;
const byId = new Map(nodes.map((n) => [n.id, n]));
const self = new Map();
samples.forEach((id, i) => {
  const frame = byId.get(id).callFrame;
  const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber}`;
  self.set(name, (self.get(name) ?? 0) + (timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`self time, ${contender} ${mode} ${size} B (total ${(total / 1000).toFixed(0)} ms):`);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 45)) {
  console.log(`${((us / total) * 100).toFixed(1).padStart(5)} %  ${name.slice(0, 140)}`);
}
// Shares of the busy (not idle) time, to compare two builds with a number: unisock's own
// part is its wasm, its JS glue and the crossings between them.
const groups = {};
for (const [name, us] of self) {
  const group = /\.wasm:/.test(name) ? "wasm" : /unisock(_bench_app)?\.js:/.test(name) ? "glue" : /bench\.js:/.test(name) ? "bench.js" : name.split(" ")[0];
  groups[group] = (groups[group] ?? 0) + us;
}
const busy = total - (groups["(idle)"] ?? 0);
const share = (g) => (((groups[g] ?? 0) / busy) * 100).toFixed(1);
console.log(`busy time: unisock ${(Number(share("wasm")) + Number(share("glue")) + Number(share("wasm-to-js"))).toFixed(1)} % (wasm ${share("wasm")}, glue ${share("glue")}, wasm-to-js ${share("wasm-to-js")}), ` +
  `WebSocket send ${share("send")} %, bench.js ${share("bench.js")} %, browser ${share("(program)")} %, GC ${share("(garbage")} %`);
cdp.close();
http.close();
process.exit(0);
