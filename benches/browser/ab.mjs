// A/B comparison of builds in the browser benchmark: alternating headless Chromium sessions
// (no DevTools client, as in run.mjs), each running benches/browser/bench.js with one build
// of the npm package (and of the Rust app), against one release `unisock serve` echo server.
// For deciding whether a change helps on a noisy shared machine, where one run.mjs before and
// one after say little. Diagnostics, not a benchmark: it writes no BENCHMARKS.md input.
//
//   node benches/browser/ab.mjs ITERATIONS NAME=PKG_DIR[:APP_DIR] NAME=PKG_DIR[:APP_DIR] ...
//   e.g. (keep a copy of pkg/ and target/bench-browser/app/ from before the change):
//   node benches/browser/ab.mjs 4 before=/tmp/pkg-before:/tmp/app-before after=pkg
//
// Environment: ROUNDS (per session, 3), SIZES ([16,1024,65536]), MODES (["rtt","pipe"]),
// CONTENDERS (["WebSocket","Socket","Rust"]), PIPE (messages per pipelined trial by size).
// Sessions alternate A B, B A, …; within a session the contenders rotate as in run.mjs.
// Prints, per variant, the median over rounds of the per-round ratio to the raw WebSocket of
// the same round, and (Linux) the CPU time Chromium's renderer (all its threads, and its main
// thread alone) and its other processes spent per message, read from /proc between trials:
// less disturbed by other load than wall time.
// Raw trials: target/bench-browser/ab.json (the CPU samples under `cpu`, each with its
// session; ab-pool.mjs --cpu pools them). Needs what run.mjs needs, built.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const med = (a) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };
const [iters, ...specs] = process.argv.slice(2);
if (!(Number(iters) > 0) || specs.length < 1) {
  console.error("usage: node benches/browser/ab.mjs ITERATIONS NAME=PKG_DIR[:APP_DIR] ...");
  process.exit(2);
}
const variants = specs.map((s) => {
  const [name, dirs = ""] = s.split("=");
  const [pkg, app = "target/bench-browser/app"] = dirs.split(":");
  return { name, pkg: resolve(ROOT, pkg), app: resolve(ROOT, app) };
});
const children = [];
process.on("exit", () => { for (const c of children) try { process.kill(-c.pid, "SIGKILL"); } catch {} });
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
function lineOf(child, re) { return new Promise((res, rej) => { let t = ""; const f = (c) => { t += c; const m = t.match(re); if (m) res(m); }; child.stdout?.on("data", f); child.stderr?.on("data", f); }); }
const server = spawn(process.env.UNISOCK_BIN || join(ROOT, "target/release/unisock"), ["serve", "--port", "0", "--bind", "127.0.0.1", "--root", "benches/browser", "--pkg", "pkg"], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, RUST_LOG: "warn" } });
children.push(server);
const [, port] = await lineOf(server, /127\.0\.0\.1:(\d+)/);
let current, currentSession = 0, done, chrPid = 0, lastCpu = null, cpuLog = [];
function procCpu(filter, mainOnly = false) {
  // Sum of CPU ns over all threads (or only the main thread) of chromium processes whose
  // cmdline matches `filter`.
  let total = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgrp !== chrPid) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!filter(cmd)) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        if (mainOnly && tid !== pid) continue;
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      }
    } catch {}
  }
  return total;
}
const isRenderer = (c) => c.includes("--type=renderer");
const sample = () => ({ main: procCpu(isRenderer, true), renderer: procCpu(isRenderer), other: procCpu((c) => !isRenderer(c)) });
function onProgress(line) {
  const now = sample();
  if (line.startsWith("{") && lastCpu) {
    const t = JSON.parse(line);
    cpuLog.push({ ...t, variant: current.name, session: currentSession, mainNs: now.main - lastCpu.main, rendererNs: now.renderer - lastCpu.renderer, otherNs: now.other - lastCpu.other });
  }
  lastCpu = now;
}
const http = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (req.method === "POST") { let b = ""; req.on("data", (c) => (b += c)); req.on("end", () => { res.writeHead(204).end(); if (path === "/progress") onProgress(JSON.parse(b).line); if (path === "/results" || path === "/error") done(JSON.parse(b)); }); return; }
  let file = join(ROOT, path);
  if (path.startsWith("/pkg/")) file = join(current.pkg, path.slice(5));
  if (path.startsWith("/target/bench-browser/app/")) file = join(current.app, path.slice(26));
  if (!existsSync(file)) return res.writeHead(404).end();
  res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" });
  res.end(readFileSync(file));
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const config = { ws: `ws://127.0.0.1:${port}/echo`, rounds: Number(process.env.ROUNDS || 3), sizes: JSON.parse(process.env.SIZES || "[16,1024,65536]"), rttWarmup: 30, rttCount: 300, pipeCount: JSON.parse(process.env.PIPE || '{"16":1500,"1024":1500,"65536":300}'), pipeWindow: { 16: 64, 1024: 64, 65536: 8 }, maxMs: 1000, contenders: JSON.parse(process.env.CONTENDERS || '["WebSocket","Socket","Rust"]'), modes: JSON.parse(process.env.MODES || "[\"rtt\",\"pipe\"]") };
const all = [];
for (let it = 0; it < Number(iters); it++) {
  for (const v of (it % 2 ? [...variants].reverse() : variants)) {
    current = v;
    currentSession = it;
    const udd = mkdtempSync(tmpdir() + "/ab-chr-");
    const result = new Promise((r) => (done = r));
    const chr = spawn("/usr/bin/chromium", ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run", "--disable-default-apps", "--disable-extensions", "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows", `--user-data-dir=${udd}`, `http://127.0.0.1:${http.address().port}/benches/browser/index.html?config=${encodeURIComponent(JSON.stringify(config))}`], { detached: true, stdio: "ignore" });
    children.push(chr);
    chrPid = chr.pid; lastCpu = null;
    const r = await Promise.race([result, new Promise((res) => setTimeout(() => res({ error: "no results within 150 s" }), 150000))]);
    try { process.kill(-chr.pid, "SIGKILL"); } catch {}
    rmSync(udd, { recursive: true, force: true });
    if (r.error) { console.error(v.name, r.error); continue; }
    for (const t of r.trials) all.push({ ...t, variant: v.name, session: it });
  }
}
mkdirSync(join(ROOT, "target/bench-browser"), { recursive: true });
writeFileSync(join(ROOT, "target/bench-browser/ab.json"), JSON.stringify({ config, trials: all, cpu: cpuLog }));
for (const mode of config.modes) for (const size of config.sizes) for (const c of config.contenders) {
  const row = variants.map((v) => {
    const samples = cpuLog.filter((t) => t.variant === v.name && t.mode === mode && t.size === size && t.contender === c && !t.error);
    const perMessage = (ns) => med(samples.map((t) => t[ns] / 1000 / (mode === "rtt" ? t.n + config.rttWarmup : t.n))).toFixed(1);
    return `${v.name} renderer ${perMessage("rendererNs")} (main thread ${perMessage("mainNs")}) other ${perMessage("otherNs")} µs/msg (n=${samples.length})`;
  });
  console.log(`CPU ${mode} ${size} ${c}: ${row.join("  ")}`);
}
for (const mode of config.modes) for (const size of config.sizes) for (const c of config.contenders.filter((c) => c !== "WebSocket")) {
  const row = [];
  for (const v of variants) {
    const ratios = all.filter((t) => t.variant === v.name && t.mode === mode && t.size === size && t.contender === c && !t.error).map((t) => {
      const raw = all.find((u) => u.variant === v.name && u.session === t.session && u.round === t.round && u.mode === mode && u.size === size && u.contender === "WebSocket");
      return raw ? (mode === "rtt" ? t.p50_us / raw.p50_us : t.msgs_per_s / raw.msgs_per_s) : NaN;
    });
    row.push(`${v.name} ${med(ratios).toFixed(2)} (n=${ratios.length})`);
  }
  console.log(`${mode} ${size} ${c}: ${row.join("  ")}`);
}
process.exit(0);
