#!/usr/bin/env bash
# What a build reuses from earlier runs (issue 18 item 2; docs/speed.md): the OCI archives it made
# and the values it read from a file (a pinned local base image's sha256, a tarball's install
# size) are kept with the file's identity (device, inode, size, ctime, mtime) and not made or read
# again while that holds; a file changed in place at the same size is made or checked again.
# Checked with stat, cmp, debugfs and python3's tarfile, none of which wrote the files.
source "$(dirname "$0")/lib.bash"
require_tool debugfs python3 cmp
export XDG_CACHE_HOME=$SCRATCH/home/.cache
cache=$XDG_CACHE_HOME/pibake

make_base base.img
echo 'nodes: {count: 2}' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
# A record written in the same second as its file's last change is not trusted (timestamps are
# coarse); move the records' times on, as if this build had run a while ago.
age_records() {
  find "$cache" -type f \( -name '*.verified' -o -path '*/by-identity/*' \) -exec touch -d "@$(($(date +%s) + 5))" {} +
}
age_records
ls "$cache"/oci/*.tar >/dev/null || fail "no OCI archives in the cache"
[ "$(find "$cache/by-identity" -type f | wc -l)" -ge 3 ] || fail "the tarballs' install sizes were not kept"

note "an unchanged archive is not made again"
stamps() { stat -c '%n %i %s %Z %Y' "$cache"/oci/*.tar; }
before=$(stamps)
pibake_ok build --base-image base.img --out out --node node-2
assert_eq "$(stamps)" "$before" "the OCI archives (name inode size ctime mtime) after a second build"

note "an archive changed in place at the same size is made again, and the card gets the right one"
a=$(ls "$cache"/oci/*.tar | head -n 1)
cp "$a" good.tar
printf 'X' | dd of="$a" bs=1 seek=600 conv=notrunc status=none   # the padding after oci-layout
cmp -s "$a" good.tar && fail "the archive was not changed"
pibake_ok build --base-image base.img --out out --node node-1
cmp "$a" good.tar || fail "the changed archive $a was not made again"
name=$(python3 - good.tar <<'PY'
import json, sys, tarfile
ref = json.load(tarfile.open(sys.argv[1]).extractfile("index.json"))["manifests"][0]["annotations"]["io.containerd.image.name"]
print(ref.replace("/", "_").replace(":", "_") + ".tar")
PY
)
debugfs -R "dump /var/lib/pibake/images/$name card.tar" "out/node-1.img?offset=$(part_offset out/node-1.img 2)" >/dev/null 2>&1
cmp card.tar good.tar || fail "node-1's card holds a different $name"

note "a pinned local base image changed in place at the same size is refused"
sha=$(sha256sum base.img | cut -d' ' -f1)
python3 - "$SCRATCH/base.img" "$sha" <<'PY'
import sys, yaml
spec = yaml.safe_load(open("cluster.yaml"))
spec["base_image"] = {"url": "file://" + sys.argv[1], "sha256": sys.argv[2]}
yaml.safe_dump(spec, open("cluster.yaml", "w"))
PY
pibake_ok build --out out --node node-2
age_records
pibake_ok build --out out --node node-2
size=$(stat -c %s base.img)
printf 'Z' | dd of=base.img bs=1 seek=$((size - 1)) conv=notrunc status=none
[ "$(stat -c %s base.img)" = "$size" ] || fail "the base's size changed"
if pibake build --out out --node node-2; then fail "a changed base image passed its pinned sha256"; fi
assert_contains err.log "checksum mismatch for the base image"
echo "PASS ($TEST_NAME)"
