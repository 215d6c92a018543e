#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of tests/fuzz (issue 17) for a bounded time.
#   run.sh BUILD_DIR build            configure and build them with clang (CTest fuzz.build)
#   run.sh BUILD_DIR TARGET SECONDS   run fuzz_TARGET from a seed corpus for SECONDS
# Exit 77 (skip) when clang or its libFuzzer runtime is missing; a crash, leak or sanitizer
# report fails (libFuzzer exits non-zero and leaves crash-* next to the corpus).
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin
mkdir -p "$1"; build=$(cd "$1" && pwd)/fuzz; what=$2; src=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP (fuzz): $*" >&2; exit 77; }

if [ "$what" = build ]; then
  command -v clang++ >/dev/null || skip "clang++ is not installed (scripts/install-deps.sh installs clang)"
  probe=$(mktemp -d); trap 'rm -rf "$probe"' EXIT
  echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' > "$probe/p.cpp"
  clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null || skip "clang has no libFuzzer runtime (libclang-rt-dev)"
  launcher=(); command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
  cmake --build "$build" -j2
  exit 0
fi

seconds=$3
bin=$build/fuzz_$what
[ -x "$bin" ] || skip "$bin was not built (fuzz.build skipped)"
work=$build/run-$what; rm -rf "$work"; mkdir -p "$work/corpus"
corpus=$work/corpus
case "$what" in
  spec)
    printf 'nodes: {count: 3}\nnetwork: {subnet: 10.1.0.0/24, dns: [1.1.1.1]}\n' > "$corpus/a.yaml"
    printf 'cluster: {name: lab}\nnodes:\n  - {name: a, ip: 10.0.0.1, role: control-plane}\n  - {name: b}\n' > "$corpus/b.yaml"
    printf 'network:\n  uplink: {interface: wlan0, wifi: {ssid: home, password: "correct horse", country: GB}}\n' > "$corpus/c.yaml"
    printf 'mirrors: {"https://dl.k8s.io": "file:///srv/m"}\n---\nnodes: {count: 9}\n' > "$corpus/d.yaml"
    ;;
  partitions)
    # Small disks (the input is mutated whole): 64 KiB MBR, 128 KiB GPT.
    truncate -s 64K "$corpus/mbr.img"
    truncate -s 128K "$corpus/gpt.img"
    printf 'start=1, size=40, type=c\nstart=41, type=83\n' | sfdisk -q "$corpus/mbr.img" >/dev/null
    printf 'label: gpt\nfirst-lba: 34\nstart=34, size=40, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=74, size=100, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
      sfdisk -q "$corpus/gpt.img" >/dev/null
    ;;
  fat)
    command -v mkfs.vfat >/dev/null || skip "mkfs.vfat is missing"
    mkfs.vfat -C -n SYSTEM-BOOT "$corpus/fat12.img" 256 >/dev/null
    if command -v mcopy >/dev/null; then
      echo "console=serial0,115200 root=LABEL=writable" > "$work/cmdline.txt"
      mmd -i "$corpus/fat12.img" ::/overlays && mcopy -i "$corpus/fat12.img" "$work/cmdline.txt" ::/cmdline.txt
      mcopy -i "$corpus/fat12.img" "$work/cmdline.txt" "::/a long file name.txt"
    fi
    ;;
  ext4)
    command -v mke2fs >/dev/null || skip "mke2fs is missing"
    mkdir -p "$work/root/etc"; echo node-1 > "$work/root/etc/hostname"
    mke2fs -q -t ext4 -b 1024 -N 32 -d "$work/root" "$corpus/ext4.img" 256k
    ;;
  *) echo "unknown fuzz target $what" >&2; exit 2 ;;
esac
cd "$work"
# -rss_limit_mb: bounded memory is part of what is tested. -timeout: one input may not hang.
# timeout: libFuzzer's own crash, timeout and out-of-memory handlers have been seen to hang here
# (a traced, stopped process); a run that outlives its time by two minutes is a failure.
# Leaks inside the libraries (tests/fuzz/lsan.supp) are not pibake's; any other leak fails.
export LSAN_OPTIONS="suppressions=$src/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
timeout -s KILL $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=$((1 << 20)) -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 "$corpus" 2>&1 | tail -n 40
exit "${PIPESTATUS[0]}"
