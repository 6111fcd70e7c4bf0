#!/usr/bin/env bash
# Autobahn TestSuite conformance (kosoku, from PyPI, in .venv), all on 127.0.0.1:
#
#   client   unisock's native client (examples/autobahn_client.rs) against
#            `kosoku -m fuzzingserver`
#   server   `kosoku -m fuzzingclient` against `unisock serve`'s /echo endpoint
#   browser  unisock's browser backend in headless Chromium (tests/browser_autobahn.rs,
#            wasm-bindgen-test) against `kosoku -m fuzzingserver`
#
# Usage: bash scripts/autobahn.sh [client] [server] [browser]   (default: all three)
#
# Cases 12.* and 13.* (permessage-deflate) are excluded: tungstenite does not implement
# the extension, and kosoku exits non-zero on UNIMPLEMENTED cases.
#
# Each run's report (kosoku's index.json) is compared with the committed expectations in
# tests/autobahn/expected-{client,server,browser}.json by tests/autobahn/compare.py: any
# FAILED case (other than browser-decided ones the expectations accept) or any case that got
# worse fails the script. Reports (HTML and JSON) go to target/autobahn/. Every process is
# bounded in time; the script exits non-zero on the first failing run, after printing its
# summary table.
#
# Needs: .venv with tests/autobahn/requirements.txt (scripts/install.sh); for `browser`,
# Chromium, chromedriver and wasm-bindgen-test-runner (scripts/install.sh too).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

OUT="$ROOT/target/autobahn"
KOSOKU="$ROOT/.venv/bin/kosoku"
COMPARE=(python3 "$ROOT/tests/autobahn/compare.py")
EXCLUDE=(-x '12.*' -x '13.*')
# Wall-clock bounds (the non-compression cases take ~15 s natively, ~1 min in Chromium).
RUN_LIMIT=300
BROWSER_LIMIT=900

log() { printf '[autobahn] %s\n' "$*"; }
die() { printf '[autobahn] ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$KOSOKU" ] || die "$KOSOKU is missing: run scripts/install.sh (installs tests/autobahn/requirements.txt into .venv)"

RUNS=("$@")
[ ${#RUNS[@]} -gt 0 ] || RUNS=(client server browser)
for run in "${RUNS[@]}"; do
    case "$run" in client | server | browser) ;; *) die "unknown run '$run' (client, server, browser)" ;; esac
done

# Background processes this script started, stopped on exit.
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for_line FILE SED_EXPR PID WHAT: prints the first capture of SED_EXPR in FILE,
# waiting at most 60 s, failing if PID exits first.
wait_for_line() {
    local file=$1 expr=$2 pid=$3 what=$4 value=""
    for _ in $(seq 1 600); do
        value=$(sed -n "$expr" "$file" | head -n1)
        [ -n "$value" ] && { echo "$value"; return 0; }
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "$what exited before it was ready"; }
        sleep 0.1
    done
    cat "$file" >&2
    die "$what was not ready within 60 s"
}

# start_fuzzingserver NAME: starts `kosoku -m fuzzingserver` on a free port of 127.0.0.1
# (port 0: kosoku prints the one it got), writing reports to $OUT/NAME. Sets FS_PID, FS_URL.
start_fuzzingserver() {
    local name=$1
    rm -rf "${OUT:?}/$name"
    mkdir -p "$OUT"
    timeout "$RUN_LIMIT" "$KOSOKU" -m fuzzingserver 127.0.0.1:0 "${EXCLUDE[@]}" -o "$OUT/$name" \
        > "$OUT/$name-fuzzingserver.log" 2>&1 &
    FS_PID=$!
    PIDS+=("$FS_PID")
    local addr
    addr=$(wait_for_line "$OUT/$name-fuzzingserver.log" \
        's/^fuzzingserver listening on ws:\/\/\(127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$FS_PID" "kosoku fuzzingserver")
    FS_URL="ws://$addr"
    log "kosoku fuzzingserver at $FS_URL (pid $FS_PID)"
}

# finish_fuzzingserver NAME: waits (bounded) for the fuzzing server to write its reports and
# exit (it does after /updateReports). Its exit status is not used: it is 1 whenever a case
# did not pass, which compare.py judges against the expectations instead.
finish_fuzzingserver() {
    local name=$1
    for _ in $(seq 1 300); do
        kill -0 "$FS_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$FS_PID" 2>/dev/null; then
        kill "$FS_PID" 2>/dev/null || true
        die "the fuzzing server did not finish within 30 s of the client's end (log: $OUT/$name-fuzzingserver.log)"
    fi
    wait "$FS_PID" 2>/dev/null || true
    tail -n 2 "$OUT/$name-fuzzingserver.log"
}

build_native() {
    [ -n "${BUILT_NATIVE:-}" ] && return 0
    log "building (release): unisock serve and examples/autobahn_client"
    cargo build --release --quiet --features server --bin unisock --example autobahn_client
    BUILT_NATIVE=1
}

run_client() {
    local start=$SECONDS
    build_native
    start_fuzzingserver client
    log "client (native): examples/autobahn_client against $FS_URL"
    timeout "$RUN_LIMIT" "$ROOT/target/release/examples/autobahn_client" "$FS_URL" unisock \
        > "$OUT/client.log" 2>&1 || { tail -n 20 "$OUT/client.log" >&2; die "the client failed or timed out (log: $OUT/client.log)"; }
    finish_fuzzingserver client
    "${COMPARE[@]}" tests/autobahn/expected-client.json "$OUT/client/index.json" --title "client (native)"
    log "client (native): done in $((SECONDS - start)) s; report: $OUT/client/index.html"
}

run_server() {
    local start=$SECONDS
    build_native
    rm -rf "${OUT:?}/server" "$OUT/server-root"
    mkdir -p "$OUT/server-root"
    # --port 0: a free port, named in the one line it prints on stdout.
    timeout "$RUN_LIMIT" "$ROOT/target/release/unisock" serve --port 0 --root "$OUT/server-root" \
        > "$OUT/server-unisock.out" 2> "$OUT/server-unisock.log" &
    local server_pid=$!
    PIDS+=("$server_pid")
    local addr
    addr=$(wait_for_line "$OUT/server-unisock.out" \
        's/^unisock serve listening on http:\/\/\(127\.0\.0\.1:[0-9][0-9]*\)\/.*/\1/p' "$server_pid" "unisock serve")
    log "server: kosoku fuzzingclient against ws://$addr/echo (unisock serve, pid $server_pid)"
    # kosoku's fuzzingclient takes the server's WebSocket URL, path included; the agent in
    # its report is the server's `Server` header or, without one, host:port.
    timeout "$RUN_LIMIT" "$KOSOKU" -m fuzzingclient "ws://$addr/echo" "${EXCLUDE[@]}" -o "$OUT/server" \
        > "$OUT/server-fuzzingclient.log" 2>&1 || true # 1 when a case did not pass: judged below
    tail -n 2 "$OUT/server-fuzzingclient.log"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    "${COMPARE[@]}" tests/autobahn/expected-server.json "$OUT/server/index.json" --title "server (unisock serve /echo)"
    log "server: done in $((SECONDS - start)) s; report: $OUT/server/index.html"
}

run_browser() {
    local start=$SECONDS
    command -v wasm-bindgen-test-runner >/dev/null || die "wasm-bindgen-test-runner missing: run scripts/install.sh"
    [ -x /usr/bin/chromedriver ] || die "/usr/bin/chromedriver missing: run scripts/install.sh"
    # Built before the fuzzing server starts, so that its clock does not run during the build.
    # The URL is read at build time (option_env!), so the test binary is built with a
    # placeholder first and rebuilt (one small crate) once the port is known.
    log "building the wasm test (tests/browser_autobahn.rs)"
    UNISOCK_AUTOBAHN_URL=ws://127.0.0.1:9 cargo test --quiet --target wasm32-unknown-unknown \
        --test browser_autobahn --no-run
    start_fuzzingserver browser
    log "browser: tests/browser_autobahn.rs in headless Chromium against $FS_URL"
    # Exactly one driver: the runner prefers GECKODRIVER when both are set.
    UNISOCK_AUTOBAHN_URL="$FS_URL" WASM_BINDGEN_TEST_TIMEOUT=$((BROWSER_LIMIT - 60)) \
        env -u GECKODRIVER CHROMEDRIVER=/usr/bin/chromedriver \
        timeout "$BROWSER_LIMIT" cargo test --target wasm32-unknown-unknown --test browser_autobahn \
        > "$OUT/browser.log" 2>&1 || { tail -n 40 "$OUT/browser.log" >&2; die "the browser test failed or timed out (log: $OUT/browser.log)"; }
    grep -E '^(test |running|test result)' "$OUT/browser.log" || true
    finish_fuzzingserver browser
    "${COMPARE[@]}" tests/autobahn/expected-browser.json "$OUT/browser/index.json" --title "client (browser, Chromium)"
    log "browser: done in $((SECONDS - start)) s; report: $OUT/browser/index.html"
}

TOTAL=$SECONDS
for run in "${RUNS[@]}"; do
    "run_$run"
done
log "all runs as expected (${RUNS[*]}) in $((SECONDS - TOTAL)) s"
