#!/usr/bin/env bash
# The wasm size budget (issue 7): gzip -9 sizes of
#   (a) the minimal Rust app (benches/browser/rust-app: only connect / Sink send / Stream next),
#       built here with benches/browser/build-app.sh (a no-op when up to date), and
#   (b) the npm package's pkg/unisock_bg.wasm, as scripts/build-pkg.sh left it (run it first),
# against benches/size-budget.json. Prints the numbers, writes them to
# $UNISOCK_BENCH_OUT/wasm_size.json (default target/bench/; `--json FILE` to choose), and exits
# non-zero with a clear message if either is over its budget.
#
# Raising a budget is a decision: edit benches/size-budget.json in the same change that needs
# it and say why there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export PATH="$ROOT/tools/node/node_modules/.bin:$HOME/.cargo/bin:$PATH"

log() { printf '[check-size] %s\n' "$*"; }
die() { printf '[check-size] ERROR: %s\n' "$*" >&2; exit 1; }

JSON_OUT="${UNISOCK_BENCH_OUT:-$ROOT/target/bench}/wasm_size.json"
while [ $# -gt 0 ]; do
    case "$1" in
        --json) [ $# -ge 2 ] || die "--json needs a file"; JSON_OUT=$2; shift 2 ;;
        *) die "unknown argument '$1' (usage: scripts/check-size.sh [--json FILE])" ;;
    esac
done

PKG_WASM=pkg/unisock_bg.wasm
APP_WASM=target/bench-browser/app/unisock_bench_app_bg.wasm
BUDGET=benches/size-budget.json

[ -f "$PKG_WASM" ] || die "$PKG_WASM not found: run scripts/build-pkg.sh first"
[ -f "$BUDGET" ] || die "$BUDGET not found"
bash benches/browser/build-app.sh
[ -f "$APP_WASM" ] || die "$APP_WASM was not produced"

# -n: no file name or time stamp in the header, so the number depends on the content only.
gz() { gzip -9 -n -c < "$1" | wc -c; }

mkdir -p "$(dirname "$JSON_OUT")"
node - "$BUDGET" "$JSON_OUT" \
    "$APP_WASM" "$(wc -c < "$APP_WASM")" "$(gz "$APP_WASM")" \
    "$PKG_WASM" "$(wc -c < "$PKG_WASM")" "$(gz "$PKG_WASM")" <<'EOF'
// Compares with the budget, prints, writes the result file (format: benches/RESULTS.md).
const fs = require("node:fs");
const [budgetFile, out, appFile, appRaw, appGz, pkgFile, pkgRaw, pkgGz] = process.argv.slice(2);
const budget = JSON.parse(fs.readFileSync(budgetFile, "utf8"));
const items = [
  { key: "minimal_rust_app", name: "(a) minimal Rust app", file: appFile, raw: +appRaw, gz: +appGz },
  { key: "npm_package", name: "(b) npm package", file: pkgFile, raw: +pkgRaw, gz: +pkgGz },
];
const kib = (bytes) => Math.round((bytes / 1024) * 10) / 10;
let over = 0;
for (const item of items) {
  item.budget = budget[item.key]?.gzip_bytes;
  if (!Number.isInteger(item.budget)) {
    console.error(`[check-size] ERROR: ${budgetFile} has no ${item.key}.gzip_bytes`);
    process.exit(1);
  }
  item.met = item.gz <= item.budget;
  const line = `${item.name}: ${item.file}: ${item.raw} bytes, ${item.gz} bytes gzip -9 ` +
    `(${kib(item.gz)} KiB); budget ${item.budget} bytes, ${item.met ? "OK" : "OVER"} ` +
    `(${(((item.gz - item.budget) / item.budget) * 100).toFixed(1)} % vs budget)`;
  console.log(`[check-size] ${line}`);
  if (!item.met) over += 1;
}
const result = {
  benchmark: "wasm_size",
  title: "wasm size: a minimal Rust app and the npm package (gzip -9)",
  method: "Both built for size (opt-level z, fat LTO, one codegen unit, wasm-bindgen --target web, " +
    "wasm-opt -Oz from binaryen 132): (a) benches/browser/rust-app, a cdylib using only " +
    "unisock::connect, Sink send and Stream next (plus the two benchmark loops it exports); " +
    "(b) pkg/unisock_bg.wasm from scripts/build-pkg.sh. Sizes of the .wasm only (not the JS glue), " +
    "gzip -9 -n. Budgets: benches/size-budget.json, checked by scripts/check-size.sh.",
  versions: {},
  tables: [{
    title: "wasm size",
    columns: ["binary", "raw bytes", "gzip bytes", "gzip KiB", "budget gzip bytes", "within budget"],
    rows: items.map((i) => [i.name, i.raw, i.gz, kib(i.gz), i.budget, i.met ? "yes" : "no"]),
  }],
  charts: [],
  targets: items.map((i) => ({
    what: `${i.name} gzip bytes`, value: i.gz, target: `<= ${i.budget}`, met: i.met,
  })),
  notes: [],
};
fs.writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(`[check-size] wrote ${out}`);
if (over > 0) {
  console.error(`[check-size] ERROR: ${over} wasm file(s) over the gzip budget in ${budgetFile}. ` +
    "Make it smaller, or raise the budget there on purpose (and say why in the change).");
  process.exit(1);
}
EOF
