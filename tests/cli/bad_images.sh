#!/usr/bin/env bash
# A corrupt partition table, a root partition that is not ext4, a truncated image, a missing file:
# each gives a clear error naming the problem, and nothing is left in the output directory.
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
echo "ok: every bad image refused with a clear message, no output left"
