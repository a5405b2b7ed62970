#!/usr/bin/env bash
# Load test of the webhook door: a release build of `serve` on the embedded SQLite store,
# wrk posting a real 14 KB issues.labeled payload, signed, with a fresh delivery id each time.
# Afterwards it checks that every accepted request is in the database.
#
#   bench/webhook-load.sh [duration] [connections] [wrk threads]     (default 20s 64 1)
#
# Needs wrk (Debian package `wrk`), curl, openssl and python3 (for counting the rows).
set -euo pipefail
duration=${1:-20s}
connections=${2:-64}
threads=${3:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
payload="$here/../shared/fixtures/github-webhooks/issues/labeled.with-organization.payload.json"
secret="bench-secret"
port=${BENCH_PORT:-3917}

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
bin="$here/target/release/codegen-orchestrator"

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && GITHUB_WEBHOOK_SECRET=$secret PORT=$port RUST_LOG=warn "$bin" serve) &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

signature="sha256=$(openssl dgst -sha256 -hmac "$secret" -r < "$payload" | cut -d' ' -f1)"
echo "payload: $(wc -c < "$payload") bytes; $connections connections, $threads wrk thread(s), $duration"
PAYLOAD=$payload SIGNATURE=$signature \
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$here/bench/webhook.lua" \
  "http://127.0.0.1:$port" | tee "$work/wrk.out"

sleep 1
accepted=$(curl -fs "http://127.0.0.1:$port/metrics" \
  | awk -F' ' '/orchestrator_webhook_deliveries_total\{event="issues",outcome="accepted"\}/ {print $2}')
kill -TERM $server; wait $server || true
stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from deliveries').fetchone()[0])" "$work/data/orchestrator.db")
echo "accepted (202) per /metrics: ${accepted:-0}; rows in the inbox after shutdown: $stored"
[ "$stored" -ge "${accepted:-0}" ] || { echo "MISMATCH: an accepted delivery is missing" >&2; exit 1; }
echo "database size: $(du -sh "$work/data" | cut -f1)"
