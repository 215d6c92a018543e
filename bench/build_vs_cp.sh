#!/usr/bin/env bash
# Benchmark: `pibake build --nodes 4` against its floor, 4 × `cp --sparse=always` of the same base
# image, measured in the same run on the same disk. Prints both times and the ratio (aim ≤ 1.3×).
#
# usage: bench/build_vs_cp.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd); [ $# -gt 0 ] && shift
data_mib=700; size_mib=1200; runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --data-mib) data_mib=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
pibake=$build/pibake
[ -x "$pibake" ] || { echo "build pibake first (scripts/build.sh)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pibake-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# A base image of at least 1 GiB: 256 MiB boot, the rest root, $data_mib MiB of real data.
bash "$src/tests/fixtures/make-base-image.sh" base.img --boot-mib 256 --root-mib $((size_mib - 257)) \
  --fill-mib "$data_mib" >/dev/null
cat base.img >/dev/null  # both contenders start from a warm page cache
sync
echo "base image: $(( $(stat -c %s base.img) >> 20 )) MiB apparent, $(( $(du -k base.img | cut -f1) >> 10 )) MiB data"

now() { date +%s.%N; }
# Each contender's time includes the final sync, so both pay for writing their data to disk.
time_cp() {
  rm -rf cp; mkdir cp; sync
  local t0; t0=$(now)
  for k in 1 2 3 4; do cp --sparse=always base.img cp/node-$k.img; done
  sync
  awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
  rm -rf cp; sync
}
time_pibake() {
  rm -rf out; sync
  local t0; t0=$(now)
  SOURCE_DATE_EPOCH=1700000000 "$pibake" build --nodes 4 --base-image base.img --out out >/dev/null
  sync
  awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
  rm -rf out; sync
}
cps=(); pbs=()
for run in $(seq 1 "$runs"); do
  # Alternate who goes first, so neither always inherits the other's writeback.
  if [ $((run % 2)) = 1 ]; then c=$(time_cp); p=$(time_pibake); else p=$(time_pibake); c=$(time_cp); fi
  cps+=("$c"); pbs+=("$p")
  printf 'run %d: 4 x cp --sparse=always %.2f s, pibake build --nodes 4 %.2f s, ratio %.2fx\n' "$run" "$c" "$p" \
    "$(awk -v a="$p" -v b="$c" 'BEGIN {print a / b}')"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
mc=$(median "${cps[@]}"); mp=$(median "${pbs[@]}")
printf 'median of %d runs: cp %.2f s, pibake %.2f s, ratio pibake/cp = %.2fx (aim <= 1.3x)\n' "$runs" "$mc" "$mp" \
  "$(awk -v a="$mp" -v b="$mc" 'BEGIN {print a / b}')"
