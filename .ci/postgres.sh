#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages when missing, starts a throwaway server as an
# unprivileged user on a local port, and prints the URL of an empty database on stdout.
#
#   export TEST_POSTGRES_URL=$(.ci/postgres.sh)
#
# The server listens on 127.0.0.1:${PGPORT:-54329} only and trusts local connections; its
# data lives in a temporary directory. `.ci/postgres.sh stop` stops it and removes that
# directory (the cluster is throwaway: nothing in it outlives the test run).
set -euo pipefail

port=${PGPORT:-54329}
# The cluster lives in memory (/dev/shm) when there is room: it is throwaway, the tests
# write a few hundred megabytes to it, and a CI machine's disk may be nearly full.
default_data=/tmp/codegen-orchestrator-pg-$port
if [ -d /dev/shm ] && [ -w /dev/shm ] &&
  [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt 2097152 ] 2>/dev/null; then
  default_data=/dev/shm/codegen-orchestrator-pg-$port
fi
data=$(realpath -m "${PGDATA_DIR:-$default_data}")
log() { echo "postgres.sh: $*" >&2; }

# The PostgreSQL tools start by changing into the current directory; as the `postgres`
# user they cannot enter a private one (a clone under /root), and each says so. They run
# from / instead, which every user can enter; every path given to them is absolute.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

if [ "${1:-}" = stop ]; then
  if [ -f "$data/postmaster.pid" ]; then
    as_postgres "$(bin_dir)/pg_ctl" -D "$data" stop -m fast >&2 || true
  fi
  # Only a directory that holds a cluster (initdb wrote PG_VERSION) is removed.
  if [ -f "$data/PG_VERSION" ]; then rm -rf "$data"; fi
  exit 0
fi

if [ -z "$(bin_dir)" ]; then
  log "installing PostgreSQL from Debian's packages"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bin=$(bin_dir)

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

if [ -f "$data/postmaster.pid" ]; then
  as_postgres "$bin/pg_ctl" -D "$data" stop -m fast >&2 || true
fi
rm -rf "$data"
mkdir -p "$data"
[ "$(id -u)" = 0 ] && chown postgres "$data"
as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-instructions >/dev/null
as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200 -c fsync=off" >&2
as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE orchestrator_test" >&2
log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
echo "postgres://postgres@127.0.0.1:$port/orchestrator_test"
