#!/usr/bin/env bash
# Benchmark: `pibake build --nodes 4` against its floor, 4 × `cp --sparse=always` of the same base
# image, measured in the same run on the same disk. Prints both times and the ratio (aim ≤ 1.3×).
#
# usage: bench/build_vs_cp.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}; [ $# -gt 0 ] && shift
data_mib=700; size_mib=1200; runs=3
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
echo "base image: $(( $(stat -c %s base.img) >> 20 )) MiB apparent, $(( $(du -k base.img | cut -f1) >> 10 )) MiB data"

now() { date +%s.%N; }
best_cp=""; best_pb=""
for run in $(seq 1 "$runs"); do
  rm -rf cp out; mkdir cp; sync
  t0=$(now)
  for k in 1 2 3 4; do cp --sparse=always base.img cp/node-$k.img; done
  sync
  t1=$(now)
  rm -rf cp; sync
  t2=$(now)
  SOURCE_DATE_EPOCH=1700000000 "$pibake" build --nodes 4 --base-image base.img --out out >/dev/null
  sync
  t3=$(now)
  cp_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'); pb_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN {print b - a}')
  printf 'run %d: 4 x cp --sparse=always %.2f s, pibake build --nodes 4 %.2f s\n' "$run" "$cp_s" "$pb_s"
  best_cp=$(awk -v a="$cp_s" -v b="${best_cp:-1e9}" 'BEGIN {print (a < b ? a : b)}')
  best_pb=$(awk -v a="$pb_s" -v b="${best_pb:-1e9}" 'BEGIN {print (a < b ? a : b)}')
done
printf 'best of %d: cp %.2f s, pibake %.2f s, ratio pibake/cp = %.2fx (aim <= 1.3x)\n' "$runs" "$best_cp" "$best_pb" \
  "$(awk -v a="$best_pb" -v b="$best_cp" 'BEGIN {print a / b}')"
