#!/usr/bin/env bash
# Install everything the tests need, idempotently: a second run does nothing
# and takes a few seconds. Non-interactive (CI=true, no stdin), run as root.
# Recipes and their gotchas: shared/TOOLCHAIN.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
# cargo install puts binaries here; a fresh shell may not have it on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive
# Optimising the installed tools fully costs minutes on 2 cores for no gain.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1

START=$SECONDS
log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --- Rust: wasm target ------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found (rustup toolchain expected)"
if rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
    log "rust target wasm32-unknown-unknown: present"
else
    log "rust target wasm32-unknown-unknown: installing"
    rustup target add wasm32-unknown-unknown
fi

# --- wasm-bindgen CLI (includes wasm-bindgen-test-runner) -------------------
# Must be exactly the wasm-bindgen crate version in Cargo.lock, or the runner
# refuses the test binaries.
if [ ! -f Cargo.lock ]; then
    log "Cargo.lock missing: generating it"
    cargo generate-lockfile
fi
WB_VERSION=$(awk '
    /^\[\[package\]\]/ { in_wb = 0 }
    /^name = "wasm-bindgen"$/ { in_wb = 1; next }
    in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)
[ -n "$WB_VERSION" ] || die "no wasm-bindgen package found in Cargo.lock"
have_wb=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have_wb" = "$WB_VERSION" ] && command -v wasm-bindgen-test-runner >/dev/null; then
    log "wasm-bindgen-cli $WB_VERSION: present"
else
    log "wasm-bindgen-cli: installing $WB_VERSION (found '${have_wb:-none}'; ~2 min)"
    # No --locked: the CLI's own lock file pins a crate version the registry lacks.
    # --force: replace a different installed version.
    cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# --- wasm-pack (builds the npm package, scripts/build-pkg.sh) ----------------
# From crates.io: npm's `wasm-pack` downloads a binary at install time (no network
# here). Always run with --mode no-install, so that it uses the wasm-bindgen above
# and the wasm-opt below.
if command -v wasm-pack >/dev/null; then
    log "wasm-pack: present ($(wasm-pack --version))"
else
    log "wasm-pack: installing with cargo (~3 min)"
    cargo install wasm-pack --locked
fi

# --- Browsers and their WebDriver servers -----------------------------------
# redis-server: the backplane tests (tests/backplane.rs) start their own on a free port.
APT_PKGS=(chromium chromium-driver firefox-esr redis-server)
missing=()
for pkg in "${APT_PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    log "apt packages ${APT_PKGS[*]}: present"
else
    log "apt packages: installing ${missing[*]}"
    # Wait for a dpkg lock held by another apt run instead of failing at once.
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update
    $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
fi

# geckodriver is not packaged by Debian and npm's wrapper downloads a binary
# (no network here): build it from crates.io.
if command -v geckodriver >/dev/null; then
    log "geckodriver: present ($(geckodriver --version | sed -n 1p))"
else
    log "geckodriver: installing with cargo (~1.5 min)"
    cargo install geckodriver --locked
fi

# --- Python test peer (websockets) ------------------------------------------
REQ=tests/peers/requirements.txt
if [ ! -x .venv/bin/python ]; then
    log "python venv .venv: creating"
    python3 -m venv .venv
fi
# Reinstall only when requirements.txt changed (stamp = its checksum).
req_sum=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat .venv/.unisock-requirements 2>/dev/null || true)" = "$req_sum" ] \
    && .venv/bin/python -c 'import websockets' 2>/dev/null; then
    log "python packages ($REQ): present"
else
    log "python packages: installing from $REQ"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$req_sum" > .venv/.unisock-requirements
fi
log "python websockets $(.venv/bin/python -c 'import websockets; print(websockets.__version__)')"

# --- Autobahn TestSuite runner (kosoku) for scripts/autobahn.sh ---------------
AB_REQ=tests/autobahn/requirements.txt
ab_sum=$(sha256sum "$AB_REQ" | cut -d' ' -f1)
if [ "$(cat .venv/.unisock-autobahn 2>/dev/null || true)" = "$ab_sum" ] && [ -x .venv/bin/kosoku ]; then
    log "python packages ($AB_REQ): present"
else
    log "python packages: installing from $AB_REQ"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$AB_REQ"
    echo "$ab_sum" > .venv/.unisock-autobahn
fi

# --- Benchmark report (matplotlib) for scripts/bench_report.py ------------------
BENCH_REQ=benches/requirements.txt
bench_sum=$(sha256sum "$BENCH_REQ" | cut -d' ' -f1)
if [ "$(cat .venv/.unisock-bench 2>/dev/null || true)" = "$bench_sum" ] \
    && .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
    log "python packages ($BENCH_REQ): present"
else
    log "python packages: installing from $BENCH_REQ (~2 min)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$BENCH_REQ"
    echo "$bench_sum" > .venv/.unisock-bench
fi

# --- Node test peer (ws) -----------------------------------------------------
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "node/npm missing: installing from apt"
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
# npm ci from the committed lock file; skip when it has not changed.
lock_sum=$(sha256sum tests/peers/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/peers/node_modules/.unisock-lock 2>/dev/null || true)" = "$lock_sum" ]; then
    log "npm packages (tests/peers): present"
else
    log "npm packages (tests/peers): npm ci"
    (cd tests/peers && npm ci --no-audit --no-fund)
    echo "$lock_sum" > tests/peers/node_modules/.unisock-lock
fi
log "node $(node --version), ws $(node -p "require('$ROOT/tests/peers/node_modules/ws/package.json').version")"

# --- Node build and test tools (tools/node) ----------------------------------
# binaryen@132 (wasm-opt for wasm-pack: never Debian's binaryen 108, whose output
# fails in the browser), typescript (tsc for the .d.ts check) and playwright-core
# (drives /usr/bin/chromium in the demo end-to-end test; no browser download).
lock_sum=$(sha256sum tools/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat tools/node/node_modules/.unisock-lock 2>/dev/null || true)" = "$lock_sum" ]; then
    log "npm packages (tools/node): present"
else
    log "npm packages (tools/node): npm ci"
    (cd tools/node && npm ci --no-audit --no-fund)
    echo "$lock_sum" > tools/node/node_modules/.unisock-lock
fi
log "$(tools/node/node_modules/.bin/wasm-opt --version)," \
    "typescript $(tools/node/node_modules/.bin/tsc --version | awk '{print $2}')," \
    "playwright-core $(node -p "require('$ROOT/tools/node/node_modules/playwright-core/package.json').version")"

log "done in $((SECONDS - START)) s"
