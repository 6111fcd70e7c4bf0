#!/usr/bin/env bash
# Fuzz the code unisock owns that parses outside input (fuzz/, cargo-fuzz + libFuzzer), each
# target for a bounded time:
#
#   url             connect URL validation and unisock::redact_url
#   server_query    unisock serve's query strings (notify_self, client_id) and room names
#   server_headers  unisock serve's Sec-WebSocket-Protocol and Origin header handling
#
# Usage: bash scripts/fuzz.sh [TARGET...]   (default: all; FUZZ_SECONDS=20 per target)
#
# For a reproducible run (e.g. in CI: same inputs on every machine, whatever its speed), set
# FUZZ_SEED (libFuzzer's -seed) and FUZZ_RUNS (a number of inputs per target instead of a
# time); FUZZ_SECONDS still bounds each target.
#
# The machine has stable Rust only: cargo-fuzz needs nightly flags (-Zsanitizer=address),
# which RUSTC_BOOTSTRAP=1 unlocks on stable. Installs cargo-fuzz from crates.io if missing
# (~1.5 min); the first build of fuzz/ takes ~2 min on 2 cores, later ones seconds.
# Corpora grow in fuzz/corpus/TARGET (seeded from the committed fuzz/seeds/TARGET); a crash
# is saved in fuzz/artifacts/TARGET/ and fails the script (both folders are not committed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
ALL_TARGETS=(url server_query server_headers)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")

log() { printf '[fuzz] %s\n' "$*"; }

if ! command -v cargo-fuzz >/dev/null; then
    log "cargo-fuzz: installing from crates.io (~1.5 min)"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
START=$SECONDS
log "building fuzz/ ($(cargo fuzz --version))"
timeout 1200 cargo fuzz build --fuzz-dir fuzz

EXTRA=()
[ -z "${FUZZ_SEED:-}" ] || EXTRA+=("-seed=$FUZZ_SEED")
[ -z "${FUZZ_RUNS:-}" ] || EXTRA+=("-runs=$FUZZ_RUNS")

for target in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log "$target: at most ${SECONDS_PER_TARGET} s ${EXTRA[*]}"
    # -max_total_time bounds the run; timeout is the backstop. -timeout: one input may take at
    # most 10 s; -rss_limit_mb: memory cap (the machine has 24 GiB, CI runs beside it).
    if ! timeout $((SECONDS_PER_TARGET + 120)) cargo fuzz run --fuzz-dir fuzz "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        ${EXTRA[@]+"${EXTRA[@]}"} \
        > "target/fuzz-$target.log" 2>&1; then
        tail -n 60 "target/fuzz-$target.log" >&2
        log "$target: FAILED (full log: target/fuzz-$target.log; crash input in fuzz/artifacts/$target/)"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "target/fuzz-$target.log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "target/fuzz-$target.log" | tail -n1)
    log "$target: ok, ${runs:-?} inputs, $cov, corpus $(find "fuzz/corpus/$target" -type f | wc -l) files"
done
log "all targets ok (${TARGETS[*]}) in $((SECONDS - START)) s"
