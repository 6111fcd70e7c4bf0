#!/usr/bin/env bash
# The demo, from a fresh clone: installs what is missing (scripts/install.sh), builds the
# npm package into pkg/ (scripts/build-pkg.sh), builds `unisock serve` and runs it on
# 127.0.0.1 until Ctrl-C. Open the URL it prints (http://127.0.0.1:9001/ by default) in two
# tabs to chat between them.
#
#   bash scripts/demo.sh            # port 9001
#   PORT=8080 bash scripts/demo.sh  # another port (0: any free one)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PORT=${PORT:-9001}

log() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -le 65535 ] || die "PORT must be a port number, got '$PORT'"

log "installing what is missing (scripts/install.sh)"
bash scripts/install.sh

log "building the npm package (scripts/build-pkg.sh)"
bash scripts/build-pkg.sh

log "building unisock serve"
cargo build --release --features server --bin unisock

log "starting unisock serve on 127.0.0.1:$PORT (Ctrl-C to stop)"
# exec: Ctrl-C reaches the server itself, which closes its connections with 1001 and exits.
# It prints one line with the URL of the demo once it listens.
exec target/release/unisock serve --port "$PORT" --bind 127.0.0.1 --root www --pkg pkg
