#!/usr/bin/env bash
# Makespan / lower bound of the final graph (discovered tasks included) over random graphs
# whose tasks discover more tasks while they run: the ready queue and batch waves side by
# side, on the same graphs.
#
#   bench/simulate-discovery.sh [graphs] [tasks] [agents] [discovery-rate]
#   (default 30 200 10 0.2: seeds 1..=graphs; anything after the first four goes to
#   simulate as is, e.g. --estimates)
set -euo pipefail
graphs=${1:-30}
tasks=${2:-200}
agents=${3:-10}
rate=${4:-0.2}
shift $(( $# < 4 ? $# : 4 ))
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$here/target}/release/codegen-orchestrator"
for dispatch in ready-queue waves; do
  for seed in $(seq 1 "$graphs"); do
    "$bin" simulate --random "$tasks" --seed "$seed" --agents "$agents" --dispatch "$dispatch" \
      --discovery-rate "$rate" --json "$@"
  done | python3 -c '
import json, sys, statistics
decoder = json.JSONDecoder()
text = sys.stdin.read()
ratios, utilisation, found, at = [], [], [], 0
while at < len(text):
    while at < len(text) and text[at].isspace():
        at += 1
    if at >= len(text):
        break
    report, at = decoder.raw_decode(text, at)
    ratios.append(report["ratio"])
    utilisation.append(report["utilisation"])
    found.append(report.get("discovered", 0))
ratios.sort()
print(f"{sys.argv[1]:<12} graphs: {len(ratios)}; ratio median {statistics.median(ratios):.4f}, "
      f"mean {statistics.mean(ratios):.4f}, min {ratios[0]:.4f}, max {ratios[-1]:.4f}; "
      f"utilisation median {statistics.median(utilisation) * 100:.1f} %; "
      f"discovered per graph {min(found)}-{max(found)}")
' "$dispatch"
done
