#!/usr/bin/env bash
# `pibake inspect`: partition table, node identity, versions, injected files and health checks, in
# text and JSON; a non-pibake image; a changed file and a CA key planted on a worker fail (exit 1).
source "$(dirname "$0")/lib.bash"
require_tool debugfs e2fsck fsck.fat sfdisk python3

make_base base.img
fake_upstream
pibake_ok build --nodes 2 --base-image base.img --out out
cp --sparse=always out/node-2.img worker.img && chmod 0666 worker.img

pibake_ok inspect out/node-2.img
assert_contains out.log "node: node-2 (10.0.0.2), worker"
assert_contains out.log "kubernetes v"
assert_contains out.log "containerd "
assert_contains out.log "/etc/hostname"
assert_contains out.log "pass    p2 ext4 consistent (e2fsck -fn)"
assert_contains out.log "pass    p1 FAT consistent (fsck.fat -n)"
assert_contains out.log "pass    no CA key on a worker"
assert_contains out.log "healthy"
# The table agrees with sfdisk's.
grep -qE "^  p2 +$(part_offset out/node-2.img 2) " out.log || fail "inspect's p2 start differs from sfdisk's"

pibake_ok inspect --json out/node-1.img
python3 - "$SCRATCH/out.log" <<'PY' || fail "inspect --json output is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pibake_image"] and d["healthy"], d
assert d["node"]["name"] == "node-1" and d["node"]["role"] == "control-plane" and d["node"]["ip"] == "10.0.0.1"
assert d["versions"]["kubernetes"].startswith("v")
assert [p["number"] for p in d["table"]["partitions"]] == [1, 2]
assert any(f["path"] == "/etc/hostname" and f["size"] == 7 for f in d["files"])
assert all(c["status"] in ("pass", "skipped") for c in d["checks"])
PY

# Not a pibake image: still the table and the filesystem checks.
pibake_ok inspect base.img
assert_contains out.log "not a pibake image"
assert_contains out.log "pass    p2 ext4 consistent"

# A file pibake wrote, changed afterwards, fails the check (and the exit status).
root_off=$(part_offset worker.img 2)
echo "intruder" > hostname.new
printf 'cd /etc\nrm hostname\nwrite %s hostname\n' "$SCRATCH/hostname.new" > change.cmds
debugfs -w -f change.cmds "worker.img?offset=$root_off" >/dev/null 2>&1
pibake inspect worker.img && fail "inspect passed an image whose /etc/hostname changed"
assert_contains out.log "writable:/etc/hostname differs from what pibake wrote"
assert_contains out.log "UNHEALTHY"

# A secret pibake wrote (node.json has its size only, read from the inode) grown afterwards fails too.
cp --sparse=always out/node-2.img worker.img
python3 -c 'import json,sys; d=json.load(sys.stdin); f=[f for f in d["files"] if f["path"]=="/etc/kubernetes/kubelet.conf"][0]; assert f.get("secret") and "sha256" not in f, f' \
  < <(root_cat worker.img /etc/pibake/node.json) || fail "node.json does not record kubelet.conf as a secret, size only"
{ root_cat worker.img /etc/kubernetes/kubelet.conf; echo "# grown"; } > kubelet.conf.new
printf 'cd /etc/kubernetes\nrm kubelet.conf\nwrite %s kubelet.conf\n' "$SCRATCH/kubelet.conf.new" > grow.cmds
debugfs -w -f grow.cmds "worker.img?offset=$root_off" >/dev/null 2>&1
pibake inspect worker.img && fail "inspect passed an image whose kubelet.conf grew"
assert_contains out.log "writable:/etc/kubernetes/kubelet.conf differs from what pibake wrote ($(stat -c %s kubelet.conf.new) bytes"

# A card is untrusted input too: a listed binary grown into a 4 GiB sparse file is refused from its
# inode (more than its partition holds, never read), and a node.json claiming 12 GiB likewise, both
# within a 1 GiB address-space limit (reading either whole would not fit).
cp --sparse=always out/node-2.img worker.img
printf 'sif /usr/local/bin/kubelet size 4294967296\n' > sparse.cmds
debugfs -w -f sparse.cmds "worker.img?offset=$root_off" >/dev/null 2>&1
(ulimit -v 1048576; pibake inspect worker.img) && fail "inspect passed an image whose kubelet grew to 4 GiB"
assert_contains out.log "writable:/usr/local/bin/kubelet claims 4294967296 bytes, more than its partition holds"
printf 'sif /etc/pibake/node.json size 12884901888\n' > sparse.cmds
debugfs -w -f sparse.cmds "worker.img?offset=$root_off" >/dev/null 2>&1
(ulimit -v 1048576; pibake inspect worker.img) && fail "inspect passed an image whose node.json claims 12 GiB"
assert_contains out.log "it claims 12884901888 bytes, more than the 1 MiB"

# A CA key on a worker fails.
cp --sparse=always out/node-2.img worker.img
echo "not really a key" > ca.key
printf 'mkdir /etc/kubernetes\nmkdir /etc/kubernetes/pki\ncd /etc/kubernetes/pki\nwrite %s ca.key\n' "$SCRATCH/ca.key" > plant.cmds
debugfs -w -f plant.cmds "worker.img?offset=$root_off" >/dev/null 2>&1
pibake inspect --json worker.img && fail "inspect passed a worker holding the CA key"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=[c for c in d["checks"] if c["name"]=="no CA key on a worker"][0]; assert c["status"]=="fail" and "/etc/kubernetes/pki/ca.key" in c["detail"], c' \
  "$SCRATCH/out.log" || fail "the CA key check did not name the key"
echo "ok: inspect reports identity, versions, files and health; tampering and a worker CA key fail"
