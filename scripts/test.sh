#!/usr/bin/env bash
# Run every test: lints, native tests (unit, integration, doc), then the
# wasm32 tests in headless Chromium and Firefox against a local echo server,
# then the npm package (types, Node) and the demo page end to end (Chromium).
# Stops at the first failure and exits non-zero.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

banner() { printf '\n==================== %s ====================\n' "$*"; }

banner "install (skips what is present)"
bash scripts/install.sh

banner "cargo fmt --check"
cargo fmt --all -- --check

banner "cargo clippy (native, with the server)"
cargo clippy --all-targets --features server -- -D warnings

banner "cargo clippy (wasm32-unknown-unknown, with and without the npm package's JS API)"
cargo clippy --all-targets --target wasm32-unknown-unknown -- -D warnings
cargo clippy --all-targets --target wasm32-unknown-unknown --features js -- -D warnings

banner "cargo doc (native and wasm32: every link resolves, no rustdoc warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --features server
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --target wasm32-unknown-unknown --features js

banner "cargo test (native, with the server)"
cargo test --features server

# --- Browser tests -----------------------------------------------------------
# The wasm tests cannot start processes, so a native echo server runs beside
# them; they find it through UNISOCK_TEST_ECHO_URL (read at compile time).
# With the `server` feature: its `/session-proxy` runs `unisock serve` for the session tests.
banner "build echo server (examples/echo_server.rs)"
cargo build --example echo_server --features server

ECHO_PID=""
ECHO_OUT=$(mktemp)
cleanup() {
    if [ -n "$ECHO_PID" ] && kill -0 "$ECHO_PID" 2>/dev/null; then
        kill "$ECHO_PID" 2>/dev/null || true
        wait "$ECHO_PID" 2>/dev/null || true
    fi
    rm -f "$ECHO_OUT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Already built, so this starts at once; cargo run exec()s the example, so
# ECHO_PID is the server itself. stderr stays on the console for diagnostics.
cargo run --quiet --example echo_server --features server > "$ECHO_OUT" &
ECHO_PID=$!

port=""
for _ in $(seq 1 1200); do   # 120 s at 0.1 s
    port=$(sed -n 's/^LISTENING \([0-9][0-9]*\)$/\1/p' "$ECHO_OUT" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$ECHO_PID" 2>/dev/null || { echo "echo server exited before LISTENING" >&2; cat "$ECHO_OUT" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "echo server printed no LISTENING line within 120 s" >&2; exit 1; }
export UNISOCK_TEST_ECHO_URL="ws://127.0.0.1:$port"
echo "echo server pid $ECHO_PID at $UNISOCK_TEST_ECHO_URL"

export WASM_BINDGEN_TEST_TIMEOUT=60
# wasm-bindgen-test-runner prefers GECKODRIVER over CHROMEDRIVER and otherwise
# searches PATH: set exactly one per run.
banner "cargo test --target wasm32-unknown-unknown (Chromium)"
env -u GECKODRIVER CHROMEDRIVER=/usr/bin/chromedriver \
    cargo test --target wasm32-unknown-unknown --tests

banner "cargo test --target wasm32-unknown-unknown (Firefox)"
env -u CHROMEDRIVER GECKODRIVER="$(command -v geckodriver)" \
    cargo test --target wasm32-unknown-unknown --tests

# --- npm package and demo page -------------------------------------------------
# The wasm-pack package in pkg/, used from Node and by the demo page in Chromium,
# against `unisock serve` (each test file starts its own on a free port).
banner "build pkg/ (scripts/build-pkg.sh)"
bash scripts/build-pkg.sh

banner "wasm size budget (scripts/check-size.sh against benches/size-budget.json)"
bash scripts/check-size.sh

banner "build unisock serve (release, feature server)"
cargo build --release --features server --bin unisock
export UNISOCK_BIN="$PWD/target/release/unisock"

banner "tsc --noEmit --strict: tests/js/types-check.ts against pkg/unisock.d.ts"
tools/node/node_modules/.bin/tsc --noEmit --strict -p tests/js

# Node 20 has a global WebSocket (used by the package) only with this flag.
banner "npm package in Node (node --test tests/js/package.test.mjs)"
NODE_OPTIONS=--experimental-websocket timeout 300 node --test --test-force-exit tests/js/package.test.mjs

banner "acknowledged sessions from the npm package (tests/js/sessions.test.mjs)"
NODE_OPTIONS=--experimental-websocket timeout 300 node --test --test-force-exit tests/js/sessions.test.mjs

banner "demo page end to end in Chromium (timeout 300 node --test --test-force-exit tests/js/demo-e2e.test.mjs)"
timeout 300 node --test --test-force-exit tests/js/demo-e2e.test.mjs
echo "screenshot: target/demo-e2e.png"

banner "npm Socket in Chromium: the browser's own message events (timeout 300 node --test --test-force-exit tests/js/browser-socket.test.mjs)"
timeout 300 node --test --test-force-exit tests/js/browser-socket.test.mjs

banner "SharedSocket across pages in Chromium (timeout 300 node --test --test-force-exit tests/js/shared-worker.test.mjs)"
timeout 300 node --test --test-force-exit tests/js/shared-worker.test.mjs

# Conformance: Autobahn cases against the native client, unisock serve and the Chromium
# client, compared with tests/autobahn/expected-*.json (fails on FAILED or any regression).
banner "Autobahn TestSuite: native client, unisock serve, Chromium client"
bash scripts/autobahn.sh

# Benchmarks at smoke size (seconds each): they still build, run, and render a report. The
# full run (bash scripts/bench.sh) is not part of the tests: it measures, it does not check.
banner "benchmark smoke run (bash scripts/bench.sh --smoke)"
bash scripts/bench.sh --smoke

banner "all tests passed"
