#!/usr/bin/env bash
# Artifacts end to end against a server on 127.0.0.1: mirrors, verification, the lock file, the
# cache (a second build with the server stopped), --offline, a tampered upstream and an archive
# that tries to escape. Binaries are read back from the images with debugfs and compared.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sfdisk e2fsck fsck.fat mtype python3

make_base base.img
up=$SCRATCH/upstream
echo 'nodes: {count: 2}' > cluster.yaml
fake_upstream http

pibake_ok build --base-image base.img --out out
gh=$up/github.com
declare -A want=(
  [/usr/local/bin/kubelet]=$up/dl.k8s.io/release/v1.37.1/bin/linux/arm64/kubelet
  [/usr/local/bin/kubeadm]=$up/dl.k8s.io/release/v1.37.1/bin/linux/arm64/kubeadm
  [/usr/local/bin/kubectl]=$up/dl.k8s.io/release/v1.37.1/bin/linux/arm64/kubectl
  [/usr/local/sbin/runc]=$gh/opencontainers/runc/releases/download/v1.5.1/runc.arm64
)
mkdir -p x && tar -C x -xzf "$gh/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-arm64.tar.gz"
tar -C x -xzf "$gh/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-arm64-v1.9.1.tgz"
tar -C x -xzf "$gh/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-arm64.tar.gz"
for b in containerd containerd-shim-runc-v2 ctr; do want[/usr/local/bin/$b]=x/bin/$b; done
for b in bridge host-local loopback portmap; do want[/opt/cni/bin/$b]=x/$b; done
want[/usr/local/bin/crictl]=x/crictl
for img in out/node-1.img out/node-2.img; do
  check_image "$img"
  off=$(part_offset "$img" 2)
  for path in "${!want[@]}"; do
    rm -f got
    debugfs -R "dump $path $SCRATCH/got" "$img?offset=$off" >/dev/null 2>&1
    [ -f got ] || fail "$img: $path missing"
    cmp -s got "${want[$path]}" || fail "$img: $path differs from the artifact"
    debugfs -R "stat $path" "$img?offset=$off" 2>/dev/null | grep "Mode:  0755" >/dev/null || fail "$img: $path is not 0755"
  done
  root_cat "$img" /etc/containerd/config.toml > config.toml
  assert_contains config.toml "SystemdCgroup = true"
  assert_contains config.toml "sandbox = 'registry.k8s.io/pause:3.10.2'"
  assert_contains config.toml "version = 4"
  for unit in containerd.service kubelet.service; do
    debugfs -R "stat /etc/systemd/system/multi-user.target.wants/$unit" "$img?offset=$off" 2>/dev/null | grep "Fast link dest" >/dev/null \
      || fail "$img: $unit is not enabled"
  done
  assert_contains <(root_cat "$img" /etc/systemd/system/kubelet.service.d/10-kubeadm.conf) "ExecStart=/usr/local/bin/kubelet"
done

# The lock file pins every artifact's URL and sha256.
lock=pibake-state/lock.yaml
[ -f "$lock" ] || fail "no lock file"
assert_eq "$(stat -c %a pibake-state)" 700 "state dir mode"
for name in kubelet kubeadm kubectl crictl containerd runc cni-plugins; do assert_contains "$lock" "  $name:"; done
assert_contains "$lock" "sha256: \"$(sha256sum "${want[/usr/local/bin/kubelet]}" | cut -d' ' -f1)\""

# Server stopped: node-2 is regenerated from the cache, identical, even with --offline.
stop_server
before=$(sha256sum out/node-2.img | cut -d' ' -f1)
rm out/node-2.img   # regenerated from nothing, not over the old file
pibake_ok build --base-image base.img --out out --node node-2 --offline
assert_eq "$(sha256sum out/node-2.img | cut -d' ' -f1)" "$before" "node-2 regenerated offline"

# --offline with an empty cache names what is missing and writes nothing.
mkdir -p empty-cache && chmod 0777 empty-cache
if XDG_CACHE_HOME=$SCRATCH/empty-cache pibake build --base-image base.img --out out2 --offline; then fail "--offline with an empty cache succeeded"; fi
grep -qE "is not in the cache" err.log || { cat err.log >&2; fail "--offline error does not say what is missing"; }
assert_no_images out2

# A tampered upstream (new kubelet and a matching .sha256) is refused: the lock pins the old hash.
k=$up/dl.k8s.io/release/v1.37.1/bin/linux/arm64
echo "evil" >> "$k/kubelet"; sha256sum "$k/kubelet" | cut -d' ' -f1 > "$k/kubelet.sha256"
start_server "$up"
sed -i "s|http://127.0.0.1:[0-9]*|$SERVER_URL|" cluster.yaml
rm -rf home/.cache
if pibake build --base-image base.img --out out3; then fail "a tampered kubelet was accepted"; fi
assert_contains err.log "checksum mismatch for kubelet v1.37.1"
assert_contains err.log "$SERVER_URL/dl.k8s.io/release/v1.37.1/bin/linux/arm64/kubelet"
assert_no_images out3
[ -z "$(find home/.cache/pibake/sha256 -type f -exec sha256sum {} + 2>/dev/null | awk '$1 != substr($2, length($2)-63)')" ] \
  || fail "the cache holds a file whose name is not its sha256"

# An archive with a member that climbs out of its directory is refused as a whole.
rm -rf pibake-state home/.cache
c=$gh/containernetworking/plugins/releases/download/v1.9.1
python3 - "$c/cni-plugins-linux-arm64-v1.9.1.tgz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    for name, data in (("./bridge", b"ok"), ("../evil", b"pwned")):
        info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o755
        t.addfile(info, io.BytesIO(data))
PY
(cd "$c" && sha256sum cni-plugins-linux-arm64-v1.9.1.tgz > cni-plugins-linux-arm64-v1.9.1.tgz.sha256)
if pibake build --base-image base.img --out out4; then fail "an archive escaping with .. was accepted"; fi
assert_contains err.log 'climbs out with ".."'
assert_no_images out4
echo "ok: every artifact verified, installed byte-identical and 0755, locked, cached, refused when tampered"
