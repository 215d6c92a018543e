#!/usr/bin/env bash
# `pibake build --nodes 4` from an Ubuntu-shaped base image, as an unprivileged user: four images,
# each fsck-clean, each with its own hostname and cloud-init seed, the base untouched, holes kept.
source "$(dirname "$0")/lib.bash"
require_tool debugfs e2fsck fsck.fat mtype sfdisk

make_base base.img
fake_upstream
base_sum=$(sha256sum base.img)
pibake_ok build --nodes 4 --base-image base.img --out out
assert_eq "$(sha256sum base.img)" "$base_sum" "base image checksum after the build"

ids=""
for k in 1 2 3 4; do
  img=out/node-$k.img
  [ -f "$img" ] || fail "$img missing"
  check_image "$img"
  assert_eq "$(stat -c %a "$img")" 600 "$img mode (it holds keys)"
  assert_eq "$(root_cat "$img" /etc/hostname)" "node-$k" "$img /etc/hostname"
  boot_cat "$img" /meta-data > meta
  assert_contains meta "local-hostname: node-$k"
  ids="$ids $(awk '/^instance-id:/ {print $2}' meta)"
  boot_cat "$img" /user-data > user
  assert_contains user "#cloud-config"
  assert_contains user "hostname: node-$k"
  assert_contains user "fqdn: node-$k.cluster.home"
  # Files pibake did not touch are still there, byte for byte.
  assert_eq "$(boot_cat "$img" /config.txt)" "$(boot_cat base.img /config.txt)" "$img config.txt"
  boot_cat base.img /current/vmlinuz > base.vmlinuz && [ -s base.vmlinuz ] || fail "base.img has no current/vmlinuz"
  cmp <(boot_cat "$img" /current/vmlinuz) base.vmlinuz || fail "$img vmlinuz differs from the base"
  assert_eq "$(root_cat "$img" /etc/fstab)" "$(root_cat base.img /etc/fstab)" "$img /etc/fstab"
  # Sparse: the image occupies far less than its apparent size, as the base does.
  used=$(du -k "$img" | cut -f1); apparent=$(( $(stat -c %s "$img") / 1024 ))
  [ "$used" -lt $((apparent / 2)) ] || fail "$img is not sparse: $used KiB used of $apparent KiB"
done
# Every node has its own instance-id (cloud-init must see each card as a new instance).
assert_eq "$(echo $ids | tr ' ' '\n' | sort -u | wc -l)" 4 "distinct instance-ids"
# The spec that was used is written next to the outputs, readable by its owner only.
[ -f out/cluster.yaml ] || fail "out/cluster.yaml missing"
assert_eq "$(stat -c %a out/cluster.yaml)" 600 "out/cluster.yaml mode"
left=$(find out -name '.*.tmp')
[ -z "$left" ] || fail "temporary files left: $left"

# Rebuilding is reproducible: the same spec gives byte-identical images, written afresh into
# another directory (not over the old file, whose blocks could survive a partial rewrite).
first=$(sha256sum out/node-2.img | cut -d' ' -f1)
pibake_ok build --nodes 4 --base-image base.img --out again --node node-2
[ -f again/node-2.img ] || fail "the rebuild wrote no again/node-2.img"
assert_eq "$(sha256sum again/node-2.img | cut -d' ' -f1)" "$first" "node-2.img rebuilt into an empty directory"
echo "ok: 4 images built, checked with sfdisk, e2fsck, fsck.fat, debugfs, mtools"
