#!/usr/bin/env bash
# No side effect before the input is known good (issue 13 item 4): a bad --node, a missing base
# image or an output path that is a file fails before the first download (the 127.0.0.1 server
# logs no request), before the state dir or the output directory exists, and names the problem.
# One state dir, one build at a time (issue 17 item 8): two builds on one state dir with different
# --out both succeed (the second waits for the first and says so), with one CA between them and a
# whole state dir; a kill during the wait harms nothing.
source "$(dirname "$0")/lib.bash"
require_tool python3 openssl sfdisk e2fsck fsck.fat mtype flock

make_base base.img
echo 'nodes: {count: 2}' > cluster.yaml
fake_upstream http

# refused CHECK MESSAGE ARGS...: pibake build fails saying MESSAGE, with nothing downloaded or created.
refused() {
  local what=$1 message=$2; shift 2
  : > "$SERVER_LOG"
  if pibake build "$@"; then fail "$what: the build succeeded"; fi
  assert_contains err.log "$message"
  [ ! -s "$SERVER_LOG" ] || fail "$what: downloaded before failing: $(cat "$SERVER_LOG")"
  [ ! -e pibake-state ] || fail "$what: the state dir was created"
  [ ! -e out ] || fail "$what: the output directory was created"
}
refused "--node node-typo" 'no node named "node-typo" in the spec (nodes: node-1, node-2)' \
  --base-image base.img --out out --node node-typo
refused "missing base image" "base image missing.img: No such file or directory" --base-image missing.img --out out
mkfifo fifo.img && chmod 0666 fifo.img
refused "a FIFO as the base image" "base image fifo.img is a FIFO (named pipe)" --base-image fifo.img --out out
# A base image on this machine needs no download: its partition table is checked before the
# state dir gets its first file (issue 13 item 4).
cp base.img notable.img
dd if=/dev/zero of=notable.img bs=512 count=1 conv=notrunc status=none
refused "a local base image without a partition table" "no partition table found" --base-image notable.img --out out
touch out.file
refused "--out naming a file" "output directory out.file exists and is not a directory" --base-image base.img --out out.file
# The same check runs once: the error is printed once.
pibake build --base-image base.img --out out --node node-typo || true
assert_eq "$(grep -c 'no node named' err.log)" 1 "times the node error is printed"

# A good build downloads (the server saw it): the refusals above were not for want of a server.
pibake_ok build --base-image base.img --out out
grep -q "GET /dl.k8s.io/" "$SERVER_LOG" || fail "the good build downloaded nothing from the test server"
# With the state dir present, its own checks also come before any download: a spec that no longer
# matches the cluster is refused with the server silent and the state dir unchanged.
state_before=$(cd pibake-state && find . -type f | sort | xargs sha256sum)
sed -i '1i network: {subnet: 10.1.0.0/24, dhcp_range: 10.1.0.100-10.1.0.200}' cluster.yaml
rm -rf home/.cache  # an empty download cache: any fetch would reach the server
: > "$SERVER_LOG"
if pibake build --base-image base.img --out out2; then fail "a changed subnet was accepted"; fi
assert_contains err.log 'network.subnet was "10.0.0.0/24", now "10.1.0.0/24"'
[ ! -s "$SERVER_LOG" ] || fail "downloaded before refusing the changed subnet: $(cat "$SERVER_LOG")"
[ ! -e out2 ] || fail "the output directory was created for a refused spec"
assert_eq "$(cd pibake-state && find . -type f | sort | xargs sha256sum)" "$state_before" "the state dir after a refused spec"
sed -i '1d' cluster.yaml

# Two builds on one fresh state dir, different --out, at the same moment.
rm -rf pibake-state out
start_build() {  # start_build OUT LOG: a background build; sets BUILD_PID
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$SCRATCH/home" \
      "$PIBAKE" build --base-image base.img --out "$1" >"$2" 2>&1 &
  else
    "$PIBAKE" build --base-image base.img --out "$1" >"$2" 2>&1 &
  fi
  BUILD_PID=$!
}
start_build out-a a.log; pid_a=$BUILD_PID
start_build out-b b.log; pid_b=$BUILD_PID
rc_a=0; wait $pid_a || rc_a=$?
rc_b=0; wait $pid_b || rc_b=$?
[ $rc_a = 0 ] && [ $rc_b = 0 ] || { cat a.log b.log >&2; fail "concurrent builds: exit $rc_a and $rc_b"; }
cat a.log b.log > both.log
assert_contains both.log "waiting for another pibake run that is using the state dir ./pibake-state"
for k in ca.key ca.crt front-proxy-ca.key front-proxy-ca.crt etcd/ca.key etcd/ca.crt sa.key sa.pub bootstrap-token; do
  [ -s pibake-state/pki/$k ] || fail "pki/$k missing after two concurrent builds"
done
openssl pkey -in pibake-state/pki/ca.key -noout || fail "ca.key does not parse"
[ ! -e pibake-state/.pki.tmp ] || fail ".pki.tmp left behind"
for o in out-a out-b; do
  for k in 1 2; do check_image "$o/node-$k.img"; done
  sed -n 's/^ *client-certificate-data: //p' "$o/admin.kubeconfig" | base64 -d > "$o.crt"
  openssl verify -CAfile pibake-state/pki/ca.crt "$o.crt" >/dev/null || fail "$o's admin certificate is not from the state dir's CA"
done
# Both node-1 images carry the one CA.
for o in out-a out-b; do root_cat "$o/node-1.img" /etc/kubernetes/pki/ca.crt > "$o.ca"; done
cmp -s out-a.ca pibake-state/pki/ca.crt && cmp -s out-b.ca pibake-state/pki/ca.crt || fail "the two builds' node-1 images carry different CAs"

# A build waiting for the lock and killed there changes nothing. The lock is held by flock(1)
# on the state dir (the same lock, taken by another tool), so the wait lasts as long as needed.
state_before=$(cd pibake-state && find . -type f | sort | xargs sha256sum)
flock -o pibake-state sleep 60 & holder=$!  # -o: the lock is flock's own, released when it is killed
for _ in $(seq 1 2000); do flock -n pibake-state true || break; sleep 0.005; done
start_build out-d d.log; pid_d=$BUILD_PID
for _ in $(seq 1 2000); do grep -q "waiting for another pibake run" d.log && break; sleep 0.005; done
release() { pkill -P $holder sleep 2>/dev/null || true; wait $holder 2>/dev/null || true; }
grep -q "waiting for another pibake run" d.log || { release; fail "the build did not wait for the state dir's lock"; }
kill -KILL $pid_d; wait $pid_d 2>/dev/null || true
release
[ ! -e out-d ] || fail "the build killed while waiting created its output directory"
assert_eq "$(cd pibake-state && find . -type f | sort | xargs sha256sum)" "$state_before" "the state dir after a kill during the wait"
echo "ok: bad --node, base image and --out refused before any download or state dir; concurrent builds share one whole state dir"
