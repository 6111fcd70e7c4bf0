#!/usr/bin/env bash
# Every benchmark in one run, then BENCHMARKS.md with its charts (docs/benchmarks/*.svg).
#
#   bash scripts/bench.sh           # full run (under 10 minutes on 2 cores): rewrites BENCHMARKS.md
#   bash scripts/bench.sh --smoke   # seconds per benchmark: checks they all still run and that the
#                                   # report renders; writes target/bench-smoke/, never BENCHMARKS.md
#
# The parts, each writing one JSON result file (format: benches/RESULTS.md) into $UNISOCK_BENCH_OUT:
#   native_client.json  cargo bench --bench native_client   (raw TCP, tokio-tungstenite, ewebsock, unisock)
#   browser.json        node benches/browser/run.mjs        (raw WebSocket, npm Socket, Rust wasm API in Chromium)
#   wasm_size.json        (written by run.mjs through scripts/check-size.sh: gzipped .wasm sizes vs the budget)
#   server.json         cargo bench --bench server          (idle RSS per connection, fan-out vs Node ws)
#   backplane.json      cargo run --example backplane_fanout (room fan-out with 1, 2, 3 servers on one Redis)
# Each part is bounded by `timeout`; a part that fails or times out fails the whole run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export PATH="$ROOT/tools/node/node_modules/.bin:$HOME/.cargo/bin:$PATH"

log() { printf '\n[bench] %s\n' "$*"; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

MODE=full
case "${1:-}" in
    "") ;;
    --smoke) MODE=smoke ;;
    *) die "unknown argument '$1' (use --smoke or nothing)" ;;
esac

if [ "$MODE" = smoke ]; then
    export UNISOCK_BENCH_QUICK=1
    export UNISOCK_BENCH_OUT="$ROOT/target/bench-smoke"
    REPORT="$UNISOCK_BENCH_OUT/BENCHMARKS.md"
    CHARTS="$UNISOCK_BENCH_OUT/charts"
    PART_TIMEOUT=300      # mostly build time; the runs themselves take seconds
else
    unset UNISOCK_BENCH_QUICK
    export UNISOCK_BENCH_OUT="$ROOT/target/bench"
    REPORT="$ROOT/BENCHMARKS.md"
    CHARTS="$ROOT/docs/benchmarks"
    PART_TIMEOUT=400
fi
rm -rf "$UNISOCK_BENCH_OUT"
mkdir -p "$UNISOCK_BENCH_OUT"
START=$SECONDS

log "install (skips what is present)"
bash scripts/install.sh

# Built before the clock of any part starts, so the parts' timeouts bound the runs.
log "build: release unisock serve, the npm package, the benchmark binaries"
cargo build --release --features server --bin unisock
export UNISOCK_BIN="$ROOT/target/release/unisock"
bash scripts/build-pkg.sh
cargo bench --features server --no-run --bench native_client --bench server
cargo build --release --features server --example backplane_fanout

log "native client (cargo bench --bench native_client)"
timeout "$PART_TIMEOUT" cargo bench --features server --bench native_client

log "browser (node benches/browser/run.mjs)"
timeout "$PART_TIMEOUT" node benches/browser/run.mjs

log "server (cargo bench --bench server)"
timeout "$PART_TIMEOUT" cargo bench --features server --bench server

log "Redis backplane (cargo run --release --example backplane_fanout)"
timeout "$PART_TIMEOUT" cargo run --release --features server --example backplane_fanout

log "report: $REPORT"
.venv/bin/python scripts/bench_report.py "$UNISOCK_BENCH_OUT" "$REPORT" "$CHARTS"
log "done in $((SECONDS - START)) s ($MODE)"
