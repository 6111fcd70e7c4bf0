// Counts the per-message work of each browser contender instead of timing it: for a pipelined
// echo loop in headless Chromium (no DevTools client, as in run.mjs), the JS<->wasm crossings
// (every wasm-bindgen import and export called, by name), `queueMicrotask` calls and
// `Promise.prototype.then` calls per received message, for the raw WebSocket, the npm
// `Socket` and the Rust API. Exact and repeatable where timings on a busy machine are not:
// compare two builds by their counts, then time them with ab.mjs. Diagnostics, not a benchmark.
//
//   node benches/browser/count.mjs [SIZE] [PKG_DIR[:APP_DIR]]
//
// COUNT_STACKS=1 also counts where each wasm->js call comes from: readable with a PKG_DIR that
// keeps the wasm's name section (wasm-bindgen --target web --out-dir DIR --out-name unisock
// target/wasm32-unknown-unknown/release/unisock.wasm, as for profile.mjs). COUNT_LOG=1 shows
// the page's progress and Chromium's log (console errors).
//
// Serves benches/browser/count.js with the package's and the app's JS glue patched so that
// every crossing is counted (the hooks are defined by count.js). Needs what run.mjs needs,
// built (UNISOCK_BIN: the `unisock serve` binary, default target/release/unisock).
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import { CHROMIUM_FLAGS, ROOT, TYPES, lifecycle, startEcho } from "./diag.mjs";

const [size = "16", dirs = "pkg"] = process.argv.slice(2);
const [pkgDir, appDir = "target/bench-browser/app"] = dirs.split(":").map((d) => resolve(ROOT, d));
const { children, userDataDir } = lifecycle("count");

/** wasm-bindgen's glue with the counting hooks of count.js around its imports and exports. */
function patchGlue(text, module) {
  const imports = "const imports = __wbg_get_imports();";
  const exports = "wasm = instance.exports;";
  if (!text.includes(imports) || !text.includes(exports)) throw new Error(`${module}: unexpected glue`);
  return text
    .replaceAll(imports, `const imports = globalThis.__countImports(__wbg_get_imports(), ${JSON.stringify(module)});`)
    .replace(exports, `wasm = globalThis.__countExports(instance.exports, ${JSON.stringify(module)});`);
}

const port = await startEcho(children);

let done;
const result = new Promise((r) => (done = r));
const http = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (req.method === "POST") {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      res.writeHead(204).end();
      if (path === "/progress") console.error(`page: ${JSON.parse(body).line}`);
      else done({ path, body: JSON.parse(body) });
    });
    return;
  }
  let file = join(ROOT, path);
  if (path === "/count.html") file = null;
  else if (path.startsWith("/pkg/")) file = join(pkgDir, path.slice(5));
  else if (path.startsWith("/target/bench-browser/app/")) file = join(appDir, path.slice(26));
  if (file !== null && !existsSync(file)) return res.writeHead(404).end();
  let body = file === null
    ? '<!doctype html><meta charset="utf-8"><script type="module" src="/benches/browser/count.js"></script>'
    : readFileSync(file);
  if (file?.endsWith("/unisock.js")) body = patchGlue(body.toString(), "npm");
  if (file?.endsWith("/unisock_bench_app.js")) body = patchGlue(body.toString(), "app");
  res.writeHead(200, { "Content-Type": TYPES[file === null ? ".html" : extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
  res.end(body);
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const config = { ws: `ws://127.0.0.1:${port}/echo`, size: Number(size), count: 4000, window: 64, verbose: !!process.env.COUNT_LOG, stacks: !!process.env.COUNT_STACKS };
const chromium = spawn("/usr/bin/chromium", [...CHROMIUM_FLAGS,
  ...(process.env.COUNT_LOG ? ["--enable-logging=stderr"] : []), `--user-data-dir=${userDataDir}`,
  `http://127.0.0.1:${http.address().port}/count.html?config=${encodeURIComponent(JSON.stringify(config))}`],
  { detached: true, stdio: ["ignore", "ignore", process.env.COUNT_LOG ? "inherit" : "ignore"] });
children.push(chromium);
const { path, body } = await result;
if (path === "/error") {
  console.error(body.error);
  process.exit(1);
}
console.log(`per received message, pipelined ${size} B, ${config.count} messages, ${config.window} in flight:`);
for (const { name, messages, perMessage } of body) {
  const total = (filter) => Object.entries(perMessage).filter(([k]) => filter(k)).reduce((s, [, v]) => s + v, 0);
  console.log(`\n${name} (${messages} messages): js->wasm ${total((k) => k.includes("js->wasm")).toFixed(2)}, ` +
    `wasm->js ${total((k) => k.includes("wasm->js")).toFixed(2)}, queueMicrotask ${total((k) => k === "queueMicrotask").toFixed(2)}, ` +
    `Promise.then ${total((k) => k === "Promise.then").toFixed(2)}`);
  for (const [key, value] of Object.entries(perMessage)) if (value >= 0.01) console.log(`  ${value.toFixed(3).padStart(8)}  ${key}`);
}
process.exit(0);
