#!/usr/bin/env bash
# Outputs for flashing: every image gets a .bmap that bmap-tools accepts (mapping the blocks
# `bmaptool create` maps, in 1 MiB pieces, every piece's sha256 checked by bmaptool copy), `pibake flash` writes raw, .zst and .xz images to a file byte-exact with
# holes kept, --compress writes multi-threaded .zst/.xz with sha256sum files, and damage is caught.
source "$(dirname "$0")/lib.bash"
require_tool bmaptool sfdisk zstd xz sha256sum cmp

make_base base.img
fake_upstream
pibake_ok build --nodes 2 --base-image base.img --out out --compress zstd
for k in 1 2; do
  img=out/node-$k.img
  [ -f "$img.bmap" ] || fail "$img.bmap missing"
  # The same blocks as bmap-tools maps, and the same image and block sizes; pibake's ranges are cut
  # into 1 MiB pieces so that a node takes the base's hash of every piece it did not write.
  bmaptool create -o ref.bmap "$img" 2>/dev/null
  python3 - ref.bmap "$img.bmap" <<'PY' || fail "$img.bmap does not map what bmaptool create maps"
import sys, xml.etree.ElementTree as ET
def read(path):
    root = ET.parse(path).getroot()
    blocks, last = [], None
    for r in root.find("BlockMap"):
        a, _, b = r.text.strip().partition("-")
        a, b = int(a), int(b or a)
        if r.get("chksum") is None or len(r.get("chksum")) != 64: sys.exit(f"{path}: range {a}-{b} has no sha256")
        if blocks and a == blocks[-1][1] + 1: blocks[-1][1] = b
        else: blocks.append([a, b])
    head = {k: root.find(k).text.strip() for k in ("ImageSize", "BlockSize", "BlocksCount", "MappedBlocksCount")}
    return head, blocks
ref, ours = read(sys.argv[1]), read(sys.argv[2])
if ref != ours: sys.exit(f"bmaptool create: {ref[0]}, {len(ref[1])} extents; pibake: {ours[0]}, {len(ours[1])} extents")
PY
  # bmap-tools flashes it (checking the bmap file checksum and every range's sha256).
  bmaptool copy --bmap "$img.bmap" "$img" bmaptool-target.img >bmaptool.log 2>&1 || { cat bmaptool.log >&2; fail "bmaptool copy rejected $img"; }
  cmp "$img" bmaptool-target.img || fail "bmaptool copy of $img differs from the image"
  # Compressed copy: a valid zstd frame with its own checksum file, decompressing to the image.
  zstd -tq "$img.zst" || fail "zstd -t rejects $img.zst"
  (cd out && sha256sum -c --quiet "node-$k.img.zst.sha256") || fail "$img.zst.sha256 does not match"
  cmp <(zstd -dc "$img.zst") "$img" || fail "$img.zst does not decompress to the image"
done
[ -z "$(find out -name '.*.tmp')" ] || fail "temporary files left in out/"

img=out/node-2.img
apparent=$(stat -c %s "$img")
# pibake flash to a regular file: raw with its bmap, then .zst (which finds node-2.img.bmap).
for src in "$img" "$img.zst"; do
  rm -f target.img
  pibake_ok flash "$src" target.img
  cmp "$img" target.img || fail "pibake flash $src: target differs from the image"
  assert_contains out.log "verified"
  assert_contains out.log "MB/s"
  used=$(du -k target.img | cut -f1)
  [ "$used" -lt $((apparent / 1024 / 2)) ] || fail "flash $src wrote the holes too ($used KiB used)"
done
# Flashing over an existing, larger file truncates it first.
head -c 300M /dev/urandom > target.img 2>/dev/null || dd if=/dev/zero of=target.img bs=1M count=300 status=none
chmod 0666 target.img
pibake_ok flash "$img" target.img
cmp "$img" target.img || fail "flash over an existing file differs from the image"

# Without a bmap beside it: SEEK_DATA for the raw image, non-zero blocks for a compressed one.
mkdir -p nobmap && cp --sparse=always "$img" nobmap/n.img && xz -T0 -k -3 nobmap/n.img && chmod -R a+rX nobmap
for src in nobmap/n.img nobmap/n.img.xz; do
  rm -f target.img
  pibake_ok flash "$src" target.img
  cmp "$img" target.img || fail "pibake flash $src (no bmap): target differs from the image"
done

# --compress xz: valid, multi-threaded, checksummed.
pibake_ok build --nodes 2 --base-image base.img --out out --node node-1 --compress xz
xz -t out/node-1.img.xz || fail "xz -t rejects node-1.img.xz"
(cd out && sha256sum -c --quiet node-1.img.xz.sha256) || fail "node-1.img.xz.sha256 does not match"
rm -f target.img
pibake_ok flash out/node-1.img.xz target.img
cmp out/node-1.img target.img || fail "flash of node-1.img.xz differs"

# A damaged bmap is refused before anything is written; so is a bmap of another image.
cp "$img.bmap" saved.bmap
sed -i 's/<BlockSize> 4096/<BlockSize> 4097/' "$img.bmap"
rm -f target.img
pibake flash "$img" target.img && fail "flash accepted a damaged bmap"
assert_contains err.log "the bmap file is damaged"
cp out/node-1.img.bmap "$img.bmap"
pibake flash "$img" target.img && fail "flash accepted node-1's bmap for node-2.img"
assert_contains err.log "does not match"
# A .bmap that is no regular file (a FIFO would block a reader forever) or claims gigabytes (a
# sparse file) is refused at once, never read whole.
rm -f "$img.bmap" && mkfifo "$img.bmap" && chmod 0666 "$img.bmap"
timeout 60 setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$SCRATCH/home" "$PIBAKE" flash "$img" target.img \
  >/dev/null 2>err.log && fail "flash accepted a FIFO as the bmap"
assert_contains err.log "FIFO"
rm -f "$img.bmap" && truncate -s 4G "$img.bmap" && chmod 0644 "$img.bmap"
(ulimit -v 1048576; pibake flash "$img" target.img) && fail "flash accepted a 4 GiB bmap"
assert_contains err.log "$img.bmap"
rm -f "$img.bmap"
cp saved.bmap "$img.bmap" && chmod 0644 "$img.bmap"
# A target too small for the image (here the file-size limit, EFBIG, met when a file target is
# sized): exit 1 naming the target and the cause, not death by SIGXFSZ.
rm -f small.img
rc=0
(ulimit -f 2048; pibake flash "$img" small.img) || rc=$?
assert_eq "$rc" 1 "exit status of a flash past the target's end"
grep -q "^pibake: error: .*small.img: File too large" err.log ||
  { cat err.log >&2; fail "the error does not name the target and the cause"; }
rm -f small.img
# Source data that no longer matches its bmap: the range is named.
off=$(part_offset "$img" 2)
printf 'X' | dd of="$img" bs=1 seek=$((off + 1024 + 120)) conv=notrunc status=none  # inside the ext4 superblock
pibake flash "$img" target.img && fail "flash accepted an image that does not match its bmap"
assert_contains err.log "does not match"
assert_contains err.log "blocks"

# Several cards at once: `pibake flash out/ T1 T2` writes node-1.img to T1 and node-2.img to T2,
# each verified; every target is checked before any is written.
pibake_ok build --nodes 2 --base-image base.img --out multi
pibake_ok flash multi t1.img t2.img
cmp multi/node-1.img t1.img || fail "flash multi/: t1.img differs from node-1.img"
cmp multi/node-2.img t2.img || fail "flash multi/: t2.img differs from node-2.img"
assert_contains out.log "multi/node-1.img → t1.img"
assert_contains out.log "multi/node-2.img → t2.img: wrote"
[ "$(grep -c "verified" out.log)" = 2 ] || fail "flash multi/ did not verify both cards"
rm -f t1.img t2.img
pibake flash multi t1.img && fail "flash multi/ accepted one target for two images"
assert_contains err.log "holds 2 images (node-1.img, node-2.img) but 1 target was given"
pibake flash multi t1.img t1.img && fail "flash multi/ accepted the same target twice"
assert_contains err.log "t1.img is given twice"
pibake flash multi t1.img ./t1.img && fail "flash multi/ accepted a new target twice under two names"
assert_contains err.log "./t1.img is given twice (as t1.img too)"
cp multi/node-2.img saved-node-2.img
pibake flash multi t1.img multi/node-2.img && fail "flash multi/ accepted one of its images as a target"
assert_contains err.log "is multi/node-2.img, which is being flashed"
cmp multi/node-2.img saved-node-2.img || fail "flash multi/ changed node-2.img"
rm -f saved-node-2.img
pibake flash multi t1.img /dev/null && fail "flash multi/ accepted /dev/null"
assert_contains err.log "neither a block device nor a regular file"
[ ! -e t1.img ] || fail "flash multi/ wrote t1.img although t2's target was refused"
pibake flash multi/node-1.img t1.img t2.img && fail "flash of one image accepted two targets"
assert_contains err.log "is one image: give one DEVICE"
# Only pibake's outputs: a stray .img without a block map would shift every node one card along.
printf 'not an image' > multi/a-stray.img
pibake flash multi t0.img t1.img t2.img && fail "flash multi/ accepted an .img without a .bmap"
assert_contains err.log "a-stray.img has no block map"
[ ! -e t0.img ] || fail "flash multi/ wrote t0.img before refusing"
rm -f multi/a-stray.img
# Each card is checked against its own image's map: node-1's map beside node-2.img fails node-2's
# card (and only it: node-1's card is written and verified all the same).
cp multi/node-2.img.bmap saved.bmap
cp multi/node-1.img.bmap multi/node-2.img.bmap
pibake flash multi t1.img t2.img && fail "flash multi/ accepted a block map of another image"
assert_contains err.log "node-2.img → t2.img: multi/node-2.img does not match multi/node-2.img.bmap"
assert_contains out.log "multi/node-1.img → t1.img: wrote"
cmp multi/node-1.img t1.img || fail "node-1's card was not written while node-2's failed"
cp saved.bmap multi/node-2.img.bmap
rm -f t1.img t2.img

# Targets that are neither files nor block devices are refused.
pibake flash "$img.zst" /dev/null && fail "flash accepted /dev/null"
assert_contains err.log "neither a block device nor a regular file"
echo "ok: bmaps equal bmaptool's, bmaptool copy and pibake flash reproduce the images, zstd/xz outputs verified"
