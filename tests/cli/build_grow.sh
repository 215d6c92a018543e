#!/usr/bin/env bash
# When a node's files do not fit in the root filesystem's free space, the image grows: the file is
# extended, partition 2 enlarged and ext4 resized, all without root; the result is fsck-clean.
source "$(dirname "$0")/lib.bash"
require_tool debugfs e2fsck fsck.fat mtype sfdisk resize2fs dumpe2fs

# A 96 MiB root with 70 MiB of data leaves less free space than pibake keeps for first boot.
make_base base.img --root-mib 96 --fill-mib 70
fake_upstream
before_size=$(stat -c %s base.img)
before_part=$(part_size base.img 2)
pibake_ok build --nodes 2 --base-image base.img --out out
assert_contains out.log "root filesystem grown"
for img in out/node-1.img out/node-2.img; do
  check_image "$img"
  after_part=$(part_size "$img" 2)
  [ "$after_part" -gt "$before_part" ] || fail "$img: partition 2 did not grow ($after_part <= $before_part)"
  [ "$(stat -c %s "$img")" -gt "$before_size" ] || fail "$img: file did not grow"
  # ext4 fills the whole enlarged partition.
  off=$(part_offset "$img" 2)
  blocks=$(dumpe2fs -h "$img?offset=$off" 2>/dev/null | awk -F: '/^Block count/ {gsub(/ /,"",$2); print $2}')
  bsize=$(dumpe2fs -h "$img?offset=$off" 2>/dev/null | awk -F: '/^Block size/ {gsub(/ /,"",$2); print $2}')
  assert_eq "$((blocks * bsize))" "$after_part" "$img ext4 size"
  free=$(dumpe2fs -h "$img?offset=$off" 2>/dev/null | awk -F: '/^Free blocks/ {gsub(/ /,"",$2); print $2}')
  [ $((free * bsize)) -ge $((64 * 1024 * 1024)) ] || fail "$img: only $((free * bsize)) bytes free after growing"
  # The fill data survived the resize byte for byte.
  assert_eq "$(root_cat "$img" /usr/lib/fixture-fill | sha256sum)" "$(root_cat base.img /usr/lib/fixture-fill | sha256sum)" "fill data"
done
assert_eq "$(root_cat out/node-2.img /etc/hostname)" "node-2" "hostname after growth"
echo "ok: root grown from $before_part to $after_part bytes, fsck-clean"
