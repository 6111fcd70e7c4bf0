#!/usr/bin/env bash
# Build the minimal Rust wasm app (benches/browser/rust-app) for size, exactly as
# scripts/build-pkg.sh builds the npm package: opt-level z, fat LTO, one codegen unit,
# wasm-bindgen --target web, then wasm-opt -Oz with the flags of Cargo.toml's
# [package.metadata.wasm-pack.profile.release] (npm's binaryen@132 from tools/node only).
#
# Output: target/bench-browser/app/unisock_bench_app.js and unisock_bench_app_bg.wasm.
# Cheap when nothing changed: cargo's no-op check, and wasm-bindgen/wasm-opt are skipped while
# the output is newer than cargo's .wasm.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)
export PATH="$ROOT/tools/node/node_modules/.bin:$HOME/.cargo/bin:$PATH"

log() { printf '[build-app] %s\n' "$*" >&2; }
die() { printf '[build-app] ERROR: %s\n' "$*" >&2; exit 1; }

APP=benches/browser/rust-app
OUT=target/bench-browser/app
export CARGO_TARGET_DIR="$ROOT/target/bench-browser/cargo"
CARGO_WASM="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/unisock_bench_app.wasm"

command -v wasm-bindgen >/dev/null || die "wasm-bindgen not found: run scripts/install.sh"
wasm_opt=$(command -v wasm-opt || true)
[ "$wasm_opt" = "$ROOT/tools/node/node_modules/.bin/wasm-opt" ] \
    || die "wasm-opt must be npm's binaryen@132 in tools/node (found '${wasm_opt:-none}'): run scripts/install.sh"

# The app resolves exactly the versions unisock itself is locked to: its lock file is a copy
# of the root one (cargo then only adds the app's own entry, offline). It is generated, not
# edited by hand.
if ! cmp -s Cargo.lock "$APP/Cargo.lock"; then
    cp Cargo.lock "$APP/Cargo.lock"
fi

# Size over speed; the same profile is in the app's Cargo.toml, repeated here so that the
# build matches build-pkg.sh even if someone edits one of them.
CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
CARGO_PROFILE_RELEASE_LTO=fat \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo build --quiet --release --target wasm32-unknown-unknown --manifest-path "$APP/Cargo.toml"
[ -f "$CARGO_WASM" ] || die "$CARGO_WASM was not produced"

WASM="$OUT/unisock_bench_app_bg.wasm"
if [ -f "$WASM" ] && [ -f "$OUT/unisock_bench_app.js" ] && [ "$WASM" -nt "$CARGO_WASM" ]; then
    log "$WASM is up to date"
    exit 0
fi
mkdir -p "$OUT"
wasm-bindgen --target web --out-dir "$OUT" --out-name unisock_bench_app --no-typescript "$CARGO_WASM"
# Flags from Cargo.toml's wasm-pack metadata, so both .wasm files get the same wasm-opt pass.
opt_flags=$(awk '
    /^\[package\.metadata\.wasm-pack\.profile\.release\]/ { in_section = 1; next }
    /^\[/ { in_section = 0 }
    in_section && /^wasm-opt *=/ { sub(/^wasm-opt *= *\[/, ""); sub(/\].*$/, ""); gsub(/[",]/, " "); print; exit }
' Cargo.toml)
[ -n "$opt_flags" ] || die "no wasm-opt flags found in Cargo.toml [package.metadata.wasm-pack.profile.release]"
# shellcheck disable=SC2086 # the flags are words
wasm-opt $opt_flags "$WASM" -o "$WASM.opt"
mv "$WASM.opt" "$WASM"
log "built $WASM: $(wc -c < "$WASM") bytes"
