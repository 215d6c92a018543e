#!/usr/bin/env bash
# Benchmark (issue 18 item 4): flashing one built node image, measured in the same run on the same
# disk, the contenders' order rotated every run, each ending with a sync:
#   dd        `dd bs=4M conv=fsync` (everything, holes included)
#   bmaptool  `bmaptool copy` (bmap-aware, checks the source's ranges)
#   bmap+rb   `bmaptool copy`, then a read-back of every mapped range, hashed and compared with the
#             bmap (what `pibake flash` does by default)
#   pibake    `pibake flash` (read-back verify)
#   nover     `pibake flash --no-verify`
# first to a file, then, as root, to a loop device whose backing file is written with direct I/O
# (`losetup --direct-io=on`), its page cache dropped before each read-back, so the page cache
# cannot flatter either side. Aims: pibake/bmap+rb <= 1.0, nover/bmaptool <= 1.0.
# Then (item 5) four nodes' images to four targets: `pibake flash out4/ T1 T2 T3 T4` against the
# same four flashes one after another, to files and, as root, to four direct-I/O loop devices.
#
# usage: bench/flash.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
# shellcheck disable=SC2034  # read by lib.sh
data_mib=200; size_mib=2048; runs=5
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh" "$@"
command -v bmaptool >/dev/null || { echo "bmaptool is not installed (apt-get install bmap-tools)" >&2; exit 2; }

# A node image that is mostly holes, as real ones are: $data_mib MiB of data in $size_mib MiB.
bench_setup 1
"$pibake" build --base-image base.img --out out >/dev/null 2>&1
img=out/node-1.img
echo "image: $(( $(stat -c %s "$img") >> 20 )) MiB apparent, $(( $(du -k "$img" | cut -f1) >> 10 )) MiB data," \
  "$(grep -c '<Range' "$img.bmap") ranges in its bmap"

# readback TARGET: reads every range of the image's bmap back from TARGET and compares its sha256.
readback() {
  python3 - "$img.bmap" "$1" <<'PY'
import hashlib, os, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
bs, size = int(root.find("BlockSize").text), int(root.find("ImageSize").text)
fd = os.open(sys.argv[2], os.O_RDONLY)
if os.path.realpath(sys.argv[2]).startswith("/dev/"): os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
for r in root.find("BlockMap"):
    a, _, b = r.text.strip().partition("-")
    start, end = int(a) * bs, min((int(b or a) + 1) * bs, size)
    h = hashlib.sha256()
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(8 << 20, end - pos), pos)
        if not chunk: sys.exit("short read")
        h.update(chunk); pos += len(chunk)
    if h.hexdigest() != r.get("chksum"): sys.exit(f"range {r.text.strip()} differs")
PY
}

target=target.img
force=()
reset_target() { if [ "$target" = target.img ]; then rm -f target.img; fi; }
run_dd() { dd if="$img" of="$target" bs=4M conv=fsync status=none; }
run_bmaptool() { bmaptool copy --bmap "$img.bmap" "$img" "$target"; }
run_bmaprb() { bmaptool copy --bmap "$img.bmap" "$img" "$target" && readback "$target"; }
run_pibake() { pibake_rss flash "${force[@]}" "$img" "$target"; }
run_nover() { pibake_rss flash "${force[@]}" --no-verify "$img" "$target"; }
time_of() { reset_target; settle "$img" "$img.bmap"; timed "$1"; }

# bench LABEL CONTENDER...: the rotated runs and the ratios.
bench() {
  local label=$1; shift
  local names=("$@") n=$# run c i
  declare -A sum=()
  local r_v=() r_n=() r_d=()
  for run in $(seq 1 "$runs"); do
    declare -A t=()
    for i in $(seq 0 $((n - 1))); do c=${names[$(((i + run) % n))]}; t[$c]=$(time_of "run_$c"); done
    local line="$label run $run:"
    for c in "${names[@]}"; do line+=$(printf ' %s %.2f s,' "$c" "${t[$c]}"); sum[$c]+="${t[$c]} "; done
    echo "${line%,}"
    r_v+=("$(ratio "${t[pibake]}" "${t[bmaprb]}")"); r_n+=("$(ratio "${t[nover]}" "${t[bmaptool]}")")
    [ -n "${t[dd]:-}" ] && r_d+=("$(ratio "${t[dd]}" "${t[pibake]}")")
    unset t
  done
  reset_target
  local med=""
  # shellcheck disable=SC2086  # the sums are space-separated lists of seconds
  for c in "${names[@]}"; do med+=$(printf ' %s %.2f s,' "$c" "$(median ${sum[$c]})"); done
  echo "$label median of $runs runs:${med%,}"
  printf '%s pibake flash / bmaptool copy + read-back: %.2fx (runs %s; aim <= 1.0x)\n' "$label" "$(median "${r_v[@]}")" "$(spread "${r_v[@]}")"
  printf '%s pibake flash --no-verify / bmaptool copy: %.2fx (runs %s; aim <= 1.0x)\n' "$label" "$(median "${r_n[@]}")" "$(spread "${r_n[@]}")"
  if [ ${#r_d[@]} -gt 0 ]; then
    printf '%s dd / pibake flash: %.2fx (runs %s)\n' "$label" "$(median "${r_d[@]}")" "$(spread "${r_d[@]}")"
  fi
}

bench file dd bmaptool bmaprb pibake nover

if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
  truncate -s "$(stat -c %s "$img")" backing.img
  if dev=$(losetup --direct-io=on -f --show backing.img 2>/dev/null); then
    trap 'losetup -d "$dev" 2>/dev/null; rm -rf "$work"' EXIT
    target=$dev; force=(--force)  # a loop device is not removable: pibake refuses it without --force
    bench "loop(O_DIRECT)" bmaptool bmaprb pibake nover
  else
    echo "loop device: not measured (no free loop device)"
  fi
else
  echo "loop device: not measured (needs root)"
fi


# Four cards at once against one after another.
"$pibake" build --base-image base.img --nodes 4 --out out4 >/dev/null 2>&1
targets=(t1.img t2.img t3.img t4.img)
run_seq4() { local k; for k in 1 2 3 4; do "$pibake" flash "${force[@]}" "out4/node-$k.img" "${targets[$((k - 1))]}" || return 1; done; }
run_par4() { pibake_rss flash "${force[@]}" out4 "${targets[@]}"; }
reset_targets() { if [ "${targets[0]}" = t1.img ]; then rm -f t?.img; fi; }
time_four() { reset_targets; settle out4/*.img; timed "$1"; }
# four LABEL: the alternating runs and the ratio.
four() {
  local seqs=() pars=() rs=() run s p
  for run in $(seq 1 "$runs"); do
    if [ $((run % 2)) = 1 ]; then s=$(time_four run_seq4); p=$(time_four run_par4); else p=$(time_four run_par4); s=$(time_four run_seq4); fi
    seqs+=("$s"); pars+=("$p"); rs+=("$(ratio "$p" "$s")")
    printf '%s run %d: one after another %.2f s, all at once %.2f s\n' "$1" "$run" "$s" "$p"
  done
  reset_targets
  printf '%s 4 cards at once / one after another: %.2fx (runs %s; medians %.2f s and %.2f s)\n' "$1" \
    "$(median "${rs[@]}")" "$(spread "${rs[@]}")" "$(median "${pars[@]}")" "$(median "${seqs[@]}")"
}
target=target.img; force=()
four file
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
  devs=()
  for k in 1 2 3 4; do
    truncate -s "$(stat -c %s out4/node-1.img)" "back$k.img"
    d=$(losetup --direct-io=on -f --show "back$k.img" 2>/dev/null) || break
    devs+=("$d")
  done
  trap 'for d in "${devs[@]}" ${dev:+"$dev"}; do losetup -d "$d" 2>/dev/null; done; rm -rf "$work"' EXIT
  if [ ${#devs[@]} = 4 ]; then targets=("${devs[@]}"); force=(--force); four "loop(O_DIRECT)"; else echo "4 loop devices: not measured"; fi
fi
print_peak_rss
