#!/usr/bin/env bash
# The webhook door side by side with Probot 13 (issue 17 §1): the same wrk command against
# `serve` (embedded SQLite store, processor running) and against a trivial Probot app that
# handles issues.labeled, run alternately (product, Probot, product, Probot, product) at each
# connection count, so that both see the same machine. Each request is the real 14 KB
# issues.labeled payload, signed, with a fresh X-GitHub-Delivery.
#
# After each product run the server is stopped and its database opened: every 2xx answer
# must be a stored delivery (rows >= 2xx; a few more rows are deliveries stored whose client
# was gone when wrk stopped). Probot stores nothing.
#
#   bench/door-side-by-side.sh [name=value ...]
#       connections="32 64"  duration=10s  threads=2  rounds=3   (rounds: product runs)
#       bin=PATH          the product's binary (default: release build of this tree)
#       before=PATH       another build measured in the same rotation (e.g. main's)
#       probot=run        `probot run ./app.js` (express, Probot's documented server), or
#                         probot=middleware (createNodeMiddleware on a bare node:http server)
#       profile=DIR       afterwards, one more product run under `perf record --call-graph
#                         dwarf`; its reports go to DIR, categories.txt summed by part of
#                         the door and the store (bench/perf-categories.py); not counted
#       log=LEVEL         RUST_LOG of the product and LOG_LEVEL of Probot (default: both
#                         unset, i.e. their defaults: info)
#
# Needs wrk, curl, openssl, python3, node and npm (Probot is installed with npm into
# target/probot13 on first use), and ../shared/fixtures next to the repository.
set -euo pipefail

connections="32 64"
duration=10s
threads=2
rounds=3
bin=""
before=""
probot=run
profile=""
log=""
for arg in "$@"; do
  case $arg in
    connections=*|duration=*|threads=*|rounds=*|bin=*|before=*|probot=*|profile=*|log=*)
      declare "${arg%%=*}=${arg#*=}" ;;
    *) echo "unknown argument: $arg (see the head of $0)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
payload="$here/../shared/fixtures/github-webhooks/issues/labeled.with-organization.payload.json"
secret="bench-secret"
port=${BENCH_PORT:-3917}
target=${CARGO_TARGET_DIR:-$here/target}
scratch="$target/probot13"

for tool in wrk curl openssl python3 node npm; do
  command -v $tool >/dev/null || { echo "$tool is needed (wrk: apt-get install wrk)" >&2; exit 1; }
done
[ -f "$payload" ] || { echo "payload not found: $payload" >&2; exit 1; }

if [ -z "$bin" ]; then
  nice -n 10 cargo build --release --quiet --manifest-path "$here/Cargo.toml"
  bin="$target/release/codegen-orchestrator"
fi
products=()
[ -n "$before" ] && products+=("before=$before")
products+=("product=$bin")

# Probot 13 and the app, in a scratch folder outside the repository's tracked files.
mkdir -p "$scratch"
cp "$here/bench/probot/package.json" "$here/bench/probot/app.js" "$here/bench/probot/middleware.js" "$scratch/"
if [ ! -x "$scratch/node_modules/.bin/probot" ]; then
  (cd "$scratch" && npm install --no-audit --no-fund --loglevel=error)
fi
[ -f "$scratch/key.pem" ] || openssl genrsa -out "$scratch/key.pem" 2048 2>/dev/null
probot_version=$(node -p "require('$scratch/node_modules/probot/package.json').version")

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

signature="sha256=$(openssl dgst -sha256 -hmac "$secret" -r < "$payload" | cut -d' ' -f1)"
results="$work/results.tsv"
: > "$results"

load() { cut -d' ' -f1-3 /proc/loadavg; }

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# Microseconds of the server's CPU per request answered 2xx, from the ticks before and after.
cpu_per_request() {
  awk -v before="$1" -v after="$2" -v ok="$3" -v hz="$ticks_per_second" \
    'BEGIN { if (ok > 0) printf "%.0f", (after - before) / hz * 1e6 / ok; else print "-" }'
}

# Runs wrk against the server on $port; prints "req/s p50 p99 2xx requests".
run_wrk() {
  local conns=$1 out=$2
  PAYLOAD=$payload SIGNATURE=$signature WEBHOOK_PATH=/webhook \
    wrk -t"$threads" -c"$conns" -d"$duration" --latency -s "$here/bench/webhook.lua" \
    "http://127.0.0.1:$port" > "$out"
  awk '/^throughput:/ {rps=$2} /^latency p50:/ {p50=$3} /^latency p99:/ {p99=$3}
       /^answered 2xx:/ {ok=$3} /^requests:/ {sub(",", "", $2); n=$2}
       END {print rps, p50, p99, ok, n}' "$out"
}

wait_until_up() {
  local url=$1
  for _ in $(seq 100); do
    curl -s -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not come up at $url" >&2
  exit 1
}

# One run of a product binary on a fresh store; checks the store against the 2xx answers.
run_product() {
  local name=$1 binary=$2 conns=$3 perf_dir=${4:-}
  local dir="$work/$name-$conns-$RANDOM"
  mkdir -p "$dir"
  (
    cd "$dir"
    if [ -n "$log" ]; then export RUST_LOG=$log; fi
    exec env GITHUB_WEBHOOK_SECRET=$secret PORT=$port "$binary" serve > serve.log 2>&1
  ) &
  server=$!
  wait_until_up "http://127.0.0.1:$port/healthz"
  local machine_load perf="" cpu_before
  machine_load=$(load)
  cpu_before=$(cpu_ticks "$server")
  if [ -n "$perf_dir" ]; then
    perf record -q --call-graph dwarf,16384 -F 499 -p "$server" -o "$perf_dir/perf.data" \
      -- sleep "${duration%s}" 2>/dev/null &
    perf=$!
  fi
  local figures
  figures=$(run_wrk "$conns" "$dir/wrk.out")
  if [ -n "$perf" ]; then wait "$perf" || true; fi
  # The processor's catching up after the load counts too.
  sleep 1
  local cpu_after
  cpu_after=$(cpu_ticks "$server")
  kill -TERM "$server"
  wait "$server" || true
  server=""
  local stored
  stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from deliveries').fetchone()[0])" "$dir/data/orchestrator.db")
  read -r rps p50 p99 ok requests <<< "$figures"
  local cpu
  cpu=$(cpu_per_request "$cpu_before" "$cpu_after" "$ok")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$conns" "$rps" "$p50" "$p99" "$cpu" "$ok" "$stored" "$machine_load" >> "$results"
  printf '%-8s c=%-3s %7s req/s  p50 %6s ms  p99 %7s ms  cpu %4s us/req  2xx %7s  stored %7s  load %s\n' \
    "$name" "$conns" "$rps" "$p50" "$p99" "$cpu" "$ok" "$stored" "$machine_load"
  if [ "$stored" -lt "$ok" ]; then
    echo "MISMATCH: $name answered $ok requests 2xx but stored $stored deliveries" >&2
    exit 1
  fi
  if [ "$ok" -ne "$requests" ]; then
    echo "note: $name answered $((requests - ok)) of $requests requests other than 2xx" >&2
  fi
}

run_probot() {
  local conns=$1
  local dir="$work/probot-$conns-$RANDOM"
  mkdir -p "$dir"
  (
    cd "$scratch"
    if [ -n "$log" ]; then export LOG_LEVEL=$log; fi
    export APP_ID=1 PRIVATE_KEY_PATH="$scratch/key.pem" WEBHOOK_SECRET=$secret PORT=$port \
      HOST=127.0.0.1 WEBHOOK_PATH=/webhook NODE_ENV=production
    if [ "$probot" = middleware ]; then
      exec node middleware.js > "$dir/probot.log" 2>&1
    else
      # What `probot run ./app.js` starts (as a child process of its own).
      exec node node_modules/probot/bin/probot-run.js ./app.js > "$dir/probot.log" 2>&1
    fi
  ) &
  server=$!
  wait_until_up "http://127.0.0.1:$port/"
  local machine_load figures cpu_before cpu_after
  machine_load=$(load)
  cpu_before=$(cpu_ticks "$server")
  figures=$(run_wrk "$conns" "$dir/wrk.out")
  cpu_after=$(cpu_ticks "$server")
  kill -TERM "$server"
  wait "$server" || true
  server=""
  read -r rps p50 p99 ok requests <<< "$figures"
  local cpu
  cpu=$(cpu_per_request "$cpu_before" "$cpu_after" "$ok")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' probot "$conns" "$rps" "$p50" "$p99" "$cpu" "$ok" - "$machine_load" >> "$results"
  printf '%-8s c=%-3s %7s req/s  p50 %6s ms  p99 %7s ms  cpu %4s us/req  2xx %7s  stored %7s  load %s\n' \
    probot "$conns" "$rps" "$p50" "$p99" "$cpu" "$ok" - "$machine_load"
  if [ "$ok" -ne "$requests" ]; then
    echo "note: Probot answered $((requests - ok)) of $requests requests other than 2xx" >&2
  fi
}

echo "payload: $(wc -c < "$payload") bytes; wrk -t$threads -c{$connections} -d$duration; Probot $probot_version ($probot)"
for product in "${products[@]}"; do echo "${product%%=*}: ${product#*=}"; done
echo "cores: $(nproc); load average at start: $(load)"
for conns in $connections; do
  for round in $(seq "$rounds"); do
    for product in "${products[@]}"; do
      run_product "${product%%=*}" "${product#*=}" "$conns"
    done
    if [ "$round" -lt "$rounds" ]; then run_probot "$conns"; fi
  done
done

echo
echo "medians (req/s, p50, p99, server CPU per 2xx) and the ratio of median throughputs to Probot's:"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
names = list(dict.fromkeys(r[0] for r in rows))
for conns in dict.fromkeys(r[1] for r in rows):
    med = {}
    for name in names:
        runs = [r for r in rows if r[0] == name and r[1] == conns]
        if runs:
            med[name] = [statistics.median(float(r[i]) for r in runs if r[i] != "-") for i in (2, 3, 4, 5)]
    for name, (rps, p50, p99, cpu) in med.items():
        ratio = f"{rps / med['probot'][0]:.1f}x Probot" if name != "probot" and "probot" in med else ""
        print(f"c={conns:<3} {name:<8} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  cpu {cpu:4.0f} us/req  {ratio}")
EOF

if [ -n "$profile" ]; then
  mkdir -p "$profile"
  conns=${connections##* }
  echo
  echo "profile: one more run of ${products[-1]%%=*} at c=$conns under perf (not counted above)"
  run_product "${products[-1]%%=*}" "${products[-1]#*=}" "$conns" "$profile"
  perf report -i "$profile/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
    | grep -v '^$' | head -80 > "$profile/self.txt" || true
  perf report -i "$profile/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep -v '^$' | head -80 > "$profile/children.txt" || true
  perf script -i "$profile/perf.data" -F comm,tid,ip,sym --no-inline 2>/dev/null \
    > "$profile/script.txt" || true
  python3 "$here/bench/perf-categories.py" "$profile/script.txt" > "$profile/categories.txt" || true
  cat "$profile/categories.txt"
  echo "perf.data, self.txt (self time), children.txt (inclusive) and categories.txt in $profile"
fi
