#!/usr/bin/env bash
# Control-plane certificate renewal (issue 13 item 2): pibake-renew-certs and its timer, taken from
# node-1's image, run against a scratch tree holding the state dir's real CAs and leaf certificates
# issued by openssl. Stand-ins: kubeadm (`certs renew all` re-issues every existing leaf and
# kubeconfig client certificate from its CA for 365 days, as kubeadm does, and refuses anything
# else), kubectl (the API server's /readyz), sleep (snapshots the manifests directory) and date
# (a pinned clock for `date +%s`). Any stand-in can fail its first N calls (FAIL_<tool>=N) or kill
# the script at its Nth call (CUT_<tool>=N), a power cut at that point.
source "$(dirname "$0")/lib.bash"
require_tool debugfs openssl shellcheck flock base64

make_base base.img
echo 'nodes: {count: 2}' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
img=out/node-1.img
root_cat "$img" /usr/local/sbin/pibake-renew-certs > renew
[ -s renew ] || fail "node-1 has no pibake-renew-certs"
shellcheck -s sh renew || fail "shellcheck finds problems in pibake-renew-certs"
off=$(part_offset "$img" 2)
debugfs -R "stat /usr/local/sbin/pibake-renew-certs" "$img?offset=$off" 2>/dev/null | grep "Mode:  0755" >/dev/null \
  || fail "pibake-renew-certs is not 0755"
debugfs -R "stat /etc/systemd/system/timers.target.wants/pibake-renew-certs.timer" "$img?offset=$off" > ./link 2>/dev/null
assert_contains link 'Fast link dest: "/etc/systemd/system/pibake-renew-certs.timer"'
root_cat "$img" /etc/systemd/system/pibake-renew-certs.timer > timer
assert_contains timer "OnCalendar=daily"
assert_contains timer "Persistent=true"
if root_cat out/node-2.img /usr/local/sbin/pibake-renew-certs | grep . >/dev/null; then fail "a worker has pibake-renew-certs"; fi

real_date=$(command -v date)
now0=$("$real_date" +%s)
day=86400
root=$SCRATCH/root
k8s=$root/etc/kubernetes

# Stand-ins: each records "name args" in calls.log.
bin=$SCRATCH/bin; mkdir -p "$bin"
for tool in kubeadm kubectl sleep; do
  cat > "$bin/$tool" <<STUB
#!/bin/bash
. "$SCRATCH/standin-lib.sh"
echo "$tool \$*" >> "$SCRATCH/calls.log"
count_file="$SCRATCH/count-$tool"
n=\$(cat "\$count_file" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > "\$count_file"
[ "\$n" != "\$(printenv CUT_$tool || echo 0)" ] || { kill -KILL \$PPID; exit 1; }
[ "\$n" -gt "\$(printenv FAIL_$tool || echo 0)" ] || exit 1
. "$SCRATCH/$tool.body"
STUB
  chmod +x "$bin/$tool"
done
cat > "$bin/date" <<STUB
#!/bin/sh
if [ "\$*" = "+%s" ]; then cat "$SCRATCH/now"; else exec "$real_date" "\$@"; fi
STUB
chmod +x "$bin/date"
pin_clock() { echo $((now0 + $1 * day)) > now; }  # pin_clock DAYS: DAYS after the certificates were issued

mkdir -p ca/new && openssl genrsa -out leaf.key 2048 2>/dev/null
openssl req -new -key leaf.key -subj /CN=leaf -out leaf.csr 2>/dev/null
cat > ca.cnf <<CNF
[ca]
default_ca = d
[d]
database = $SCRATCH/ca/index.txt
new_certs_dir = $SCRATCH/ca/new
default_md = sha256
policy = p
unique_subject = no
rand_serial = yes
[p]
commonName = supplied
organizationName = optional
CNF
# Shared by the test and the stand-ins.
cat > standin-lib.sh <<LIB
SCRATCH=$SCRATCH real_date=$real_date day=$day
K8S_DIR=$k8s
LEAVES="apiserver.crt apiserver-kubelet-client.crt apiserver-etcd-client.crt front-proxy-client.crt etcd/server.crt etcd/peer.crt etcd/healthcheck-client.crt"
CONFS="admin.conf super-admin.conf controller-manager.conf scheduler.conf"
LIB
cat >> standin-lib.sh <<'LIB'
# issue CA_PREFIX SUBJECT START_EPOCH DAYS > PEM: a leaf from that CA (one shared key and request).
issue() {
  local ca=$1 subj=$2 start=$3 days=$4
  : > "$SCRATCH/ca/index.txt"
  openssl ca -batch -config "$SCRATCH/ca.cnf" -cert "$ca.crt" -keyfile "$ca.key" -in "$SCRATCH/leaf.csr" -subj "$subj" \
    -out /dev/stdout -notext -startdate "$("$real_date" -u -d "@$start" +%Y%m%d%H%M%SZ)" \
    -enddate "$("$real_date" -u -d "@$((start + days * day))" +%Y%m%d%H%M%SZ)" 2>/dev/null
}
# ca_of LEAF: the CA that signs it (kubeadm's layout under /etc/kubernetes/pki).
ca_of() {
  case "$1" in
    etcd/*|apiserver-etcd-client.crt) echo etcd/ca ;;
    front-proxy-client.crt) echo front-proxy-ca ;;
    *) echo ca ;;
  esac
}
# kubeconfig PEM: the shape kubeadm writes, client certificate and key embedded.
kubeconfig() {
  printf 'apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n' \
    "$(printf '%s\n' "$1" | base64 -w0)" "$(base64 -w0 < "$SCRATCH/leaf.key")"
}
LIB
. ./standin-lib.sh
leaves=$LEAVES confs=$CONFS
# The tree kubeadm init leaves on node-1, every leaf issued at now0 for a year (made once, copied).
make_tree() {
  rm -rf "$root"
  if [ -d tree ]; then cp -a tree "$root"; return; fi
  mkdir -p "$k8s/pki/etcd" "$k8s/manifests" "$k8s/pibake" "$root/var/lib/pibake"
  cp pibake-state/pki/ca.* pibake-state/pki/front-proxy-ca.* "$k8s/pki/"
  cp pibake-state/pki/etcd/ca.* "$k8s/pki/etcd/"
  for l in $leaves; do issue "$k8s/pki/$(ca_of "$l")" "/CN=$(basename "$l" .crt)" "$now0" 365 > "$k8s/pki/$l"; done
  for c in $confs; do kubeconfig "$(issue "$k8s/pki/ca" "/O=kubeadm:cluster-admins/CN=${c%.conf}" "$now0" 365)" > "$k8s/$c"; done
  for m in etcd kube-apiserver kube-controller-manager kube-scheduler; do echo "name: $m" > "$k8s/manifests/$m.yaml"; done
  echo "kind: ClusterConfiguration" > "$k8s/pibake/kubeadm-init.yaml"
  touch "$root/var/lib/pibake/firstboot.done"
  cp -a "$root" tree
}
not_after() {  # not_after FILE: notAfter in Unix seconds (a kubeconfig's embedded certificate)
  case "$1" in
    *.conf) sed -n 's/^ *client-certificate-data: *//p' "$1" | base64 -d ;;
    *) cat "$1" ;;
  esac | openssl x509 -noout -enddate | sed 's/^notAfter=//' | xargs -I{} "$real_date" -u -d {} +%s
}

# The stand-ins' behaviour.
cat > kubeadm.body <<'BODY'
[ "$*" = "certs renew all --config $K8S_DIR/pibake/kubeadm-init.yaml" ] || { echo "stand-in kubeadm: unexpected: $*" >&2; exit 1; }
[ -r "$K8S_DIR/pibake/kubeadm-init.yaml" ] || { echo "open $K8S_DIR/pibake/kubeadm-init.yaml: no such file" >&2; exit 1; }
now=$(date +%s)
renew_pem() {  # renew_pem CA_PREFIX OLD_PEM: same subject, new dates from the CA (kubeadm's NewCertAndKey)
  [ -r "$1.key" ] || { echo "failed to load the CA $1: missing key" >&2; exit 1; }
  subj=$(printf '%s\n' "$2" | openssl x509 -noout -subject -nameopt compat | sed 's/^subject=//')
  issue "$1" "$subj" $((now - 300)) 365
}
for l in $LEAVES; do
  f=$K8S_DIR/pki/$l
  [ -f "$f" ] || { echo "MISSING! $l"; continue; }
  new=$(renew_pem "$K8S_DIR/pki/$(ca_of "$l")" "$(cat "$f")") && printf '%s\n' "$new" > "$f.new" && mv "$f.new" "$f"
  echo "certificate $l renewed"
done
for c in $CONFS; do
  f=$K8S_DIR/$c
  [ -f "$f" ] || { echo "MISSING! $c"; continue; }
  new=$(renew_pem "$K8S_DIR/pki/ca" "$(sed -n 's/^ *client-certificate-data: *//p' "$f" | base64 -d)") &&
    kubeconfig "$new" > "$f.new" && mv "$f.new" "$f"
  echo "certificate embedded in the kubeconfig file $c renewed"
done
echo "Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
BODY
cat > kubectl.body <<'BODY'
[ "$*" = "--kubeconfig $K8S_DIR/admin.conf get --raw /readyz" ] || { echo "stand-in kubectl: unexpected: $*" >&2; exit 1; }
echo ok
BODY
cat > sleep.body <<'BODY'
echo "  manifests: $(ls "$K8S_DIR/manifests" | tr '\n' ' ')| parked: $(ls "$K8S_DIR/pibake/manifests-restarting" 2>/dev/null | tr '\n' ' ')" >> "$SCRATCH/calls.log"
BODY

run() {  # run [env...]: the script with the stand-ins first on PATH; output appended to run.log
  local rc=0
  env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$root" "$@" sh "$SCRATCH/renew" > last.log 2>&1 || rc=$?
  cat last.log >> run.log
  return $rc
}
reset_calls() { rm -f calls.log count-*; touch calls.log; }
all_manifests_back() {
  assert_eq "$(ls "$k8s/manifests" | tr '\n' ' ')" "etcd.yaml kube-apiserver.yaml kube-controller-manager.yaml kube-scheduler.yaml " "$1: manifests"
  assert_eq "$(ls -A "$k8s/pibake/manifests-restarting" 2>/dev/null)" "" "$1: parked manifests"
  [ ! -e "$root/var/lib/pibake/renew-certs.restart-pending" ] || fail "$1: the restart is still marked pending"
}
# renewed DAYS WHAT: every leaf and kubeconfig certificate verifies against its CA (at the pinned
# time) and was issued for 365 days on day DAYS, backdated 5 minutes as kubeadm does.
renewed() {
  local at=$(( (now0 + $1 * day) - 300 + 365 * day )) what=$2 f attime=$((now0 + $1 * day))
  for l in $leaves; do
    f=$k8s/pki/$l
    openssl verify -attime "$attime" -CAfile "$k8s/pki/$(ca_of "$l").crt" "$f" >/dev/null 2>&1 || fail "$what: $l does not verify against its CA"
    assert_eq "$(not_after "$f")" "$at" "$what: notAfter of $l"
  done
  for c in $confs; do
    sed -n 's/^ *client-certificate-data: *//p' "$k8s/$c" | base64 -d > conf.crt
    openssl verify -attime "$attime" -CAfile "$k8s/pki/ca.crt" conf.crt >/dev/null 2>&1 || fail "$what: $c's certificate does not verify"
    assert_eq "$(not_after "$k8s/$c")" "$at" "$what: notAfter of $c"
  done
}

# 1. Before kubeadm init has finished: nothing, whatever the clock says.
make_tree; rm "$root/var/lib/pibake/firstboot.done"; pin_clock 360; reset_calls
run || fail "renewal before init failed: $(cat last.log)"
assert_contains last.log "not initialised yet"
[ ! -s calls.log ] || fail "renewal before init called: $(cat calls.log)"

# 2. 100 days in: every certificate has 265 days left; the soonest expiry is logged, nothing renewed.
make_tree; pin_clock 100; reset_calls
run || fail "the daily check failed: $(cat last.log)"
assert_contains last.log "certificates valid until $("$real_date" -u -d "@$((now0 + 365 * day))" +%Y-%m-%dT%H:%M:%SZ) (265 days"
[ ! -s calls.log ] || fail "renewed with 265 days left: $(cat calls.log)"

# 3. 300 days in (65 left): kubeadm certs renew all, every static pod taken out for the kubelet's
# fileCheckFrequency and put back, the API server waited for (ready on the third try).
pin_clock 300; reset_calls
run FAIL_kubectl=2 || fail "renewal failed: $(cat last.log)"
grep -v '^  ' calls.log | cut -d' ' -f1-4 | tr '\n' ';' > order
assert_eq "$(cat order)" "kubeadm certs renew all;sleep 30;kubectl --kubeconfig $k8s/admin.conf get;sleep 5;kubectl --kubeconfig $k8s/admin.conf get;sleep 5;kubectl --kubeconfig $k8s/admin.conf get;" "call order"
assert_contains calls.log "  manifests: | parked: etcd.yaml kube-apiserver.yaml kube-controller-manager.yaml kube-scheduler.yaml "
all_manifests_back "after renewal"
renewed 300 "after renewal"
assert_contains last.log "expires $("$real_date" -u -d "@$((now0 + 365 * day))" +%Y-%m-%dT%H:%M:%SZ) (65 days left)"
assert_contains last.log "done: control-plane certificates now valid until $("$real_date" -u -d "@$((now0 + 300 * day - 300 + 365 * day))" +%Y-%m-%dT%H:%M:%SZ)"
# ... and the next day's check finds nothing to do.
pin_clock 301; reset_calls
run || fail "the check after renewal failed"
[ ! -s calls.log ] || fail "renewed twice: $(cat calls.log)"

# 4. Expired already (a node that was off for 400 days): renewed from the local CA all the same.
make_tree; pin_clock 400; reset_calls
run || fail "renewal of expired certificates failed: $(cat last.log)"
renewed 400 "after expiry"; all_manifests_back "after expiry"

# 5. kubeadm fails: the run fails (the unit shows it in the journal), nothing is taken down, and
# the next run renews.
make_tree; pin_clock 300; reset_calls
run FAIL_kubeadm=1 && fail "a failed kubeadm did not fail the run"
if grep -q '^sleep' calls.log; then fail "static pods were restarted after kubeadm failed"; fi
all_manifests_back "after a kubeadm failure"
assert_eq "$(not_after "$k8s/pki/apiserver.crt")" $((now0 + 365 * day)) "apiserver.crt after a kubeadm failure"
run || fail "the run after a kubeadm failure failed"
renewed 300 "after a kubeadm failure and a rerun"

# 6. A power cut at every point (kill -9 at a stand-in's call): the next run ends in the same state
# as an uncut run: every certificate renewed, every manifest back, the control plane restarted.
for cut in kubeadm sleep kubectl; do
  make_tree; pin_clock 300; reset_calls
  run CUT_$cut=1 && fail "the run cut at $cut finished"
  if [ $cut = sleep ]; then
    assert_eq "$(ls "$k8s/manifests")" "" "manifests while cut during the restart"
  fi
  reset_calls
  run || fail "the run after a cut at $cut failed: $(cat last.log)"
  all_manifests_back "after a cut at $cut"
  renewed 300 "after a cut at $cut"
  grep -q "^sleep 30" calls.log || fail "the control plane was not restarted after a cut at $cut"
  if [ $cut = sleep ]; then assert_contains last.log "putting the static pod manifests back"; fi
  if [ $cut != kubeadm ] && grep -q '^kubeadm' calls.log; then fail "renewed again after a cut at $cut"; fi
done

# 7. Two at once (the timer and a hand-started run): the second waits for the first's lock.
make_tree; pin_clock 100; reset_calls
mkdir -p "$root/run/lock"
( flock "$root/run/lock/pibake-renew-certs.lock" sleep 2 ) & holder=$!
for _ in $(seq 1 100); do flock -n "$root/run/lock/pibake-renew-certs.lock" true || break; /bin/sleep 0.02; done
run || fail "the second run failed"
wait $holder
assert_contains last.log "another renewal is running; waiting for it"
assert_contains last.log "certificates valid until"
echo "ok: no-op before init and with time left, renewal 65 days before expiry and after it, static pods restarted, kubeadm failure, power cuts at kubeadm/sleep/kubectl, concurrent runs"
