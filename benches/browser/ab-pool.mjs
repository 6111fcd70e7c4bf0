// Pools the raw trials of several ab.mjs runs (copies of target/bench-browser/ab.json) and
// says, per contender and size, whether variant B differs from variant A by more than the
// noise: the median ratio to the raw WebSocket of the same round for each, their difference,
// and a 95 % bootstrap interval of that difference (2000 resamples). An interval that holds 0
// means "not measurable here". One ab.mjs run of 8 sessions often moves a median by ±0.1 on a
// busy 2-core machine; pooling runs and reading the interval is what decides.
// Diagnostics, not a benchmark.
//
//   node benches/browser/ab-pool.mjs A B MODE FILE...
//   e.g. cp target/bench-browser/ab.json /tmp/ab1.json (after each ab.mjs run), then
//   node benches/browser/ab-pool.mjs before after pipe /tmp/ab1.json /tmp/ab2.json
//
// MODE: rtt (ratio of p50 round trips: lower is better) or pipe (ratio of messages/s: higher
// is better). Variants missing from a file are skipped in it. A contender whose code is the
// same in A and B (e.g. Rust when only src/js changed) shows the noise level directly.
import { readFileSync } from "node:fs";

const [a, b, mode, ...files] = process.argv.slice(2);
if (!a || !b || !["rtt", "pipe"].includes(mode) || files.length === 0) {
  console.error("usage: node benches/browser/ab-pool.mjs A B rtt|pipe AB_JSON...");
  process.exit(2);
}
const median = (values) => {
  const s = [...values].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ratios = new Map(); // "size contender" -> { [variant]: number[] }
for (const file of files) {
  const { trials } = JSON.parse(readFileSync(file, "utf8"));
  for (const t of trials) {
    if (t.error || t.mode !== mode || t.contender === "WebSocket" || (t.variant !== a && t.variant !== b)) continue;
    const raw = trials.find((u) => !u.error && u.contender === "WebSocket" && u.variant === t.variant
      && u.session === t.session && u.round === t.round && u.mode === mode && u.size === t.size);
    if (!raw) continue;
    const ratio = mode === "rtt" ? t.p50_us / raw.p50_us : t.msgs_per_s / raw.msgs_per_s;
    if (!Number.isFinite(ratio)) continue;
    const key = `${t.size} ${t.contender}`;
    if (!ratios.has(key)) ratios.set(key, { [a]: [], [b]: [] });
    ratios.get(key)[t.variant].push(ratio);
  }
}
// A fixed-seed generator: the same files give the same intervals.
let seed = 1;
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const resample = (values) => Array.from(values, () => values[Math.floor(random() * values.length)]);
for (const [key, byVariant] of ratios) {
  const [va, vb] = [byVariant[a], byVariant[b]];
  if (va.length === 0 || vb.length === 0) continue;
  const diffs = Array.from({ length: 2000 }, () => median(resample(vb)) - median(resample(va))).sort((x, y) => x - y);
  console.log(
    `${mode} ${key.padEnd(16)} ${a} ${median(va).toFixed(3)} (n=${va.length})  ${b} ${median(vb).toFixed(3)} (n=${vb.length})  ` +
      `diff ${(median(vb) - median(va)).toFixed(3)}  95% [${diffs[50].toFixed(3)}, ${diffs[1949].toFixed(3)}]`,
  );
}
