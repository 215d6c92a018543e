#!/usr/bin/env bash
# Issue 17, kind 3: a full cache disk says so and frees its partial file. The cache
# (XDG_CACHE_HOME) is a 1 MiB tmpfs and kubelet is 2 MiB, served over http from 127.0.0.1.
# Mounting the tmpfs needs root (as tests/cli/full_disk.sh); without root the test is skipped.
source "$(dirname "$0")/lib.bash"
[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"

make_base base.img
bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-artifacts.sh" "$SCRATCH/upstream" >/dev/null
k=$(find "$SCRATCH/upstream/dl.k8s.io" -path '*/bin/linux/arm64' -type d)
head -c $((2 << 20)) /dev/urandom > "$k/kubelet"
sha256sum "$k/kubelet" | cut -d' ' -f1 > "$k/kubelet.sha256"
chmod -R a+rX "$SCRATCH/upstream"
start_server "$SCRATCH/upstream"
cat > cluster.yaml <<YAML
mirrors:
  "https://dl.k8s.io": "$SERVER_URL/dl.k8s.io"
  "https://github.com": "$SERVER_URL/github.com"
YAML
chmod 0644 cluster.yaml

mkdir cache
mount -t tmpfs -o size=1m tmpfs cache || skip "cannot mount a tmpfs here"
trap 'umount "$SCRATCH/cache" 2>/dev/null; [ -z "$SERVER_PID" ] || kill "$SERVER_PID"; rm -rf "$SCRATCH"' EXIT
chmod 0777 cache

export XDG_CACHE_HOME=$SCRATCH/cache
if pibake fetch --base-image base.img; then fail "fetching 2 MiB into a 1 MiB cache succeeded"; fi
grep -qF "is full" err.log || { cat err.log >&2; fail "the error does not say the disk is full"; }
grep -qF "partial file was removed" err.log || { cat err.log >&2; fail "the error does not say the partial file is gone"; }
grep -q '^pibake: error: ' err.log || fail "error not in the 'pibake: error:' form"
left=$(find cache -name '*.part')
[ -z "$left" ] || fail "partial download left in the cache: $left"
# One request for kubelet: a full disk is not retried.
assert_eq "$(grep -c 'GET /dl.k8s.io/.*/kubelet ' "$SERVER_LOG")" 1 "kubelet requests"
echo "ok: full cache disk reported, partial file removed, no retry"
