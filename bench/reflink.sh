#!/usr/bin/env bash
# Benchmark (issue 18 item 3): on a filesystem with reflinks, `pibake build --nodes 4` against a
# single-node build (`--node node-1` of the same spec), alternating, measured in the same run. The
# images share every unchanged extent with the base (FICLONE), so four nodes should cost about
# what one does. Prints both times, the ratio with its spread, and the disk space the four images
# take beyond the base (df before and after, after a sync). Needs root (it makes an XFS
# filesystem in a file and loop-mounts it) and mkfs.xfs (xfsprogs).
#
# usage: bench/reflink.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
# shellcheck disable=SC2034  # read by lib.sh
data_mib=700; size_mib=1200; runs=5
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh" "$@"
[ "$(id -u)" = 0 ] || { echo "needs root: it loop-mounts an XFS filesystem made in a file" >&2; exit 2; }
command -v mkfs.xfs >/dev/null || { echo "mkfs.xfs is not installed (apt-get install xfsprogs)" >&2; exit 2; }

truncate -s 16G xfs.img
mkfs.xfs -q -m reflink=1 xfs.img
mkdir xfs
mount -o loop xfs.img xfs
trap 'cd /; umount "$work/xfs" 2>/dev/null; rm -rf "$work"' EXIT
cd xfs
bench_setup 4
"$pibake" build --base-image base.img --out warm >/dev/null 2>&1  # fills the cache, the state dir and the base's block map
rm -rf warm
echo "base image: $(( $(stat -c %s base.img) >> 20 )) MiB apparent, $(( $(du -k base.img | cut -f1) >> 10 )) MiB data, on XFS with reflink=1"

used_kib() { sync; df -k --output=used . | tail -1; }
run_four() { pibake_rss build --base-image base.img --out out; }
run_one() { pibake_rss build --base-image base.img --out out --node node-1; }
time_of() { rm -rf out; settle base.img; timed "$1"; }
fours=(); ones=(); rs=()
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then f=$(time_of run_four); o=$(time_of run_one); else o=$(time_of run_one); f=$(time_of run_four); fi
  fours+=("$f"); ones+=("$o"); rs+=("$(ratio "$f" "$o")")
  printf 'run %d: --nodes 4 %.2f s, one node %.2f s, ratio %.2fx\n' "$run" "$f" "$o" "$(ratio "$f" "$o")"
done
rm -rf out
before=$(used_kib)
run_four >/dev/null 2>&1
after=$(used_kib)
printf 'median of %d runs: --nodes 4 %.2f s, one node %.2f s, ratio %.2fx (runs %s; aim: about 1x)\n' "$runs" \
  "$(median "${fours[@]}")" "$(median "${ones[@]}")" "$(median "${rs[@]}")" "$(spread "${rs[@]}")"
printf 'disk space of the 4 images beyond the base: %d MiB (their apparent size: %d MiB each)\n' \
  $(( (after - before) / 1024 )) $(( $(stat -c %s out/node-1.img) >> 20 ))
print_peak_rss
