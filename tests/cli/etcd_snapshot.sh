#!/usr/bin/env bash
# etcd snapshots of a single control plane, and their restore on a regenerated node-1 (issue 16,
# item 4; docs/cluster.md, "etcd snapshots"), against a real etcd on 127.0.0.1 (Debian's etcd-server
# and etcdctl, TLS from the etcd CA pibake made):
#   1. the control plane's card carries pibake-etcd-snapshot with its daily timer, and etcd-client
#      among its first-boot packages; a worker carries neither;
#   2. the card's script saves a snapshot that etcdctl reads back, keeps the newest N (0700 dir, 0600
#      files, latest.db), does nothing before the first boot has finished, and keeps the earlier
#      snapshots when etcd does not answer;
#   3. `build --etcd-snapshot` refuses what is no snapshot (a text file, a cut or damaged copy, the
#      data directory's db, a directory), a snapshot of another cluster (no cluster CA in it), a
#      build without the card that inits and a state dir that never built a cluster, leaving the
#      images and the state dir as they were; a good one lands on node-1's card only, 0600;
#   4. node-1's first boot restores it before kubeadm init (the stand-in's preflight refuses a
#      non-empty /var/lib/etcd unless told to ignore it), again after a power cut in the init, and
#      then removes it from the card; etcd started on the restored data holds the keys.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sh shellcheck python3 setsid openssl etcd etcdctl dpkg-deb flock
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
printf 'nodes: {count: 2}\n' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
img=out/node-1.img
off=$(part_offset "$img" 2)
mode_of() { debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | sed -n 's/.*Mode: *0*\([0-7]*\).*/\1/p'; }

# 1. What the cards carry.
assert_eq "$(mode_of "$img" /usr/local/sbin/pibake-etcd-snapshot)" 755 "mode of pibake-etcd-snapshot"
debugfs -R "stat /etc/systemd/system/timers.target.wants/pibake-etcd-snapshot.timer" "$img?offset=$off" 2>/dev/null > link.txt
assert_contains link.txt 'Fast link dest: "/etc/systemd/system/pibake-etcd-snapshot.timer"'
root_cat "$img" /usr/local/sbin/pibake-etcd-snapshot > snapshot-script
shellcheck -s sh snapshot-script || fail "shellcheck finds problems in pibake-etcd-snapshot"
root_cat "$img" /usr/local/sbin/pibake-firstboot > firstboot
grep -q '^PACKAGES=".*etcd-client' firstboot || fail "node-1's first boot does not install etcd-client"
[ -z "$(root_cat out/node-2.img /usr/local/sbin/pibake-etcd-snapshot)" ] || fail "the worker carries pibake-etcd-snapshot"
if root_cat out/node-2.img /usr/local/sbin/pibake-firstboot | grep -q '^PACKAGES=".*etcd-client'; then
  fail "the worker installs etcd-client"
fi
[ -z "$(root_cat "$img" /var/lib/pibake/etcd-restore.db)" ] || fail "a build without --etcd-snapshot put a snapshot on node-1"

# A single etcd member on 127.0.0.1 with TLS from the cluster's etcd CA, and node-1's etcd client
# certificate (kubeadm's healthcheck-client) in a scratch root.
ca=pibake-state/pki/etcd
port=$((20000 + RANDOM % 20000))
issue() {  # issue NAME DIR: DIR/NAME.crt/.key signed by the etcd CA
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > ext
  openssl req -new -newkey rsa:2048 -nodes -keyout "$2/$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null &&
    openssl x509 -req -in "$1.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -CAserial ca.srl -days 2 \
      -extfile ext -out "$2/$1.crt" 2>/dev/null || fail "could not issue $1's certificate"
}
start_etcd() {  # start_etcd DATA_DIR PORT [ARGS...]: a member serving https://127.0.0.1:PORT
  local data=$1 p=$2
  shift 2
  etcd --name node-1 --data-dir "$data" --listen-client-urls "https://127.0.0.1:$p" \
    --advertise-client-urls "https://127.0.0.1:$p" --listen-peer-urls "https://127.0.0.1:$((p + 1))" \
    --cert-file server.crt --key-file server.key --client-cert-auth --trusted-ca-file "$ca/ca.crt" \
    --peer-cert-file server.crt --peer-key-file server.key --peer-client-cert-auth \
    --peer-trusted-ca-file "$ca/ca.crt" "$@" > "etcd-$p.log" 2>&1 &
  echo $! > "etcd-$p.pid"
}
stop_etcd() { kill "$(cat "etcd-$1.pid")" 2>/dev/null || true; wait "$(cat "etcd-$1.pid")" 2>/dev/null || true; rm -f "etcd-$1.pid"; }
trap 'for f in "$SCRATCH"/etcd-*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$SCRATCH"' EXIT
issue server .
mkdir -p snaproot/etc/kubernetes/pki/etcd
cp "$ca/ca.crt" snaproot/etc/kubernetes/pki/etcd/
issue healthcheck-client snaproot/etc/kubernetes/pki/etcd
ctl() {  # ctl PORT ARGS...
  local p=$1
  shift
  ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$p" --cacert "$ca/ca.crt" \
    --cert snaproot/etc/kubernetes/pki/etcd/healthcheck-client.crt --key snaproot/etc/kubernetes/pki/etcd/healthcheck-client.key "$@"
}
wait_etcd() { for _ in $(seq 60); do ctl "$1" endpoint health >/dev/null 2>&1 && return 0; sleep 1; done; cat "etcd-$1.log" >&2; fail "etcd on port $1 did not start"; }
start_etcd "$SCRATCH/etcd-live" "$port" --initial-cluster "node-1=https://127.0.0.1:$((port + 1))" \
  --initial-advertise-peer-urls "https://127.0.0.1:$((port + 1))"
wait_etcd "$port"
ctl "$port" put /registry/configmaps/default/pibake-test "made before the snapshot" >/dev/null || fail "etcdctl put failed"
ctl "$port" put /registry/secrets/default/db-password "s3cret" >/dev/null || fail "etcdctl put failed"
# A snapshot of this etcd before it holds the cluster's CA: as another cluster's would be.
ctl "$port" snapshot save foreign.db >/dev/null 2>&1 && chmod 0644 foreign.db || fail "etcdctl snapshot save failed"
# kubeadm's kube-public/cluster-info: a kubeconfig holding the cluster CA (base64, one line).
printf 'apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: %s\n    server: https://10.0.0.1:6443\n' \
  "$(base64 -w0 pibake-state/pki/ca.crt)" > cluster-info.kubeconfig
ctl "$port" put /registry/configmaps/kube-public/cluster-info < cluster-info.kubeconfig >/dev/null || fail "etcdctl put failed"

# 2. The snapshot script from node-1's card.
snap() { env PIBAKE_TEST_ROOT="$SCRATCH/snaproot" PIBAKE_ETCD_ENDPOINT="https://127.0.0.1:$port" "$@" sh snapshot-script >> snap.log 2>&1; }
snap || fail "pibake-etcd-snapshot failed before the first boot had finished"
assert_contains snap.log "the first boot has not finished"
[ ! -e snaproot/var/lib/pibake/etcd-snapshots ] || fail "a snapshot was taken before the first boot had finished"
mkdir -p snaproot/var/lib/pibake && date > snaproot/var/lib/pibake/firstboot.done
dir=snaproot/var/lib/pibake/etcd-snapshots
for k in 1 2 3; do
  snap PIBAKE_ETCD_SNAPSHOT_KEEP=2 || { cat snap.log etcd-"$port".log >&2; fail "snapshot $k failed"; }
  [ "$k" = 3 ] || sleep 1.1  # names are UTC seconds
done
assert_eq "$(stat -c %a "$dir")" 700 "mode of etcd-snapshots/"
mapfile -t kept < <(cd "$dir" && ls etcd-*Z.db)
assert_eq "${#kept[@]}" 2 "snapshots kept with PIBAKE_ETCD_SNAPSHOT_KEEP=2"
for f in "${kept[@]}"; do assert_eq "$(stat -c %a "$dir/$f")" 600 "mode of $f"; done
assert_eq "$(readlink "$dir/latest.db")" "${kept[1]}" "latest.db"
assert_eq "$(grep -c '^pibake-etcd-snapshot: removed etcd-' snap.log)" 1 "snapshots removed"
ETCDCTL_API=3 etcdctl --write-out json snapshot status "$dir/latest.db" > status.json 2>/dev/null ||
  fail "etcdctl cannot read the snapshot back"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["totalKey"] >= 2 and s["revision"] >= 3, s' status.json ||
  fail "the snapshot does not hold the keys put before it"
cp "$dir/latest.db" good.db && chmod 0644 good.db  # pibake runs as nobody
note "snapshot: $(cat status.json)"

# Too little room (the reserve raised past the disk's free space), then etcd not answering: exit 1,
# no .part, the earlier snapshots and latest.db as they were.
before=$(cd "$dir" && ls -l --time-style=+%s.%N)
if snap PIBAKE_ETCD_SNAPSHOT_RESERVE=$((1 << 62)); then fail "pibake-etcd-snapshot ignored its free-space reserve"; fi
assert_contains snap.log "must stay free: no snapshot"
stop_etcd "$port"
if snap; then fail "pibake-etcd-snapshot succeeded with etcd stopped"; fi
assert_contains snap.log "does not answer: no snapshot; the earlier snapshots are kept"
assert_eq "$(cd "$dir" && ls -l --time-style=+%s.%N)" "$before" "the snapshot directory after failed snapshots"

# 3. Wrong files for --etcd-snapshot, and a build without the card that inits: refused, nothing
#    changed. The images and state dir are compared by content and times.
fingerprint() { find out pibake-state -type f -printf '%p %s %T@\n' | sort; find out pibake-state -type f -exec sha256sum {} + | sort; }
fingerprint > before.txt
head -c 8224 /dev/urandom > random.db
head -c $(( $(stat -c %s good.db) - 512 )) good.db > cut.db
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[5000]^=1; open(sys.argv[2],"wb").write(b)' good.db flipped.db
find etcd-live -name db -path '*snap*' -exec cp {} data-dir.db \;
[ -s data-dir.db ] || fail "no member/snap/db in the test etcd's data dir"
chmod 0644 data-dir.db
mkdir snapdir
refuse() {  # refuse FILE MESSAGE [BUILD ARGS...]
  local f=$1 msg=$2
  shift 2
  if pibake build --base-image base.img --out out --etcd-snapshot "$f" "$@"; then fail "--etcd-snapshot $f was accepted"; fi
  assert_contains "$SCRATCH/err.log" "$msg"
}
refuse random.db "random.db is not an etcd snapshot" --node node-1
refuse cut.db "cut.db is damaged: its integrity hash does not match" --node node-1
refuse flipped.db "flipped.db is damaged" --node node-1
refuse data-dir.db "data-dir.db has no integrity hash" --node node-1
refuse snapdir "snapdir is a directory" --node node-1
refuse absent.db "absent.db: No such file or directory" --node node-1
refuse foreign.db "foreign.db is not a snapshot of this cluster" --node node-1
refuse good.db "this build makes no card that runs kubeadm init" --node node-2
assert_contains "$SCRATCH/err.log" "add --node node-1"
fingerprint > after.txt
cmp -s before.txt after.txt || { diff before.txt after.txt >&2; fail "a refused build changed out/ or the state dir"; }
# A state dir that never built a cluster: no snapshot restores into new CAs. Nothing is created.
mkdir -p fresh && cp cluster.yaml fresh/ && chmod 0777 fresh && chmod 0644 fresh/cluster.yaml
if pibake build -c fresh/cluster.yaml --base-image base.img --out fresh/out --etcd-snapshot good.db; then
  fail "--etcd-snapshot was accepted for a state dir without a cluster"
fi
assert_contains "$SCRATCH/err.log" "holds no cluster yet: a snapshot restores the cluster this state dir built"
[ ! -e fresh/pibake-state ] && [ ! -e fresh/out ] || fail "the refused build created a state dir or out/"

# A good one: on node-1's card only, 0600, the same bytes. The file's mode changes all through the
# build (its ctime moves, its content and mtime do not): that is no new version of it.
timeout 300 sh -c 'while :; do chmod 0664 good.db; chmod 0644 good.db; done' 2>/dev/null &
chmod_pid=$!
pibake_ok build --base-image base.img --out out --node node-1 --etcd-snapshot good.db
kill "$chmod_pid"; wait "$chmod_pid" 2>/dev/null || true
assert_contains "$SCRATCH/err.log" "note: node-1 is the cluster's only control plane: its new card restores the etcd snapshot good.db before kubeadm init"
debugfs -R "dump /var/lib/pibake/etcd-restore.db $SCRATCH/on-card.db" "$img?offset=$off" >/dev/null 2>&1
cmp -s good.db on-card.db || fail "node-1's /var/lib/pibake/etcd-restore.db is not the snapshot given"
assert_eq "$(mode_of "$img" /var/lib/pibake/etcd-restore.db)" 600 "mode of etcd-restore.db"
check_image "$img"

# 4. node-1's first boot from the new card, against the kubeadm stand-in and the real etcdctl: a
#    power cut in kubeadm init's control-plane phase, then one in its last phase (every object
#    there, as a restored etcd has them all from the start: not taken for a finished init), then
#    the boot that finishes.
mkdir -p pristine/etc pristine/var/lib
for d in /etc/kubernetes /etc/containerd; do debugfs -R "rdump $d $SCRATCH/pristine/etc" "$img?offset=$off" >/dev/null 2>&1; done
debugfs -R "rdump /var/lib/pibake $SCRATCH/pristine/var/lib" "$img?offset=$off" >/dev/null 2>&1
root_cat "$img" /usr/local/sbin/pibake-firstboot > firstboot
[ -s pristine/var/lib/pibake/etcd-restore.db ] || fail "no etcd-restore.db read back from node-1"
source "$PIBAKE_SOURCE_DIR/tests/cli/bootstrap_stubs.bash"
make_bootstrap_stubs
rm -rf root && mkdir -p root stand-in && cp -a pristine/. root/
run() {
  env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_FIRST_DELAY=1 PIBAKE_API_WAIT=10 \
    PIBAKE_INIT_TIMEOUT=600 PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" PIBAKE_STAND_IN_PARSED="$SCRATCH/parsed" \
    INSTALLED="chrony conntrack etcd-client iptables isc-dhcp-server kea-dhcp4-server socat" "$@" \
    setsid sh "$SCRATCH/firstboot" >> run.log 2>&1
}
cuts="init:control-plane:cut init:show-join-command:cut:2"
run PIBAKE_STAND_IN_FAULTS="$cuts" && fail "the bootstrap survived a power cut"
[ -d root/var/lib/etcd/member/snap ] || { cat run.log >&2; fail "the snapshot was not restored before kubeadm init"; }
[ -e root/var/lib/pibake/etcd-restore.db ] || fail "the snapshot left the card before the init was done"
run PIBAKE_STAND_IN_FAULTS="$cuts" && fail "the bootstrap survived the second power cut"
grep -q "show-join-command" stand-in/calls.log || fail "the second init did not reach its last phase"
run PIBAKE_STAND_IN_FAULTS= || { cat run.log stand-in/calls.log >&2; fail "the restore and init did not finish after the power cuts"; }
assert_eq "$(awk '$2 == "kubeadm" { print $3 }' stand-in/calls.log | tr '\n' ' ')" "init reset init reset init " "kubeadm calls"
if grep -q "an earlier kubeadm init had finished" run.log; then fail "an init cut short on restored data was taken for a finished one"; fi
assert_eq "$(grep -c 'kubeadm init --config .* --ignore-preflight-errors=DirAvailable--var-lib-etcd' stand-in/calls.log)" 3 \
  "kubeadm init calls told to accept the restored /var/lib/etcd"
assert_eq "$(grep -c 'restoring the etcd snapshot on this card before kubeadm init' run.log)" 3 "restores"
assert_contains run.log "removed the etcd snapshot pibake put on this card (init)"
[ ! -e root/var/lib/pibake/etcd-restore.db ] || fail "the snapshot stayed on the card after the init"
assert_eq "$(stat -c %a root/var/lib/etcd)" 700 "mode of /var/lib/etcd"
grep -qx kubeadm-init root/var/lib/pibake/steps || fail "kubeadm-init was not recorded"

# etcd itself on the restored data: the keys, and node-1 the one member at its own address.
port2=$((port + 100))
start_etcd "$SCRATCH/root/var/lib/etcd" "$port2"
wait_etcd "$port2"
assert_eq "$(ctl "$port2" get --print-value-only /registry/configmaps/default/pibake-test)" "made before the snapshot" \
  "the key restored"
ctl "$port2" member list > members.txt
assert_eq "$(wc -l < members.txt)" 1 "members after the restore"
grep -q ', node-1, https://10.0.0.1:2380, ' members.txt || { cat members.txt >&2; fail "the restored member is not node-1 at https://10.0.0.1:2380"; }
stop_etcd "$port2"
echo "ok: snapshots saved, kept and refused; the restore before kubeadm init survives a power cut; etcd reads the restored keys"
