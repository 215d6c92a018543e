#!/usr/bin/env bash
# Benchmark: `pibake build --nodes 4` against its floor, 4 × `cp --sparse=always` of the same base
# image, measured in the same run on the same disk. Prints both times and the ratio (aim ≤ 1.3×).
#
# usage: bench/build_vs_cp.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
data_mib=700; size_mib=1200; runs=5
source "$(dirname "$0")/lib.sh" "$@"

bench_setup 4
"$pibake" build --base-image base.img --out warm >/dev/null  # fills the cache and the state dir
rm -rf warm
echo "base image: $(( $(stat -c %s base.img) >> 20 )) MiB apparent, $(( $(du -k base.img | cut -f1) >> 10 )) MiB data"

run_cp() { mkdir cp; for k in 1 2 3 4; do cp --sparse=always base.img cp/node-$k.img; done; }
run_pibake() { "$pibake" build --base-image base.img --out out; }
# Each contender starts with no output of the other on disk or in the page cache.
time_cp() { rm -rf cp out; settle base.img; timed run_cp; }
time_pibake() { rm -rf cp out; settle base.img; timed run_pibake; }
cps=(); pbs=()
for run in $(seq 1 "$runs"); do
  # Alternate who goes first, so neither always inherits the other's writeback.
  if [ $((run % 2)) = 1 ]; then c=$(time_cp); p=$(time_pibake); else p=$(time_pibake); c=$(time_cp); fi
  cps+=("$c"); pbs+=("$p")
  printf 'run %d: 4 x cp --sparse=always %.2f s, pibake build --nodes 4 %.2f s, ratio %.2fx\n' "$run" "$c" "$p" "$(ratio "$p" "$c")"
done
rm -rf cp out
mc=$(median "${cps[@]}"); mp=$(median "${pbs[@]}")
printf 'median of %d runs: cp %.2f s, pibake %.2f s, ratio pibake/cp = %.2fx (aim <= 1.3x)\n' "$runs" "$mc" "$mp" "$(ratio "$mp" "$mc")"
