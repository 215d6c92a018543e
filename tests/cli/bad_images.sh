#!/usr/bin/env bash
# A corrupt partition table, a root partition that is not ext4, a truncated image, a missing file, a
# file pibake reads that claims 12 GiB: each gives a clear error naming the problem, and nothing is
# left in the output directory.
source "$(dirname "$0")/lib.bash"

expect_failure() {  # expect_failure "words the error must contain" pibake args...
  local want=$1; shift
  if pibake "$@"; then fail "pibake $* succeeded on a bad image"; fi
  grep -qF -- "$want" err.log || { cat err.log >&2; fail "error for '$*' does not say '$want'"; }
  grep -q '^pibake: error: ' err.log || fail "error not in the 'pibake: error:' form"
  assert_no_images out
}

make_base good.img
fake_upstream

cp good.img notable.img
dd if=/dev/zero of=notable.img bs=512 count=1 conv=notrunc status=none
expect_failure "no partition table found" build --nodes 2 --base-image notable.img --out out

make_base vfatroot.img --root-fs vfat
expect_failure "no ext4 root partition" build --nodes 2 --base-image vfatroot.img --out out

cp good.img truncated.img
truncate -s $(( $(stat -c %s good.img) / 2 )) truncated.img
expect_failure "truncated" build --nodes 2 --base-image truncated.img --out out

cp good.img badfat.img
dd if=/dev/zero of=badfat.img bs=512 seek=$(( $(part_offset good.img 1) / 512 )) count=1 conv=notrunc status=none
expect_failure "no FAT boot partition" build --nodes 2 --base-image badfat.img --out out

expect_failure "missing.img" build --nodes 2 --base-image missing.img --out out

# A clean filesystem (e2fsck -fn passes) whose dpkg status database is a sparse file claiming 12
# GiB: pibake reads that file whole, so it must refuse it from the inode's size, not try to hold
# it (12 GiB of memory and a minute of reading zeros before). Run under a 1 GiB address-space
# limit: taking the memory would fail, and not with this message.
mkdir -p huge-root/var/lib/dpkg && truncate -s 12G huge-root/var/lib/dpkg/status
make_base huge.img --root-dir huge-root
e2fsck -fn "huge.img?offset=$(part_offset huge.img 2)" >/dev/null 2>&1 || fail "e2fsck -fn rejects huge.img: the fixture is not clean"
(
  ulimit -v 1048576
  expect_failure "the root filesystem (p2): while reading /var/lib/dpkg/status in huge.img: it claims 12884901888 bytes, more than the 64 MiB" \
    build --nodes 2 --base-image huge.img --out out
)
# The same root under another label (chosen by position): refused the same way, never taken with
# an empty package database.
cp --sparse=always huge.img relabelled.img
debugfs -w -R "ssv volume_name rootfs" "relabelled.img?offset=$(part_offset relabelled.img 2)" >/dev/null 2>&1
(
  ulimit -v 1048576
  expect_failure "the root filesystem (p2): while reading /var/lib/dpkg/status in relabelled.img: it claims 12884901888 bytes" \
    build --nodes 2 --base-image relabelled.img --out out
)
# --dry-run reads nothing it cannot hold either, and says why the base's layout is unknown.
(ulimit -v 1048576; pibake_ok build --nodes 2 --base-image huge.img --out out --dry-run)
assert_contains out.log "base image not read (huge.img: the root filesystem (p2): while reading /var/lib/dpkg/status"
assert_no_images out
echo "ok: every bad image refused with a clear message, no output left"
