#!/usr/bin/env bash
# Start-up time and memory of `serve`: idle (empty store), then with a store of N managed
# issues and their dependencies (written by the bot's own engine: examples/startup_store.rs).
#
#   bench/startup.sh [issues] [runs]
#   bench/startup.sh 100000 3     (default)
#
# For each store, `serve` is started `runs` times (release build, SQLite, token mode with a
# GitHub API that refuses connections, Codegen not configured): the time from the start of
# the process to its "codegen-orchestrator is serving" line (the graph is rebuilt before
# it), then VmRSS and VmHWM from /proc/PID/status 3 s later.
set -euo pipefail
issues=${1:-100000}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
target="${CARGO_TARGET_DIR:-$here/target}"
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bin codegen-orchestrator --example startup_store
bin="$target/release/codegen-orchestrator"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

"$target/release/examples/startup_store" "$scratch/big.db" "$issues"

measure() {  # measure <label> <store.db>
  local label=$1 db=$2
  for run in $(seq 1 "$runs"); do
    local log="$scratch/serve.log"
    local start end pid
    rm -f "$log"
    start=$(date +%s%N)
    # In the scratch folder, so that no config.yaml of the caller's is read.
    (cd "$scratch" && exec env -i PATH="$PATH" HOME="$scratch" PORT=0 LOG_FORMAT=json \
      RUST_LOG=info DATABASE_URL="sqlite://$db" GITHUB_TOKEN=bench-token \
      GITHUB_API_URL=http://127.0.0.1:9 GITHUB_WEBHOOK_SECRET=bench-secret \
      "$bin" serve >"$log" 2>&1) &
    pid=$!
    until grep -qs 'codegen-orchestrator is serving' "$log"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "serve exited early:" >&2
        cat "$log" >&2
        exit 1
      fi
      sleep 0.01
    done
    end=$(date +%s%N)
    sleep 3
    local rss hwm
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || true
    printf '%-22s run %d: serving after %5d ms; VmRSS %6.1f MB, VmHWM %6.1f MB\n' \
      "$label" "$run" $(((end - start) / 1000000)) "$(echo "$rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
  done
}

measure "idle (empty store)" "$scratch/empty.db"
measure "$issues issues" "$scratch/big.db"
