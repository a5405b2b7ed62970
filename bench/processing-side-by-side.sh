#!/usr/bin/env bash
# Processing throughput of two builds side by side, run alternately (before, then after),
# three times with the store on the disk and three times on tmpfs.
#
#   git worktree add ../bench-before <rev>; git worktree add ../bench-after <rev>
#   (cd ../bench-X && CARGO_TARGET_DIR=$PWD/target cargo bench --bench processing --no-run)
#   bench/processing-side-by-side.sh ../bench-before ../bench-after
#
# Each worktree needs benches/processing.rs and its Cargo.toml entry, and ../shared beside it.
set -euo pipefail
before=$(realpath "${1:?the before worktree}")
after=$(realpath "${2:?the after worktree}")
runs=${RUNS:-3}
disk_tmp=$(mktemp -d "${DISK_TMPDIR:-$HOME}/bench-store.XXXXXX")
trap 'rm -rf "$disk_tmp"' EXIT

binary() {
  ls -t "$1"/target/release/deps/processing-* | grep -v '\.d$' | head -1
}

for where in disk tmpfs; do
  if [ "$where" = tmpfs ]; then store=/dev/shm; else store=$disk_tmp; fi
  for run in $(seq "$runs"); do
    for side in before after; do
      dir=${!side}
      echo "== $side $where run $run"
      (cd "$dir" && TMPDIR=$store "$(binary "$dir")" --bench 2>&1 | grep -E 'deliveries/s')
    done
  done
done
