#!/usr/bin/env bash
# Renders the diagrams ewf draws with Mermaid itself: every diagram of an `ewf compare
# --output markdown` report (one order of each scenario, both modes) and `ewf events
# --output mermaid` of an order of each mode. Mermaid and jsdom are installed once into
# ${EWF_TOOLS_CACHE:-~/.cache/ewf-tools}/mermaid (npm registry; Node 18+). No browser is
# needed: Mermaid parses and lays out in jsdom. The Rust tests check the same diagrams'
# structure (crates/cli/src/diagram.rs); this is the render.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${EWF_TOOLS_CACHE:-$HOME/.cache/ewf-tools}/mermaid"
if ! command -v node >/dev/null; then
  echo "check-diagrams: node is required (Node 18 or later)" >&2
  exit 4
fi
if [ ! -d "$tools/node_modules/mermaid" ] || [ ! -d "$tools/node_modules/jsdom" ]; then
  mkdir -p "$tools"
  (cd "$tools" && [ -f package.json ] || npm init -y >/dev/null)
  (cd "$tools" && npm install --no-audit --no-fund mermaid@11 jsdom@24 >/dev/null)
fi
cp scripts/render-mermaid.mjs "$tools/"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build -q -p ewf
ewf="${CARGO_TARGET_DIR:-target}/debug/ewf"
"$ewf" --local --state-dir "$work/compare" compare --orders 1 --output markdown > "$work/compare.md"
state="$work/state"
"$ewf" --local --state-dir "$state" seed >/dev/null
"$ewf" --local --state-dir "$state" set-fail-probability 0 >/dev/null
for mode in workflow events; do
  order=$("$ewf" --local --state-dir "$state" order create --mode "$mode" customer-1 item-1 --output json \
    | sed -n 's/.*"orderId": "\([^"]*\)".*/\1/p')
  "$ewf" --local --state-dir "$state" cancel customer-1 "$order" >/dev/null
  "$ewf" --local --state-dir "$state" events --order "$order" --output mermaid > "$work/$mode.mmd"
done
(cd "$tools" && node render-mermaid.mjs "$work/compare.md" "$work/workflow.mmd" "$work/events.mmd")
