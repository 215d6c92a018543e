#!/usr/bin/env bash
# Benchmark: flashing one built node image to a file with `pibake flash` (bmap-aware, read-back
# verify) against `dd bs=4M conv=fsync` (everything, holes included) and `bmaptool copy` (bmap-
# aware, checks the source), measured in the same run on the same disk. Aim: pibake ≤ bmaptool's
# time and ≥ 3× faster than dd on an image that is mostly holes.
#
# usage: bench/flash_vs_dd.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
# shellcheck disable=SC2034  # read by lib.sh
data_mib=200; size_mib=2048; runs=5
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh" "$@"
command -v bmaptool >/dev/null || { echo "bmaptool is not installed (apt-get install bmap-tools)" >&2; exit 2; }

# A node image that is mostly holes, as real ones are: $data_mib MiB of data in $size_mib MiB.
bench_setup 1
"$pibake" build --base-image base.img --out out >/dev/null
img=out/node-1.img
cat "$img" >/dev/null  # every contender starts from a warm page cache
sync
echo "image: $(( $(stat -c %s "$img") >> 20 )) MiB apparent, $(( $(du -k "$img" | cut -f1) >> 10 )) MiB data"

# The target is removed before and after each timed run.
timed_flash() { rm -f target.img; settle "$img" "$img.bmap"; timed "$@"; rm -f target.img; }
run_dd() { dd if="$img" of=target.img bs=4M conv=fsync status=none; }
run_bmaptool() { bmaptool copy --bmap "$img.bmap" "$img" target.img; }
run_pibake() { "$pibake" flash "$img" target.img; }
ds=(); bs=(); ps=()
for run in $(seq 1 "$runs"); do
  # Rotate the order, so no contender always inherits another's writeback.
  case $((run % 3)) in
    1) d=$(timed_flash run_dd); b=$(timed_flash run_bmaptool); p=$(timed_flash run_pibake) ;;
    2) b=$(timed_flash run_bmaptool); p=$(timed_flash run_pibake); d=$(timed_flash run_dd) ;;
    0) p=$(timed_flash run_pibake); d=$(timed_flash run_dd); b=$(timed_flash run_bmaptool) ;;
  esac
  ds+=("$d"); bs+=("$b"); ps+=("$p")
  printf 'run %d: dd bs=4M %.2f s, bmaptool copy %.2f s, pibake flash %.2f s\n' "$run" "$d" "$b" "$p"
done
md=$(median "${ds[@]}"); mb=$(median "${bs[@]}"); mp=$(median "${ps[@]}")
printf 'median of %d runs: dd %.2f s, bmaptool %.2f s, pibake flash %.2f s (pibake verifies by reading back)\n' \
  "$runs" "$md" "$mb" "$mp"
printf 'dd/pibake = %.2fx (aim >= 3x), bmaptool/pibake = %.2fx (aim >= 1x)\n' \
  "$(ratio "$md" "$mp")" "$(ratio "$mb" "$mp")"
