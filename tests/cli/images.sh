#!/usr/bin/env bash
# Container images end to end (issue 12 items 2, 3, 5, 6; docs/images.md): small arm64 test images
# (tests/fixtures/make-registry.py) pushed with skopeo into Debian's docker-registry, the reference
# distribution server, on 127.0.0.1; `mirrors:` points registry.k8s.io and ghcr.io at it. Checked
# with tools that did not write the cards (debugfs, tar, python3's json and hashlib): each card's
# archives hold exactly the images its node runs, by the right digests; blobs are stored once in
# the cache; the lock pins every image; --offline rebuilds from the cache with the registry gone.
# Failures: an amd64-only image, a registry answering HTML, a body that never ends, a blob or a
# manifest that is not what its digest says; each a clear error naming the image, no image
# written, nothing unverified in the cache.
source "$(dirname "$0")/lib.bash"
require_tool docker-registry skopeo debugfs python3 tar
note "registry: $(docker-registry --version 2>&1 | head -n 1)"

make_base base.img
echo 'nodes: {count: 3}' > cluster.yaml
fake_upstream
python3 "$PIBAKE_SOURCE_DIR/tests/fixtures/make-registry.py" reg v1.37.1 >/dev/null
python3 "$PIBAKE_SOURCE_DIR/tests/fixtures/make-registry.py" amd v1.37.1 \
  --amd64-only registry.k8s.io/kube-proxy:v1.37.1 >/dev/null

# start_registry DIR: docker-registry on a free 127.0.0.1 port, storage in DIR; sets REG, REG_PID.
REG_PID=""
start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$1"
  cat > "$1.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $1}}
http: {addr: "127.0.0.1:$port"}
YAML
  docker-registry serve "$1.yml" > "$1.log" 2>&1 &
  REG_PID=$!
  REG=127.0.0.1:$port
  for _ in $(seq 1 200); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && return 0; sleep 0.05; done
  cat "$1.log" >&2; fail "docker-registry did not start"
}
stop_registry() { [ -z "$REG_PID" ] || { kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; }; REG_PID=""; }
trap '[ -z "$REG_PID" ] || kill "$REG_PID" 2>/dev/null; [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null; rm -rf "$SCRATCH"' EXIT

# push FIXTURE: every image of the fixture's OCI layout, under its repository path (host dropped),
# digests preserved (skopeo refuses otherwise).
push() {
  local ref
  while IFS=$'\t' read -r ref _ _; do
    skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false \
      "oci:$1/layout:$ref" "docker://$REG/${ref#*/}" >> push.log 2>&1 || { cat push.log >&2; fail "skopeo could not push $ref"; }
  done < "$1/images.tsv"
}

# use_registry URL [GHCR_URL]: the spec's mirrors of registry.k8s.io and ghcr.io point at URL (and
# GHCR_URL when given): http://127.0.0.1:PORT, or a static copy's directory on the test server.
use_registry() {
  python3 - "$1" "${2:-$1}" <<'PY'
import sys, yaml
spec = yaml.safe_load(open("cluster.yaml"))
spec["mirrors"]["https://registry.k8s.io"] = sys.argv[1]
spec["mirrors"]["https://ghcr.io"] = sys.argv[2]
yaml.safe_dump(spec, open("cluster.yaml", "w"))
PY
}

start_registry "$SCRATCH/store"
push reg
use_registry "http://$REG"
cache=$SCRATCH/home/.cache/pibake
start=$(date +%s.%N)
pibake_ok fetch --base-image base.img
note "pibake fetch of every image from the registry: $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
pibake_ok build --base-image base.img --out out

# The lock pins each image: the index (where there is one) and the arm64 manifest, as pushed.
python3 - reg/images.tsv pibake-state/lock.yaml <<'PY' || fail "the lock file does not pin the images pushed"
import sys, yaml
lock = yaml.safe_load(open(sys.argv[2]))["images"]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
assert sorted(lock) == sorted(r[0] for r in rows), (sorted(lock), rows)
for ref, index, manifest in rows:
    assert lock[ref]["manifest"] == manifest, (ref, lock[ref])
    assert lock[ref].get("index", "-") == index, (ref, lock[ref])
PY

# check_card NODE EXPECTED...: the node's archives are exactly EXPECTED (references), each an OCI
# layout whose index.json names the reference and the pinned arm64 manifest, every blob present
# and matching its digest, the manifest's config and layers all there, the config linux/arm64.
check_card() {
  local node=$1; shift
  local img=out/$node.img dir=card-$node
  rm -rf "$dir"; mkdir -p "$dir"
  debugfs -R "rdump /var/lib/pibake/images $SCRATCH/$dir" "$img?offset=$(part_offset "$img" 2)" >/dev/null 2>&1
  python3 - "$dir/images" reg/images.tsv "$@" <<'PY' || fail "$node: its image archives are not what it runs"
import hashlib, json, os, sys, tarfile
d, tsv, want = sys.argv[1], sys.argv[2], sys.argv[3:]
pinned = {l.split("\t")[0]: l.rstrip("\n").split("\t")[2] for l in open(tsv)}
names = sorted(os.listdir(d))
expect = sorted(r.replace("/", "_").replace(":", "_") + ".tar" for r in want)
assert names == expect, (names, expect)
for ref in want:
    t = tarfile.open(os.path.join(d, ref.replace("/", "_").replace(":", "_") + ".tar"))
    files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    (m,) = index["manifests"]
    assert m["annotations"]["io.containerd.image.name"] == ref, m
    assert m["annotations"]["org.opencontainers.image.ref.name"] == ref.rsplit(":", 1)[1], m
    assert m["digest"] == pinned[ref], (ref, m["digest"], pinned[ref])
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.split("/")[-1], name
    manifest = json.loads(files["blobs/sha256/" + m["digest"][7:]])
    needed = [manifest["config"]] + manifest["layers"]
    assert sorted(["blobs/sha256/" + x["digest"][7:] for x in needed] + ["blobs/sha256/" + m["digest"][7:]]) == \
        sorted(n for n in files if n.startswith("blobs/")), ref
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"][7:]])
    assert (config["os"], config["architecture"]) == ("linux", "arm64"), config
PY
}
cp_images=(registry.k8s.io/kube-apiserver:v1.37.1 registry.k8s.io/kube-controller-manager:v1.37.1
  registry.k8s.io/kube-scheduler:v1.37.1 registry.k8s.io/kube-proxy:v1.37.1 registry.k8s.io/coredns/coredns:v1.14.2
  registry.k8s.io/pause:3.10.2 registry.k8s.io/etcd:3.6.6-0 ghcr.io/flannel-io/flannel:v0.28.9
  ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3)
worker_images=(registry.k8s.io/kube-proxy:v1.37.1 registry.k8s.io/pause:3.10.2 ghcr.io/flannel-io/flannel:v0.28.9
  ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3)
check_card node-1 "${cp_images[@]}"
check_card node-2 "${worker_images[@]}"
check_card node-3 "${worker_images[@]}"
for n in 1 2 3; do check_image out/node-$n.img; done
# containerd's sandbox image is kubeadm's pause, the one on the card.
root_cat out/node-2.img /etc/containerd/config.toml | grep -q "'registry.k8s.io/pause:3.10.2'" ||
  fail "containerd's sandbox image is not the pause image the card carries"
# The summary says what the images add to each node.
grep -q "node-1: container images: 9 images" out.log || { cat out.log >&2; fail "the build summary gives no image bytes for node-1"; }

# The cache: each blob once, by its digest (the layer every test image shares is one file); the
# arm64 variant only (no amd64 manifest or config of the indexed images was fetched).
python3 - reg/layout "$cache/sha256" <<'PY' || fail "the cache does not hold the arm64 blobs exactly once"
import json, os, sys
layout, store = sys.argv[1], sys.argv[2]
blob = lambda d: json.load(open(os.path.join(layout, "blobs/sha256", d[7:])))
have = set(n for n in os.listdir(store) if not n.endswith(".verified"))
shared = None
for e in json.load(open(os.path.join(layout, "index.json")))["manifests"]:
    top = blob(e["digest"])
    arm = [e["digest"]]
    if "manifests" in top:
        for m in top["manifests"]:
            if m["platform"]["architecture"] == "amd64":
                assert m["digest"][7:] not in have, "amd64 manifest fetched"
                assert blob(m["digest"])["config"]["digest"][7:] not in have, "amd64 config fetched"
            else:
                arm.append(m["digest"])
    for d in arm:
        assert d[7:] in have, d
    man = blob(arm[-1])
    for x in [man["config"]] + man["layers"]:
        assert x["digest"][7:] in have, x
    shared = shared or man["layers"][0]["digest"]
    assert man["layers"][0]["digest"] == shared
PY
[ -z "$(ls "$cache/partial" 2>/dev/null)" ] || fail "temporary files left in the cache: $(ls "$cache/partial")"

# Offline, with the registry gone: the same cards from the cache and the lock.
stop_registry
sha_before=$(sha256sum card-node-2/images/* | cut -d' ' -f1)
pibake_ok build --offline --base-image base.img --out out --node node-2
check_card node-2 "${worker_images[@]}"
assert_eq "$(sha256sum card-node-2/images/* | cut -d' ' -f1)" "$sha_before" "archives rebuilt offline"

# --- failures: each a clear error naming the image, no image written, nothing bad cached -------
# fresh_cluster NAME: a new cluster (its own state dir, no lock) sharing nothing with the first;
# the cache is emptied too, so every image is pulled again.
fresh_cluster() {
  rm -rf pibake-state out "$cache"
  python3 - "$1" <<'PY'
import sys, yaml
spec = yaml.safe_load(open("cluster.yaml"))
spec["cluster"] = {"name": sys.argv[1]}
yaml.safe_dump(spec, open("cluster.yaml", "w"))
PY
}
# refused WHAT PATTERN: the build fails, saying PATTERN; no image, no temporary in the cache, and no
# blob in the cache whose content is not its name.
refused() {
  if pibake build --base-image base.img --out out; then fail "$1: the build succeeded"; fi
  grep -q -- "$2" err.log || { cat err.log >&2; fail "$1: the error does not say \"$2\""; }
  ! ls out/*.img >/dev/null 2>&1 || fail "$1: an image was written"
  [ -z "$(ls "$cache/partial" 2>/dev/null)" ] || fail "$1: temporary files left in the cache"
  local f
  for f in "$cache"/sha256/*; do
    case $f in *.verified | *"*") continue ;; esac
    [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || fail "$1: $f in the cache is not what its name says"
  done
  note "$1: $(grep 'error' err.log | head -n 1)"
}

# A registry that wants an anonymous bearer token first (as Docker Hub and ghcr.io do): the token
# from the challenge's realm, for the challenge's service and scope, then sent with every request.
start_server "$SCRATCH/reg/registry" --bearer /
use_registry "$SERVER_URL/registry.k8s.io" "$SERVER_URL/ghcr.io"
fresh_cluster bearer
pibake_ok build --base-image base.img --out out --node node-2
check_card node-2 "${worker_images[@]}"
grep -q "^GET /token?service=pibake-test&scope=repository%3Apause%3Apull " "$SERVER_LOG" ||
  { cat "$SERVER_LOG" >&2; fail "no token was asked for pause's repository"; }
grep -q "^GET /registry.k8s.io/v2/pause/manifests/3.10.2 .*\[Bearer pibake-test-token\]" "$SERVER_LOG" ||
  fail "the manifest was not asked for with the token"
stop_server

# An image with no arm64 variant (a single linux/amd64 manifest).
start_registry "$SCRATCH/store-amd"
push amd
use_registry "http://$REG"
fresh_cluster amd64
refused "amd64-only image" "image registry.k8s.io/kube-proxy:v1.37.1 is linux/amd64, not linux/arm64"
stop_registry

# A static copy of the registry behind the test HTTP server, broken in several ways.
cp -r reg/registry bad
# HTML where a manifest should be (a captive portal).
printf '<!DOCTYPE html><html><body>Sign in to the Wi-Fi</body></html>\n' > bad/registry.k8s.io/v2/etcd/manifests/3.6.6-0
start_server "$SCRATCH/bad" --endless /registry.k8s.io/v2/kube-scheduler/manifests/v1.37.1
use_registry "$SERVER_URL/registry.k8s.io" "$SERVER_URL/ghcr.io"
fresh_cluster endless
refused "a manifest that never ends" "image registry.k8s.io/kube-scheduler:v1.37.1.*larger than"
stop_server
start_server "$SCRATCH/bad"
use_registry "$SERVER_URL/registry.k8s.io" "$SERVER_URL/ghcr.io"
fresh_cluster html
refused "HTML for a manifest" "image registry.k8s.io/etcd:3.6.6-0: the registry answered .*not JSON"
cp reg/registry/registry.k8s.io/v2/etcd/manifests/3.6.6-0 bad/registry.k8s.io/v2/etcd/manifests/3.6.6-0
# A layer that is not what its digest says.
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][1]["digest"])' \
  bad/registry.k8s.io/v2/kube-controller-manager/manifests/v1.37.1)
# One byte changed, the size kept (a longer body is refused by size before its digest is checked).
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); b=f.read(1); f.seek(0); f.write(bytes([b[0]^1]))' \
  "bad/registry.k8s.io/v2/kube-controller-manager/blobs/$layer"
fresh_cluster blob
refused "a blob digest mismatch" "checksum mismatch for image registry.k8s.io/kube-controller-manager:v1.37.1 (blob $layer)"
cp "reg/registry/registry.k8s.io/v2/kube-controller-manager/blobs/$layer" "bad/registry.k8s.io/v2/kube-controller-manager/blobs/$layer"
# A manifest that is not what the lock pins: build once (pins), then the registry changes it.
fresh_cluster pinned
pibake_ok build --base-image base.img --out out --node node-2
rm -rf out "$cache"
pause=$(grep -F 'registry.k8s.io/pause:3.10.2' reg/images.tsv | cut -f3)
echo ' ' >> "bad/registry.k8s.io/v2/pause/manifests/$pause"
refused "a manifest digest mismatch" "image registry.k8s.io/pause:3.10.2: manifest digest mismatch"
stop_server
echo "ok: lists per role, digests pinned, blobs once, offline rebuild, amd64-only / HTML / endless / blob and manifest mismatch refused"
