# shellcheck shell=bash
# Shared by the bench/ scripts: arguments, a scratch dir, a base image with fake upstream
# artifacts (benchmarks never touch the internet), timing with a final sync, medians.
# usage in a script: source "$(dirname "$0")/lib.sh" "$@"   (defaults: data_mib, size_mib, runs set before)
# Options: --data-mib N, --size-mib N (the base), --runs N, --image-mib N (MiB of random data in
# each container image's own layer), --binary-mib N (in each stand-in binary); the last two are
# 0 by default (the test fixtures' few KiB).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$src/build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
build=$(cd "$build" && pwd)
# shellcheck disable=SC2034 # runs is read by the script that sources this file
while [ $# -gt 0 ]; do
  case "$1" in
    --data-mib) data_mib=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --image-mib) export PIBAKE_IMAGE_LAYER_MIB=$2; shift 2 ;;
    --binary-mib) export PIBAKE_ARTIFACT_PAD_MIB=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
pibake=$build/pibake
[ -x "$pibake" ] || { echo "build pibake first (scripts/build.sh)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pibake-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export SOURCE_DATE_EPOCH=1700000000 XDG_CACHE_HOME=$work/cache

# bench_setup NODES: base.img ($data_mib MiB of data in $size_mib MiB) and a cluster.yaml whose
# mirrors point at upstream-shaped stand-in artifacts.
bench_setup() {
  bash "$src/tests/fixtures/make-base-image.sh" base.img --boot-mib 256 --root-mib $((size_mib - 257)) \
    --fill-mib "$data_mib" >/dev/null
  bash "$src/tests/fixtures/make-artifacts.sh" "$work/upstream" >/dev/null
  cat > cluster.yaml <<YAML
nodes: {count: $1}
mirrors:
  "https://dl.k8s.io": "file://$work/upstream/dl.k8s.io"
  "https://github.com": "file://$work/upstream/github.com"
  "https://registry.k8s.io": "file://$work/upstream/registry/registry.k8s.io"
  "https://ghcr.io": "file://$work/upstream/registry/ghcr.io"
YAML
}

now() { date +%s.%N; }
# timed CMD...: seconds CMD takes, including a final sync so every contender pays for its writes.
timed() {
  sync
  local t0; t0=$(now)
  # A contender that fails is not a fast run: the benchmark stops, naming it.
  "$@" >/dev/null 2>"$work/timed.err" || { echo "bench: '$*' failed:" >&2; cat "$work/timed.err" >&2; exit 1; }
  sync
  awk -v a="$t0" -v b="$(now)" 'BEGIN {print b - a}'
}
# settle FILE...: between contenders, an idle disk and the same page cache: pending writes
# flushed, caches dropped when allowed (root), then FILE... read back in (the inputs stay warm).
settle() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 1 > /proc/sys/vm/drop_caches; fi
  local f; for f in "$@"; do cat "$f" >/dev/null; done
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print a / b}'; }

# pibake_rss ARGS...: runs pibake, keeping the largest peak RSS seen so far (KiB, GNU time's %M)
# in $work/rss_max.txt: the timed runs are subshells, so a file rather than a variable.
echo 0 > "$work/rss_max.txt"
[ -x /usr/bin/time ] || { echo "GNU time is not installed (apt-get install time): it measures pibake's peak RSS" >&2; exit 2; }
pibake_rss() {
  /usr/bin/time -f %M -o "$work/rss.txt" "$pibake" "$@"
  local r m; r=$(tail -1 "$work/rss.txt"); m=$(cat "$work/rss_max.txt")
  if [ "$r" -gt "$m" ]; then echo "$r" > "$work/rss_max.txt"; fi
}
print_peak_rss() { printf 'peak RSS of pibake over every run above: %d MiB (aim <= 256 MiB)\n' "$(( $(cat "$work/rss_max.txt") / 1024 ))"; }
# spread VALUE...: "min-max" of the values.
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%.2f-%.2f", a, b}'; }
