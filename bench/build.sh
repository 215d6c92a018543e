#!/usr/bin/env bash
# Benchmark (issue 18 items 1, 2 and 6): `pibake build --nodes 4` against its floors, measured in
# the same run on the same disk, the contenders' order rotated every run:
#   cp    4 × `cp --sparse=always` of the base (the floor of a filesystem without reflinks)
#   loop  the root way, as root only: copy the base, loop-mount its root partition, copy the same
#         binaries in, unmount (4 nodes)
#   inplace `pibake build --node node-3` over the out/ of a 4-node build (made untimed before
#         it): the node's previous image is edited in place
#   regen `pibake build --node node-3` into an empty out/: no previous image, the base is copied
#   cp1   one `cp --sparse=always` (regen's floor: what regen costs beyond it is fixed cost)
# then `--nodes 16` against 16 × cp, once each, to show the time grows with the bytes written as
# the floor's does. Every contender ends with a sync. Prints each run, the medians, every ratio
# with its spread (min-max over the runs) and pibake's peak RSS. Aims: pibake/cp <= 1.05,
# pibake/loop <= 1.0, inplace/pibake <= 0.3, regen - cp1 < 0.3 s.
#
# usage: bench/build.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N]
# shellcheck disable=SC2034  # read by lib.sh
data_mib=700; size_mib=1200; runs=5
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh" "$@"

bench_setup 4
"$pibake" build --base-image base.img --out warm >"$work/warm.out" 2>&1  # fills the cache and the state dir
# A root filesystem that must grow for these artifacts (--image-mib, --binary-mib) is never edited
# in place (docs/speed.md, "Regenerating in place"): the in-place contender is then left out.
inplace=1; if grep -q 'root filesystem grown' "$work/warm.out"; then inplace=0; fi
b4=$(du -k --total warm/*.img | tail -1 | cut -f1)            # KiB a 4-node build writes
rm -rf warm
echo "base image: $(( $(stat -c %s base.img) >> 20 )) MiB apparent, $(( $(du -k base.img | cut -f1) >> 10 )) MiB data"

loop=0
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && losetup -f >/dev/null 2>&1; then loop=1; fi
# The binaries pibake installs, unpacked once, for the root way to copy in.
mkdir -p payload
while IFS= read -r -d '' f; do
  case "$f" in
    */etcd-v*-linux-amd64.tar.gz) ;;  # in etcd's SHA256SUMS, never installed (a stand-in, not a tarball)
    *.tar.gz|*.tgz) tar -xzf "$f" -C payload ;;
    *.sha256|*.sha512|*SUMS*) ;;
    *) cp "$f" payload/ ;;
  esac
done < <(find upstream -type f -print0)
root_off=$(sfdisk -J base.img | python3 -c 'import json,sys; t=json.load(sys.stdin)["partitiontable"]; print(t["partitions"][1]["start"]*t.get("sectorsize",512))')

run_cp() { mkdir cp; for k in 1 2 3 4; do cp --sparse=always base.img cp/node-"$k".img; done; }
run_cp1() { mkdir cp; cp --sparse=always base.img cp/node-3.img; }
run_cp16() { mkdir cp; for k in $(seq 1 16); do cp --sparse=always base.img cp/node-"$k".img; done; }
run_pibake() { pibake_rss build --base-image base.img --out out; }
run_regen() { pibake_rss build --base-image base.img --out out --node node-3; }
# Regenerating node-3 over the 4-node build's out/ (the usual case): pibake edits the previous
# image in place (docs/speed.md); a run that copied the base instead fails the benchmark.
run_inplace() {
  pibake_rss build --base-image base.img --out out --node node-3 >"$work/inplace.out"
  grep -q 'regenerated in place' "$work/inplace.out" || { echo "node-3 was not regenerated in place" >&2; return 1; }
}
run_loop() {
  mkdir -p loop mnt
  for k in 1 2 3 4; do
    cp --sparse=always base.img loop/node-$k.img
    mount -o loop,offset="$root_off" loop/node-$k.img mnt
    mkdir -p mnt/opt/bench && cp -r payload/. mnt/opt/bench/
    umount mnt
  done
}
clean() { rm -rf cp out loop; }
time_of() {
  clean
  # the in-place regenerate starts from the 4-node build whose node it regenerates (not timed);
  # the previous image is its input, kept warm as the base is for every contender
  if [ "$1" = run_inplace ]; then
    "$pibake" build --base-image base.img --out out >/dev/null 2>&1
    settle base.img out/node-3.img
  else
    settle base.img
  fi
  timed "$1"
}

cps=(); pbs=(); lps=(); rgs=(); r_cp=(); r_lp=(); r_rg=(); r_ip=(); fixed=()
for run in $(seq 1 "$runs"); do
  names=(cp pibake regen cp1); [ "$inplace" = 1 ] && names+=(inplace); [ "$loop" = 1 ] && names+=(loop)
  # Rotate who goes first, so no contender always inherits another's writeback.
  n=${#names[@]}; order=()
  for i in $(seq 0 $((n - 1))); do order+=("${names[$(((i + run) % n))]}"); done
  declare -A t=()
  for c in "${order[@]}"; do t[$c]=$(time_of "run_$c"); done
  cps+=("${t[cp]}"); pbs+=("${t[pibake]}"); rgs+=("${t[regen]}")
  r_cp+=("$(ratio "${t[pibake]}" "${t[cp]}")"); r_rg+=("$(ratio "${t[regen]}" "${t[pibake]}")")
  [ "$inplace" = 0 ] || r_ip+=("$(ratio "${t[inplace]}" "${t[pibake]}")")
  fixed+=("$(awk -v a="${t[regen]}" -v b="${t[cp1]}" 'BEGIN {print a - b}')")
  line=$(printf 'run %d: 4 x cp %.2f s, pibake --nodes 4 %.2f s, --node node-3 into an empty out/ %.2f s, 1 x cp %.2f s' \
    "$run" "${t[cp]}" "${t[pibake]}" "${t[regen]}" "${t[cp1]}")
  [ "$inplace" = 0 ] || line+=$(printf ', --node node-3 in place %.2f s' "${t[inplace]}")
  if [ "$loop" = 1 ]; then
    lps+=("${t[loop]}"); r_lp+=("$(ratio "${t[pibake]}" "${t[loop]}")")
    line+=$(printf ', loop-mount way %.2f s' "${t[loop]}")
  fi
  echo "$line"
  unset t
done
clean
mp=$(median "${pbs[@]}")
printf 'median of %d runs: cp %.2f s, pibake %.2f s, regen %.2f s\n' "$runs" "$(median "${cps[@]}")" "$mp" "$(median "${rgs[@]}")"
printf 'pibake --nodes 4 / 4 x cp:        %.2fx (runs %s; aim <= 1.05x)\n' "$(median "${r_cp[@]}")" "$(spread "${r_cp[@]}")"
if [ "$loop" = 1 ]; then
  printf 'pibake --nodes 4 / loop-mount way: %.2fx (runs %s; aim <= 1.0x)\n' "$(median "${r_lp[@]}")" "$(spread "${r_lp[@]}")"
else
  echo "pibake --nodes 4 / loop-mount way: not measured (needs root and a free loop device)"
fi
if [ "$inplace" = 1 ]; then
  printf 'regenerate one in place / --nodes 4: %.2fx (runs %s; aim <= 0.3x)\n' "$(median "${r_ip[@]}")" "$(spread "${r_ip[@]}")"
else
  echo "regenerate one in place: not measured (the root filesystem had to grow for these artifacts)"
fi
printf 'regenerate one into an empty out/ / --nodes 4: %.2fx (runs %s)\n' "$(median "${r_rg[@]}")" "$(spread "${r_rg[@]}")"
printf 'regenerate one into an empty out/ - 1 x cp (fixed cost): %.2f s (runs %s; aim < 0.3 s)\n' "$(median "${fixed[@]}")" \
  "$(spread "${fixed[@]}")"

# 16 nodes against 16 x cp (their floor grows with the bytes too, and falls off once the page
# cache's dirty limit is reached), and the bytes written against the 4-node build's.
sed -i 's/count: 4/count: 16/' cluster.yaml
rm -rf out; "$pibake" build --base-image base.img --out out >/dev/null 2>&1; rm -rf out  # state for 16 nodes
t16=$(time_of run_pibake)
b16=$(du -k --total out/*.img | tail -1 | cut -f1)
c16=$(time_of run_cp16)
clean
printf 'pibake --nodes 16: %.2f s, 16 x cp %.2f s: %.2fx (4 nodes: %.2fx), for %.2fx the bytes of 4 nodes\n' "$t16" "$c16" \
  "$(ratio "$t16" "$c16")" "$(median "${r_cp[@]}")" "$(ratio "$b16" "$b4")"
print_peak_rss
