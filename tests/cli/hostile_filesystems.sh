#!/usr/bin/env bash
# Issue 17, kind 2: a base whose filesystems are not clean is refused, not copied and worsened.
# Each hostile base below is first shown to be rejected by the independent tool (fsck.fat -n,
# e2fsck -fn); pibake must refuse it before any output, naming that tool and the user's base image.
source "$(dirname "$0")/lib.bash"
require_tool python3 mshowfat fsck.fat e2fsck tune2fs debugfs

refused() {  # refused IMG "words the error must contain"
  local img=$1 want=$2
  if pibake build --nodes 2 --base-image "$img" --out out; then fail "pibake built from $img"; fi
  grep -qF -- "$want" err.log || { cat err.log >&2; fail "$img: error does not say '$want'"; }
  grep -qF -- "base image $img" err.log || { cat err.log >&2; fail "$img: error does not name the base image"; }
  grep -qE "/tmp|\.cache|/images/" err.log && { cat err.log >&2; fail "$img: error names a temporary or cache path"; }
  assert_no_images out
  note "$img refused: $(head -c 400 err.log)"
}
fat_rejects() {  # the boot partition of IMG fails fsck.fat -n
  dd if="$1" of=boot.part bs=1M iflag=skip_bytes,count_bytes skip="$(part_offset "$1" 1)" \
     count="$(part_size "$1" 1)" status=none
  if fsck.fat -n boot.part >fsck.log 2>&1; then cat fsck.log >&2; fail "fsck.fat -n accepts $1: the fixture is not hostile"; fi
  rm -f boot.part
}
e2fsck_rejects() {
  if e2fsck -fn "$1?offset=$(part_offset "$1" 2)" >fsck.log 2>&1; then
    cat fsck.log >&2; fail "e2fsck -fn accepts $1: the fixture is not hostile"
  fi
}

make_base good.img
fake_upstream
boot_off=$(part_offset good.img 1); root_off=$(part_offset good.img 2)

# The issue's example: user-data's cluster chain runs into vmlinuz's (a cross-link).
cp good.img crosslink.img
ud=$(mshowfat -i "crosslink.img@@$boot_off" ::/user-data | sed 's/.*<\([0-9]*\).*/\1/')
vm=$(mshowfat -i "crosslink.img@@$boot_off" ::/current/vmlinuz | sed 's/.*<\([0-9]*\).*/\1/')
python3 - crosslink.img "$boot_off" "$ud" "$vm" <<'PY'
import struct, sys
img, off, last, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with open(img, "r+b") as f:
    f.seek(off); bs = f.read(512)
    bps, reserved, nfats, fatsz = struct.unpack_from("<H", bs, 11)[0], struct.unpack_from("<H", bs, 14)[0], bs[16], struct.unpack_from("<I", bs, 36)[0]
    for k in range(nfats):                       # FAT32: 4 bytes per entry, in every FAT copy
        f.seek(off + (reserved + k * fatsz) * bps + 4 * last); f.write(struct.pack("<I", target))
PY
fat_rejects crosslink.img
refused crosslink.img "fsck.fat -n"
grep -qF "cross-linked" err.log || grep -qF "cluster chain" err.log || fail "the cross-link is not named"

# A stale FSInfo free count (fsck.fat: "Free cluster summary wrong").
cp good.img fsinfo.img
python3 - fsinfo.img "$boot_off" <<'PY'
import struct, sys
img, off = sys.argv[1], int(sys.argv[2])
with open(img, "r+b") as f:
    f.seek(off); bs = f.read(512)
    fsinfo = struct.unpack_from("<H", bs, 48)[0]
    f.seek(off + fsinfo * 512 + 488); free = struct.unpack("<I", f.read(4))[0]
    f.seek(off + fsinfo * 512 + 488); f.write(struct.pack("<I", free - 100))
PY
fat_rejects fsinfo.img
refused fsinfo.img "FSInfo free cluster count"

# ext4 with the quota feature: pibake's writes would leave the quota files wrong.
cp good.img quota.img
tune2fs -O quota "quota.img?offset=$root_off" >/dev/null 2>&1 || skip "tune2fs cannot add quota here"
refused quota.img "uses the feature quota"
grep -qF "tune2fs -O ^quota" err.log || fail "the quota refusal does not say how to remove it"

# ext4 whose group descriptor free count disagrees with its bitmap.
cp good.img badgroup.img
debugfs -w -R "set_bg 0 free_blocks_count 7" "badgroup.img?offset=$root_off" >/dev/null 2>&1
e2fsck_rejects badgroup.img
refused badgroup.img "e2fsck -fn"
grep -qF "group 0 says 7 free blocks" err.log || fail "the group count problem is not named"

# ext4 not cleanly unmounted.
cp good.img dirty.img
debugfs -w -R "ssv state 0" "dirty.img?offset=$root_off" >/dev/null 2>&1
refused dirty.img "not marked clean"

# And the clean base still builds (no false alarm from the checks).
pibake_ok build --nodes 1 --base-image good.img --out out
echo "ok: unclean FAT and ext4 bases refused naming fsck.fat -n / e2fsck -fn and the base image"
