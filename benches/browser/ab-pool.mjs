// Pools the raw trials of several ab.mjs runs (copies of target/bench-browser/ab.json) and
// says, per contender and size, whether variant B differs from variant A by more than the
// noise: the median ratio to the raw WebSocket of the same round for each, their difference,
// and a 95 % bootstrap interval of that difference (2000 resamples of whole sessions: trials
// of one Chromium session are not independent; resampling single trials gave intervals that
// excluded 0 for two identical builds). An interval that holds 0 means "not measurable here".
// n=TRIALS/SESSIONS. One ab.mjs run of 8 sessions often moves a median by ±0.1 on a
// busy 2-core machine; pooling runs and reading the interval is what decides. With few
// sessions (under ~10 per variant) the interval is still too narrow: two copies of one build
// (an A/A run, e.g. `ab.mjs 4 a=pkg b=pkg`) pooled the same way show how wide the noise
// really is, and an even ITERATIONS count gives A and B the first slot equally often.
// Diagnostics, not a benchmark.
//
//   node benches/browser/ab-pool.mjs A B MODE [--cpu|--cpu-main] FILE...
//   e.g. cp target/bench-browser/ab.json /tmp/ab1.json (after each ab.mjs run), then
//   node benches/browser/ab-pool.mjs before after pipe /tmp/ab1.json /tmp/ab2.json
//
// MODE: rtt (ratio of p50 round trips: lower is better) or pipe (ratio of messages/s: higher
// is better). Variants missing from a file are skipped in it. A contender whose code is the
// same in A and B (e.g. Rust when only src/js changed) shows the noise level directly.
// --cpu: instead, the ratio of the CPU time Chromium's renderer spent per message (ab.mjs's
// /proc samples) to the raw WebSocket's in the same round (lower is better), and the median
// extra µs per message. Other jobs on the machine move it less than wall time, though still
// by ±0.2 in one run of 8 sessions on 2 busy cores. Needs ab.json files whose CPU samples
// carry their session (written by ab.mjs since it records them). --cpu-main: the same for the
// renderer's main thread alone (where the page, wasm and the WebSocket's JS side run).
import { readFileSync } from "node:fs";

const [a, b, mode, ...rest] = process.argv.slice(2);
const cpu = rest[0] === "--cpu" || rest[0] === "--cpu-main";
const cpuField = rest[0] === "--cpu-main" ? "mainNs" : "rendererNs";
const files = cpu ? rest.slice(1) : rest;
if (!a || !b || !["rtt", "pipe"].includes(mode) || files.length === 0) {
  console.error("usage: node benches/browser/ab-pool.mjs A B rtt|pipe [--cpu|--cpu-main] AB_JSON...");
  process.exit(2);
}
const median = (values) => {
  const s = [...values].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// "size contender" -> { [variant]: Map("file session" -> number[]) }: the trials of one Chromium
// session share its conditions (the load at the time, the browser's warm-up), so the session,
// not the trial, is the unit the bootstrap resamples.
const ratios = new Map();
const extraUs = new Map(); // the same keys -> { [variant]: number[] } (--cpu only)
for (const [fileIndex, file] of files.entries()) {
  const json = JSON.parse(readFileSync(file, "utf8"));
  const trials = cpu ? json.cpu ?? [] : json.trials;
  if (cpu && trials.some((t) => t.session === undefined || t[cpuField] === undefined)) {
    console.error(`${file}: CPU samples without sessions (an older ab.mjs), skipped`);
    continue;
  }
  // Renderer CPU ns per message (round trips also count their warm-up).
  const perMessage = (t) => t[cpuField] / (mode === "rtt" ? t.n + json.config.rttWarmup : t.n);
  for (const t of trials) {
    if (t.error || t.mode !== mode || t.contender === "WebSocket" || (t.variant !== a && t.variant !== b)) continue;
    const raw = trials.find((u) => !u.error && u.contender === "WebSocket" && u.variant === t.variant
      && u.session === t.session && u.round === t.round && u.mode === mode && u.size === t.size);
    if (!raw) continue;
    const ratio = cpu
      ? perMessage(t) / perMessage(raw)
      : mode === "rtt" ? t.p50_us / raw.p50_us : t.msgs_per_s / raw.msgs_per_s;
    if (!Number.isFinite(ratio)) continue;
    const key = `${t.size} ${t.contender}`;
    if (!ratios.has(key)) {
      ratios.set(key, { [a]: new Map(), [b]: new Map() });
      extraUs.set(key, { [a]: [], [b]: [] });
    }
    const sessions = ratios.get(key)[t.variant];
    const session = `${fileIndex} ${t.session}`;
    if (!sessions.has(session)) sessions.set(session, []);
    sessions.get(session).push(ratio);
    if (cpu) extraUs.get(key)[t.variant].push((perMessage(t) - perMessage(raw)) / 1000);
  }
}
// A fixed-seed generator: the same files give the same intervals.
let seed = 1;
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
// Whole sessions drawn with replacement, then the median of all their trials.
const resample = (sessions) =>
  Array.from(sessions, () => sessions[Math.floor(random() * sessions.length)]).flat();
for (const [key, byVariant] of ratios) {
  const [sa, sb] = [[...byVariant[a].values()], [...byVariant[b].values()]];
  const [va, vb] = [sa.flat(), sb.flat()];
  if (va.length === 0 || vb.length === 0) continue;
  const diffs = Array.from({ length: 2000 }, () => median(resample(sb)) - median(resample(sa))).sort((x, y) => x - y);
  const signed = (x) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
  const extra = (v) => (cpu ? ` ${signed(median(extraUs.get(key)[v]))} µs` : "");
  console.log(
    `${cpu ? "cpu " : ""}${mode} ${key.padEnd(16)} ${a} ${median(va).toFixed(3)}${extra(a)} (n=${va.length}/${sa.length})  ` +
      `${b} ${median(vb).toFixed(3)}${extra(b)} (n=${vb.length}/${sb.length})  ` +
      `diff ${(median(vb) - median(va)).toFixed(3)}  95% [${diffs[50].toFixed(3)}, ${diffs[1949].toFixed(3)}]`,
  );
}
