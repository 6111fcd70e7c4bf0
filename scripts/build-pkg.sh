#!/usr/bin/env bash
# Build the npm package into pkg/ (wasm-pack, --target web, package name "unisock"):
# pkg/unisock.js (ES module; its default export initialises the wasm), pkg/unisock_bg.wasm,
# pkg/unisock.d.ts, pkg/package.json. Prints the size of the .wasm, raw and gzipped.
#
# Needs what scripts/install.sh installs: wasm-pack and wasm-bindgen (cargo), and wasm-opt
# from npm's binaryen@132 in tools/node (Debian's binaryen 108 produces wasm that fails in
# the browser, see shared/TOOLCHAIN.md: this script refuses any other wasm-opt).
#
# The JS API (src/js/) is behind the `js` feature, which only this build turns on.
#
# Size: wasm-opt -Oz comes from [package.metadata.wasm-pack.profile.release] in Cargo.toml;
# the Rust side is compiled for size (opt-level z, fat LTO, one codegen unit) through
# CARGO_PROFILE_RELEASE_* variables set for this build only, so that `cargo build --release`
# of the native server stays a normal speed-optimised build.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export PATH="$ROOT/tools/node/node_modules/.bin:$HOME/.cargo/bin:$PATH"

log() { printf '[build-pkg] %s\n' "$*"; }
die() { printf '[build-pkg] ERROR: %s\n' "$*" >&2; exit 1; }

command -v wasm-pack >/dev/null || die "wasm-pack not found: run scripts/install.sh"
command -v wasm-bindgen >/dev/null || die "wasm-bindgen not found: run scripts/install.sh"
wasm_opt=$(command -v wasm-opt || true)
[ "$wasm_opt" = "$ROOT/tools/node/node_modules/.bin/wasm-opt" ] \
    || die "wasm-opt must be npm's binaryen@132 in tools/node (found '${wasm_opt:-none}'): run scripts/install.sh"
wasm-opt --version | grep -q 'version 132' \
    || die "wasm-opt is not version 132: $(wasm-opt --version)"

START=$SECONDS
log "wasm-pack $(wasm-pack --version | awk '{print $2}'), $(wasm-bindgen --version), $(wasm-opt --version)"

# Size over speed for the wasm only (see above). The wasm32 release build has its own
# directory under target/, so these never invalidate the native release build.
CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
CARGO_PROFILE_RELEASE_LTO=fat \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=false \
    wasm-pack build --target web --release --mode no-install --out-name unisock --out-dir pkg -- --features js

wasm=pkg/unisock_bg.wasm
[ -f "$wasm" ] || die "$wasm was not produced"

# SharedSocket (src/js/shared-socket.js): plain JS beside the generated module, re-exported
# by it; its worker is found relative to it (new URL("./unisock-worker.js", import.meta.url)).
cp src/js/shared-socket.js pkg/unisock-shared.js
cp src/js/shared-worker.js pkg/unisock-worker.js
printf '\nexport { SharedSocket } from "./unisock-shared.js";\n' >> pkg/unisock.js
cat src/js/shared-socket.d.ts >> pkg/unisock.d.ts
node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync("pkg/package.json", "utf8"));
  pkg.files = [...new Set([...(pkg.files ?? []), "unisock-shared.js", "unisock-worker.js"])];
  fs.writeFileSync("pkg/package.json", JSON.stringify(pkg, null, 2) + "\n");
'
raw=$(wc -c < "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
log "built pkg/ in $((SECONDS - START)) s"
log "$wasm: $raw bytes, $gz bytes gzipped ($(awk -v b="$gz" 'BEGIN { printf "%.1f", b / 1024 }') KiB)"
