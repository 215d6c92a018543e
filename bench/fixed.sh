#!/usr/bin/env bash
# Benchmark (issue 18 item 2): what a run costs before and beside the node's own bytes, with
# container images and binaries of realistic size (20 MiB of random data in each image's own
# layer, 9 images on the control plane; 20 MiB in each of the 12 stand-in binaries, 4 of them in
# tarballs). `pibake build --node node-3`, regenerating one node of four, measured two ways in the
# same run, alternating:
#   kept  the cache as an earlier build left it: OCI archives, tarball sizes and hashes kept by
#         their files' identity (the records aged 5 s, as a later run finds them)
#   none  those records and archives removed first: every run rebuilds the OCI archives, hashes
#         them and decompresses every tarball to size it (what every run did before this change)
# Prints wall and CPU (user+sys, GNU time) per run, medians, and kept/none with its spread.
#
# usage: bench/fixed.sh [BUILD_DIR] [--data-mib N] [--size-mib N] [--runs N] [--image-mib N] [--binary-mib N]
# shellcheck disable=SC2034  # read by lib.sh
data_mib=100; size_mib=1200; runs=5
export PIBAKE_IMAGE_LAYER_MIB=20 PIBAKE_ARTIFACT_PAD_MIB=20
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh" "$@"

bench_setup 4
"$pibake" build --base-image base.img --out out >/dev/null 2>&1  # fills the cache and the state dir
cache=$XDG_CACHE_HOME/pibake
echo "container images: $(du -sm "$cache/oci" | cut -f1) MiB of archives; binaries: $(du -sm upstream/dl.k8s.io upstream/github.com | awk '{s += $1} END {print s}') MiB"
age() { find "$cache" -type f \( -name '*.verified' -o -path '*/by-identity/*' \) -exec touch -d "@$(($(date +%s) + 5))" {} +; }
prep_kept() { age; }
prep_none() { rm -rf "$cache/by-identity" "$cache/oci"; }
# one KIND: prepares the cache, then times the regeneration; prints "wall cpu".
one() {
  rm -rf out; "prep_$1"; settle base.img
  sync
  /usr/bin/time -f '%e %U %S' -o "$work/t.txt" "$pibake" build --base-image base.img --out out --node node-3 >/dev/null 2>"$work/err.txt" ||
    { cat "$work/err.txt" >&2; exit 1; }
  sync
  awk '{print $1, $2 + $3}' "$work/t.txt"
}
kw=(); kc=(); nw=(); nc=(); rw=(); rc=()
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then k=$(one kept); n=$(one none); else n=$(one none); k=$(one kept); fi
  read -r a b <<< "$k"; read -r c d <<< "$n"
  kw+=("$a"); kc+=("$b"); nw+=("$c"); nc+=("$d"); rw+=("$(ratio "$a" "$c")"); rc+=("$(ratio "$b" "$d")")
  printf 'run %d: kept %.2f s wall %.2f s CPU, none %.2f s wall %.2f s CPU\n' "$run" "$a" "$b" "$c" "$d"
done
printf 'medians: kept %.2f s wall, %.2f s CPU; none %.2f s wall, %.2f s CPU\n' "$(median "${kw[@]}")" \
  "$(median "${kc[@]}")" "$(median "${nw[@]}")" "$(median "${nc[@]}")"
printf 'kept / none: wall %.2fx (runs %s), CPU %.2fx (runs %s)\n' "$(median "${rw[@]}")" "$(spread "${rw[@]}")" \
  "$(median "${rc[@]}")" "$(spread "${rc[@]}")"
