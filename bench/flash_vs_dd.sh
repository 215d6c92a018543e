#!/usr/bin/env bash
# Benchmark: flashing one built node image to a file with `pibake flash` (bmap-aware, read-back
# verify) against `dd bs=4M conv=fsync` (everything, holes included) and `bmaptool copy` (bmap-
# aware, checks the source), measured in the same run on the same disk. Aim: pibake ≤ bmaptool's
# time and ≥ 3× faster than dd on an image that is mostly holes.
#
# usage: bench/flash_vs_dd.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd); [ $# -gt 0 ] && shift
data_mib=200; size_mib=2048; runs=5
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
command -v bmaptool >/dev/null || { echo "bmaptool is not installed (apt-get install bmap-tools)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pibake-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# A node image that is mostly holes, as real ones are: $data_mib MiB of data in $size_mib MiB.
bash "$src/tests/fixtures/make-base-image.sh" base.img --boot-mib 256 --root-mib $((size_mib - 257)) \
  --fill-mib "$data_mib" >/dev/null
bash "$src/tests/fixtures/make-artifacts.sh" "$work/upstream" >/dev/null
cat > cluster.yaml <<YAML
nodes: {count: 1}
mirrors:
  "https://dl.k8s.io": "file://$work/upstream/dl.k8s.io"
  "https://github.com": "file://$work/upstream/github.com"
YAML
SOURCE_DATE_EPOCH=1700000000 XDG_CACHE_HOME=$work/cache "$pibake" build --base-image base.img --out out >/dev/null
img=out/node-1.img
cat "$img" >/dev/null  # every contender starts from a warm page cache
sync
echo "image: $(( $(stat -c %s "$img") >> 20 )) MiB apparent, $(( $(du -k "$img" | cut -f1) >> 10 )) MiB data"

now() { date +%s.%N; }
# Each time includes a final sync, so every contender pays for getting its data to the disk.
timed() {
  rm -f target.img; sync
  local t0; t0=$(now)
  "$@" >/dev/null 2>&1
  sync
  awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
  rm -f target.img; sync
}
run_dd() { dd if="$img" of=target.img bs=4M conv=fsync status=none; }
run_bmaptool() { bmaptool copy --bmap "$img.bmap" "$img" target.img; }
run_pibake() { "$pibake" flash "$img" target.img; }
ds=(); bs=(); ps=()
for run in $(seq 1 "$runs"); do
  # Rotate the order, so no contender always inherits another's writeback.
  case $((run % 3)) in
    1) d=$(timed run_dd); b=$(timed run_bmaptool); p=$(timed run_pibake) ;;
    2) b=$(timed run_bmaptool); p=$(timed run_pibake); d=$(timed run_dd) ;;
    0) p=$(timed run_pibake); d=$(timed run_dd); b=$(timed run_bmaptool) ;;
  esac
  ds+=("$d"); bs+=("$b"); ps+=("$p")
  printf 'run %d: dd bs=4M %.2f s, bmaptool copy %.2f s, pibake flash %.2f s\n' "$run" "$d" "$b" "$p"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
md=$(median "${ds[@]}"); mb=$(median "${bs[@]}"); mp=$(median "${ps[@]}")
printf 'median of %d runs: dd %.2f s, bmaptool %.2f s, pibake flash %.2f s (pibake verifies by reading back)\n' \
  "$runs" "$md" "$mb" "$mp"
printf 'dd/pibake = %.2fx (aim >= 3x), bmaptool/pibake = %.2fx (aim >= 1x)\n' \
  "$(awk -v a="$md" -v b="$mp" 'BEGIN {print a / b}')" "$(awk -v a="$mb" -v b="$mp" 'BEGIN {print a / b}')"
