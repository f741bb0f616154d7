#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, the unit and end-to-end tests
# (local stack), the adapter and CLI tests against moto's server, the template checks
# (sam validate --lint, cfn-lint, sam build) and the local demo.
# Needs: Rust with cargo, Python 3.11+; installs the rest into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "tools (.venv: moto, cfn-lint, sam, cargo-lambda)"
scripts/setup-tools.sh

step "moto server on 127.0.0.1"
moto_log=$(mktemp)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
.venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; rm -f "$moto_log"' EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then cat "$moto_log"; echo "moto server did not start" >&2; exit 1; fi
  sleep 0.2
done
export EWF_MOTO_ENDPOINT="http://127.0.0.1:$port"
echo "moto server: $EWF_MOTO_ENDPOINT (pid $moto_pid)"

step "cargo fmt --check"
cargo fmt --all -- --check

# ewf with its AWS target (`--features ewf/aws`), as deployments use it; and as the
# README's demo command builds it, without the AWS SDK.
step "cargo clippy -D warnings (ewf with and without the aws feature)"
cargo clippy --workspace --all-targets --features ewf/aws --locked -- -D warnings
cargo clippy -p ewf --all-targets --locked -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --features ewf/aws --locked --no-fail-fast
  step "tests of ewf without the aws feature (the demo build)"
  cargo nextest run -p ewf --locked --no-fail-fast --test targets
else
  cargo test --workspace --features ewf/aws --locked --no-fail-fast
  step "tests of ewf without the aws feature (the demo build)"
  cargo test -p ewf --locked --no-fail-fast --test targets
fi

step "template: sam validate --lint, cfn-lint, sam build"
scripts/check-template.sh --build

step "ewf demo on the local stack"
target/debug/ewf demo --rng-seed 42

step "diagrams: ewf compare's and ewf events' Mermaid rendered by Mermaid"
scripts/check-diagrams.sh
