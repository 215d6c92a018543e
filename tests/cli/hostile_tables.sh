#!/usr/bin/env bash
# Issue 17, kind 1: the partition table and the filesystems must agree before anything is written.
# Each hostile table below is one sfdisk would refuse to write (patched in with patch-table.py);
# pibake must refuse it before creating any output, with the table in the message.
source "$(dirname "$0")/lib.bash"
require_tool python3

refused() {  # refused NAME "words the error must contain"
  local img=$1 want=$2
  if pibake build --nodes 2 --base-image "$img" --out out; then fail "pibake built from $img"; fi
  grep -qF -- "$want" err.log || { cat err.log >&2; fail "$img: error does not say '$want'"; }
  grep -q '^pibake: error: ' err.log || fail "$img: error not in the 'pibake: error:' form"
  [ "$(wc -l < err.log)" -le 3 ] || { cat err.log >&2; fail "$img: error is more than a few lines"; }
  assert_no_images out
  note "$img refused: $(grep '^pibake: error: ' err.log | head -c 300)"
}
patch() { python3 "$PIBAKE_SOURCE_DIR/tests/fixtures/patch-table.py" "$@"; }

make_base good.img
fake_upstream
sector() { echo $(( $(part_offset good.img "$1") / 512 )); }
sectors() { echo $(( $(part_size good.img "$1") / 512 )); }
p1=$(sector 1); n1=$(sectors 1); p2=$(sector 2); n2=$(sectors 2)

# The example from the issue: p2 (ext4) starts inside p1 (FAT); each filesystem alone is clean.
cp good.img overlap.img
patch mbr overlap.img 2 $((p1 + n1 / 2)) "$n2"
sfdisk -V overlap.img >/dev/null 2>&1 || true   # sfdisk only warns, as the issue says
refused overlap.img "partitions 1 and 2 overlap"
grep -qF "dos table" err.log || fail "the overlap message does not show the table"
grep -qF "p2 type 83, sectors $((p1 + n1 / 2)).." err.log || fail "the overlap message does not give p2's sectors"

cp good.img pastend.img
patch mbr pastend.img 2 "$p2" $((n2 + 2048))
refused pastend.img "ends at byte"

cp good.img zero.img
patch mbr zero.img 2 "$p2" 0
refused zero.img "dos table"
# libfdisk may list a zero-size MBR entry (then refused as such) or treat it as an unused slot
# (then there is no root partition at all): either way nothing is written through it.
grep -qE "has zero size|no ext4 root partition" err.log || fail "zero-size p2 not named"

cp good.img intable.img
patch mbr intable.img 1 0 "$n1"
refused intable.img "inside the partition table"

# Filesystems claiming more than their partitions hold (shrunk by 1 MiB in the table).
cp good.img bigext4.img
patch mbr bigext4.img 2 "$p2" $((n2 - 2048))
refused bigext4.img "the ext4 filesystem in p2 claims"

cp good.img bigfat.img
patch mbr bigfat.img 1 "$p1" $((n1 - 2048))
refused bigfat.img "but the partition has"

# An ext4 superblock claiming 4 Gi blocks (16 TiB) in a 100 MiB image: refused from the raw
# superblock, before libext2fs sizes its group descriptor table from it.
cp good.img hugeext4.img
python3 - hugeext4.img "$(part_offset good.img 2)" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    sb = int(sys.argv[2]) + 1024
    f.seek(sb + 56)
    assert struct.unpack("<H", f.read(2))[0] == 0xEF53, "no ext4 superblock where expected"
    f.seek(sb + 4)
    f.write(struct.pack("<I", 0xFFFFFFFF))
PY
(ulimit -v 1048576; refused hugeext4.img "claims 4294967295 blocks of 4096 bytes, more than the image holds")

# GPT: 64-bit LBAs whose byte offsets overflow, and an entry past the last usable LBA.
truncate -s 64M gpt.img
printf 'label: gpt\nstart=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=34816, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' \
  | sfdisk -q gpt.img
cp gpt.img gpt-overflow.img
patch gpt gpt-overflow.img 2 $((1 << 62)) $(((1 << 62) + 100))
refused gpt-overflow.img "p"
grep -qiE "beyond any possible disk|ends at byte|partition table|corrupt" err.log || fail "the GPT overflow is not named"
cp gpt.img gpt-overlap.img
patch gpt gpt-overlap.img 2 4096 100000
refused gpt-overlap.img "partitions 1 and 2 overlap"
grep -qF "gpt table" err.log || fail "the GPT overlap message does not show the table"
# A GPT header claiming 8 Mi partition entries (a 1 GiB array that libfdisk would allocate and
# hash): refused from the header, before libfdisk reads it, whether the primary or the backup
# header claims it.
for which in primary backup; do
  cp gpt.img "gpt-$which-entries.img"
  python3 - "gpt-$which-entries.img" "$which" <<'PY'
import os, struct, sys
path, which = sys.argv[1], sys.argv[2]
at = 512 if which == "primary" else os.path.getsize(path) // 512 * 512 - 512
with open(path, "r+b") as f:
    f.seek(at)
    assert f.read(8) == b"EFI PART", "no GPT header where expected"
    f.seek(at + 80)
    f.write(struct.pack("<I", 8 << 20))
PY
  (ulimit -v 1048576; refused "gpt-$which-entries.img" "$which GPT header")
  assert_contains err.log "claims 8388608 partition entries of 128 bytes"
done
echo "ok: every hostile table refused before any output, with the table in the message"
