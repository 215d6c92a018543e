#!/usr/bin/env bash
# A full disk mid-build: pibake fails with a message that says so, no partial image survives under
# any name, images that did complete are whole, and the state dir is unharmed.
# Fixture set-up mounts a small tmpfs, which needs root; without root the test is skipped.
source "$(dirname "$0")/lib.bash"
require_tool e2fsck fsck.fat sfdisk mtype
[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"

make_base base.img --fill-mib 20
fake_upstream
mkdir small
mount -t tmpfs -o size=60m tmpfs small || skip "cannot mount a tmpfs here"
trap 'umount "$SCRATCH/small" 2>/dev/null; [ -z "$SERVER_PID" ] || kill "$SERVER_PID"; rm -rf "$SCRATCH"' EXIT
chmod 0777 small

if pibake build --nodes 4 --base-image base.img --out small/out; then fail "a build into a 60 MiB filesystem succeeded"; fi
grep -qF "(the output directory's filesystem is full)" err.log || { cat err.log >&2; fail "the error does not say the disk is full"; }
grep -q '^pibake: error: ' err.log || fail "error not in the 'pibake: error:' form"
left=$(find small -name '*.tmp')
[ -z "$left" ] || fail "partial files left behind: $left"
complete=0
for img in small/out/*.img; do
  [ -e "$img" ] || continue
  check_image "$img"
  complete=$((complete + 1))
done
[ "$complete" -lt 4 ] || fail "all four images fit: the test did not fill the disk"
# The state dir (on the big disk) is whole: the next build, with room, succeeds with the same keys.
ca_before=$(sha256sum pibake-state/pki/ca.crt)
pibake_ok build --nodes 4 --base-image base.img --out out
assert_eq "$(sha256sum pibake-state/pki/ca.crt)" "$ca_before" "CA after the failed build"
echo "ok: disk full reported, $complete complete image(s), no partial file, state dir intact"
