#!/usr/bin/env bash
# The webhook door under the attacks of issue 19, on loopback, bounded in connections and
# time: 150 slow unsigned 26 MB uploads (memory), then 500 connections that never finish
# their headers under an open-files soft limit of 256 (files, /healthz, SIGTERM). Prints the
# server's peak RSS and RSS afterwards, the worst /healthz latency and the latency of real
# signed deliveries posted during the attack. benches/door_attack.rs says what each figure is.
#
#   bench/door-attack.sh [name=value ...]
#       uploads=150 rate=1000000 seconds=30     the slow uploads (per connection: bytes/s)
#       slow=500 nofile=256 header_seconds=25    the stalled headers
#       bin=PATH                                 measure another build (e.g. an older one)
#
# Builds the release binary and the bench (cargo bench); needs ../shared/fixtures.
# Peak memory of the server can reach several GB with a build that has no body budget.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench door_attack -- "$@"
