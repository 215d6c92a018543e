#!/usr/bin/env bash
# kubernetes.version as a channel (stable, stable-1.NN) against a server on 127.0.0.1 standing in
# for dl.k8s.io through mirrors: resolved at the first build, pinned in the lock file, never
# re-read for that cluster, read afresh for a new one; a changed channel, a channel file that
# names no release, and a channel that resolves to a minor pibake does not know are refused
# before any image is written.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sfdisk python3

make_base base.img
up=$SCRATCH/upstream
bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-artifacts.sh" "$up" v1.37.1 >/dev/null
rel=$up/dl.k8s.io/release
echo v1.37.1 > "$rel/stable-1.37.txt"
echo v1.37.1 > "$rel/stable.txt"
chmod -R a+rX "$up"
start_server "$up"
spec() {  # spec DIR VERSION: a one-node cluster.yaml in DIR using the server
  mkdir -p "$1" && chmod 0777 "$1"
  cat > "$1/cluster.yaml" <<YAML
nodes: {count: 1}
kubernetes: {version: $2}
mirrors:
  "https://dl.k8s.io": "$SERVER_URL/dl.k8s.io"
  "https://github.com": "$SERVER_URL/github.com"
  "https://registry.k8s.io": "$SERVER_URL/registry/registry.k8s.io"
  "https://ghcr.io": "$SERVER_URL/registry/ghcr.io"
YAML
  chmod 0644 "$1/cluster.yaml"
}
channel_gets() { grep -c "GET /dl.k8s.io/release/$1.txt" "$SERVER_LOG" || true; }

# --dry-run reads the channel (nothing else) and leaves no state dir behind.
spec a stable-1.37
pibake_ok build -c a/cluster.yaml --dry-run
assert_contains out.log "kubernetes.version stable-1.37 is v1.37.1"
assert_contains out.log "kubelet v1.37.1 -> /usr/local/bin"
[ ! -e a/pibake-state ] || fail "--dry-run created a/pibake-state"
assert_eq "$(channel_gets stable-1.37)" 1 "channel reads after --dry-run"
grep -q "GET /dl.k8s.io/release/v1.37.1" "$SERVER_LOG" && fail "--dry-run downloaded binaries"

# The first build resolves and pins it; the image gets that release.
pibake_ok build -c a/cluster.yaml --base-image base.img --out a/out
lock=a/pibake-state/lock.yaml
python3 - "$lock" <<'PY' || fail "lock file: $(cat "$lock")"
import sys, yaml
a = yaml.safe_load(open(sys.argv[1]))["artifacts"]
k = a["kubernetes"]
assert k["version"] == "v1.37.1", k
assert k["url"] == "https://dl.k8s.io/release/stable-1.37.txt", k
assert len(k["sha256"]) == 64, k
assert a["kubeadm"]["version"] == "v1.37.1", a["kubeadm"]
assert a["crictl"]["version"] == "v1.37.0", a["crictl"]
PY
root_cat a/out/node-1.img /etc/kubernetes/pibake/kubeadm-init.yaml > init.yaml
assert_contains init.yaml "kubernetesVersion: v1.37.1"
python3 -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' init.yaml || fail "kubeadm-init.yaml is not YAML"
assert_contains a/out/cluster.yaml "version: v1.37.1"

# A new patch on the channel: the pinned cluster keeps v1.37.1 and does not even ask.
bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-artifacts.sh" "$up" v1.37.2 >/dev/null
echo v1.37.2 > "$rel/stable-1.37.txt"
chmod -R a+rX "$up"
before=$(channel_gets stable-1.37)
pibake_ok build -c a/cluster.yaml --base-image base.img --out a/out2
assert_contains out.log "kubernetes.version stable-1.37 is v1.37.1"
assert_eq "$(channel_gets stable-1.37)" "$before" "channel reads by a pinned cluster"
# A new cluster resolves afresh (the earlier cached channel file is not reused).
spec b stable-1.37
pibake_ok build -c b/cluster.yaml --base-image base.img --out b/out
assert_contains out.log "kubernetes.version stable-1.37 is v1.37.2"
grep -q 'version: "v1.37.2"' b/pibake-state/lock.yaml || fail "b's lock: $(cat b/pibake-state/lock.yaml)"

# Another channel for the pinned cluster is refused, saying how to change it.
sed -i 's/version: stable-1.37/version: stable/' a/cluster.yaml
if pibake build -c a/cluster.yaml --base-image base.img --out a/out3; then fail "a changed channel was accepted"; fi
assert_contains err.log "the lock file pins Kubernetes v1.37.1 (from https://dl.k8s.io/release/stable-1.37.txt) but the spec asks for stable"
assert_no_images a/out3

# A channel file that names no release of its minor.
echo v1.35.9 > "$rel/stable-1.36.txt"; chmod a+r "$rel/stable-1.36.txt"
spec c stable-1.36
if pibake build -c c/cluster.yaml --base-image base.img --out c/out; then fail "a wrong channel file was accepted"; fi
assert_contains err.log "stable-1.36.txt names no Kubernetes release of stable-1.36 (its first line is \"v1.35.9\"; not kept)"
echo '<html>moved</html>' > "$rel/stable-1.36.txt"
if pibake build -c c/cluster.yaml --base-image base.img --out c/out; then fail "an HTML channel file was accepted"; fi
assert_contains err.log "$SERVER_URL/dl.k8s.io/release/stable-1.36.txt names no Kubernetes release of stable-1.36 (its first line is \"<html>moved</html>\"; not kept)"
assert_no_images c/out
[ ! -e c/pibake-state/lock.yaml ] || ! grep -q "kubernetes:" c/pibake-state/lock.yaml || fail "c's lock pins a bad channel"

# stable naming a minor pibake does not know: refused like a written v1.38.0, located.
echo v1.38.0 > "$rel/stable.txt"
spec d stable
if pibake build -c d/cluster.yaml --base-image base.img --out d/out; then fail "an unknown minor from stable was accepted"; fi
assert_contains out.log "kubernetes.version stable is v1.38.0"
assert_contains err.log "d/cluster.yaml:2:23: kubernetes.version: \"v1.38.0\" is newer than the Kubernetes releases pibake knows"
assert_contains err.log "kubernetes.allow_unknown_version: true"
assert_no_images d/out
