#!/usr/bin/env bash
# Checks template.yaml: `sam validate --lint`, cfn-lint, and the Rust test that holds it to
# the routing table and the state machine definition. With --build, also runs `sam build`
# (a release build of the seven functions for x86_64 through cargo-lambda and zig) and checks
# that every function got its bootstrap binary. Needs the tools of scripts/setup-tools.sh.
# Works offline: no telemetry, no network for cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 [--build]" >&2; exit 2; }
build=false
case "${1:-}" in
  "") ;;
  --build) build=true ;;
  *) usage ;;
esac
[ $# -le 1 ] || usage

venv=.venv/bin
for tool in sam cfn-lint cargo-lambda; do
  if [ ! -x "$venv/$tool" ]; then
    echo "error: $venv/$tool is missing: run scripts/setup-tools.sh first" >&2
    exit 1
  fi
done
# cargo-lambda runs zig from the venv's Python (package ziglang), so the venv goes first.
export PATH="$PWD/$venv:$HOME/.cargo/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# SAM needs a region to load a template, not to reach it.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

step() { echo "==> $*"; }

step "sam validate --lint"
sam validate --lint --template-file template.yaml

step "cfn-lint template.yaml"
cfn-lint template.yaml
echo "cfn-lint: no errors or warnings"

step "cargo test -p ewf-domain --test template (rules = RULES, substitutions = definition)"
cargo test --quiet -p ewf-domain --test template

if ! $build; then
  echo "template checks passed (run with --build to build the functions too)"
  exit 0
fi

functions=(CustomerFunction OrderFunction InventoryFunction PaymentFunction DeliveryFunction
  EventStoreFunction AddFunction)

step "sam build (release, x86_64; slow)"
rm -rf .aws-sam/build
# rust-cargolambda is a SAM beta feature; the binaries must match the architecture built for.
CARGO_NET_OFFLINE=true nice -n 19 sam build --beta-features \
  --template-file template.yaml \
  --parameter-overrides Architecture=x86_64

step "bootstrap binaries"
for function in "${functions[@]}"; do
  binary=".aws-sam/build/$function/bootstrap"
  if [ ! -x "$binary" ]; then
    echo "error: $binary is missing or not executable" >&2
    exit 1
  fi
  # ELF e_machine (bytes 18-19, little-endian): 0x3e is x86-64.
  machine=$(od -An -tx1 -j18 -N2 "$binary" | tr -d ' \n')
  if [ "$machine" != "3e00" ]; then
    echo "error: $binary is not an x86-64 executable (e_machine $machine)" >&2
    exit 1
  fi
  echo "$binary ($(du -h "$binary" | cut -f1), x86-64)"
done
echo "template checks and build passed"
