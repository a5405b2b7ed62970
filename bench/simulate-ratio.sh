#!/usr/bin/env bash
# Makespan / lower bound of the scheduler over random graphs, on the virtual clock.
#
#   bench/simulate-ratio.sh [graphs] [tasks] [agents] [dispatch]
#   bench/simulate-ratio.sh 30 200 10 ready-queue --estimates
#   (default 30 200 10 ready-queue; dispatch `waves` measures batch dispatch for comparison;
#   --estimates tells the scheduler the durations)
set -euo pipefail
graphs=${1:-30}
tasks=${2:-200}
agents=${3:-10}
dispatch=${4:-ready-queue}
shift $(( $# < 4 ? $# : 4 ))  # anything after the first four goes to simulate as is (e.g. --estimates)
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$here/target}/release/codegen-orchestrator"
for seed in $(seq 1 "$graphs"); do
  "$bin" simulate --random "$tasks" --seed "$seed" --agents "$agents" --dispatch "$dispatch" --json "$@"
done | python3 -c '
import json, sys, statistics
decoder = json.JSONDecoder()
text = sys.stdin.read()
ratios, utilisation, at = [], [], 0
while at < len(text):
    while at < len(text) and text[at].isspace():
        at += 1
    if at >= len(text):
        break
    report, at = decoder.raw_decode(text, at)
    ratios.append(report["ratio"])
    utilisation.append(report["utilisation"])
ratios.sort()
print(f"graphs: {len(ratios)}; ratio median {statistics.median(ratios):.4f}, min {ratios[0]:.4f}, "
      f"p90 {ratios[int(len(ratios) * 0.9) - 1]:.4f}, max {ratios[-1]:.4f}; "
      f"utilisation median {statistics.median(utilisation) * 100:.1f} %")
'
