#!/usr/bin/env bash
# A control plane joining, and a rebuilt one replacing its stale etcd member (docs/cluster.md,
# "Several control planes"): node-2's first-boot script from a 3-control-plane build runs against
# the kubeadm stand-in's join phases (tests/e2e/k8s-stand-in.sh) and a real etcd cluster of three
# members on 127.0.0.1 (Debian's etcd-server and etcdctl, TLS from the etcd CA pibake made), in
# which node-2's old member is still listed but dead. Checked: the stale member is removed through a
# live one before kubeadm join, the join adds node-2 again and marks it a control plane, init never
# runs, keepalived is started; a power cut in check-etcd resumes after a reset with pibake's CA
# material back; node-1's card (which may init) joins when another member's etcd answers; with no
# etcd answering, the script waits and never joins.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sh shellcheck python3 setsid openssl etcd etcdctl dpkg-deb
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
printf 'nodes: {count: 4, control_planes: 3}\n' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
img=out/node-2.img
off=$(part_offset "$img" 2)
mkdir -p pristine/etc pristine/var/lib/pibake
for d in /etc/kubernetes /etc/containerd; do debugfs -R "rdump $d $SCRATCH/pristine/etc" "$img?offset=$off" >/dev/null 2>&1; done
debugfs -R "rdump /var/lib/pibake/images $SCRATCH/pristine/var/lib/pibake" "$img?offset=$off" >/dev/null 2>&1
debugfs -R "dump /usr/local/sbin/pibake-firstboot $SCRATCH/firstboot.img" "$img?offset=$off" >/dev/null 2>&1
[ -s pristine/etc/kubernetes/pibake/kubeadm-join.yaml ] && [ -s pristine/etc/kubernetes/pibake/discovery.conf ] ||
  fail "node-2.img has no kubeadm-join.yaml or discovery.conf"
shellcheck -s sh firstboot.img || fail "shellcheck finds problems in node-2's pibake-firstboot"
grep -q '^JOIN_ONLY=yes$' firstboot.img || fail "node-2's script may init"

# The etcd cluster: node-1..node-3 on 127.0.0.1, ports from a random base, certificates from the
# cluster's etcd CA (as kubeadm's etcd/server and etcd/peer: server and client auth, IP 127.0.0.1).
ca=pibake-state/pki/etcd
port=$((20000 + RANDOM % 20000))
client() { echo $((port + $1)); }
peer() { echo $((port + 10 + $1)); }
issue() {  # issue NAME: NAME.crt/.key signed by the etcd CA
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > ext
  openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null &&
    openssl x509 -req -in "$1.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -CAserial ca.srl -days 2 \
      -extfile ext -out "$1.crt" 2>/dev/null || fail "could not issue $1's certificate"
}
initial=""
for k in 1 2 3; do initial="$initial${initial:+,}node-$k=https://127.0.0.1:$(peer $k)"; done
start_etcd() {
  local k=$1
  issue "node-$k"
  etcd --name "node-$k" --data-dir "$SCRATCH/etcd-$k" --listen-client-urls "https://127.0.0.1:$(client $k)" \
    --advertise-client-urls "https://127.0.0.1:$(client $k)" --listen-peer-urls "https://127.0.0.1:$(peer $k)" \
    --initial-advertise-peer-urls "https://127.0.0.1:$(peer $k)" --initial-cluster "$initial" \
    --initial-cluster-state new --initial-cluster-token pibake-test --cert-file "node-$k.crt" --key-file "node-$k.key" \
    --client-cert-auth --trusted-ca-file "$ca/ca.crt" --peer-cert-file "node-$k.crt" --peer-key-file "node-$k.key" \
    --peer-client-cert-auth --peer-trusted-ca-file "$ca/ca.crt" > "etcd-$k.log" 2>&1 &
  echo $! > "etcd-$k.pid"
}
stop_etcd() { kill "$(cat "etcd-$1.pid")" 2>/dev/null || true; wait "$(cat "etcd-$1.pid")" 2>/dev/null || true; }
# Stop the members on any exit, then lib.bash's own clean-up (the scratch dir).
trap 'for k in 1 2 3; do [ -e "$SCRATCH/etcd-$k.pid" ] && (cd "$SCRATCH" && stop_etcd $k); done; rm -rf "$SCRATCH"' EXIT
issue tester
ctl() { ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$(client 1)" --cacert "$ca/ca.crt" --cert tester.crt --key tester.key "$@"; }
for k in 1 2 3; do start_etcd $k; done
for _ in $(seq 60); do ctl endpoint health --cluster >/dev/null 2>&1 && break; sleep 1; done
ctl endpoint health --cluster >/dev/null 2>&1 || { cat etcd-*.log >&2; fail "the test's etcd cluster did not form"; }
old_id=$(ctl member list | awk -F', ' '$3 == "node-2" { print $1 }')
[ -n "$old_id" ] || fail "no member node-2 in the test's etcd"
# node-2's card died: its member is listed, and does not answer.
stop_etcd 2
note "etcd 3 members on 127.0.0.1:$(client 1)..$(client 3); node-2 ($old_id) stopped"

# The cluster the endpoint leads to (the stand-in's store): its API server answers; node-1..3 are
# registered, node-2 from its earlier card.
cluster=$SCRATCH/cluster
mkdir -p "$cluster/nodes"
touch "$cluster/apiserver-up"
mkdir -p "$cluster/kube-system/pods"
for k in 1 2 3; do
  echo "node-role.kubernetes.io/control-plane=" > "$cluster/nodes/node-$k"
  touch "$cluster/kube-system/pods/etcd-node-$k"  # the etcd mirror pods; node-2's is stale
done

source "$PIBAKE_SOURCE_DIR/tests/cli/bootstrap_stubs.bash"
make_bootstrap_stubs
# node-2's script, its etcd peers pointed at the test's members (node-1 and node-3).
point_at_test_etcd() {  # point_at_test_etcd IN OUT: the script's etcd endpoints replaced by node-1's and node-3's
  sed "s|^ETCD_ENDPOINTS=.*|ETCD_ENDPOINTS=\"127.0.0.1:$(client 1) 127.0.0.1:$(client 3)\"|" "$1" > "$2"
  grep -q "^ETCD_ENDPOINTS=\"127.0.0.1:" "$2" || fail "no ETCD_ENDPOINTS line in $1 to point at the test's etcd"
}
point_at_test_etcd firstboot.img firstboot
fresh() { rm -rf root stand-in calls.log count-* ctr-images && mkdir -p root stand-in && cp -a pristine/. root/; }
run() {
  env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_FIRST_DELAY=1 PIBAKE_API_WAIT=10 \
    PIBAKE_INIT_TIMEOUT=600 PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" PIBAKE_STAND_IN_PARSED="$SCRATCH/parsed" \
    PIBAKE_STAND_IN_CLUSTER="$cluster" PIBAKE_STAND_IN_ETCD="https://127.0.0.1:$(client 1),https://127.0.0.1:$(client 3)" \
    INSTALLED="conntrack curl etcd-client iptables keepalived socat" PIBAKE_STAND_IN_FAULTS= "$@" \
    setsid sh "$SCRATCH/firstboot" >> run.log 2>&1
}
kcalls() { awk '$2 == "kubeadm" { print $2, $3 }' stand-in/calls.log | tr '\n' ' '; }
steps() { tr '\n' ' ' < root/var/lib/pibake/steps; }

# 1. A power cut in check-etcd (after control-plane-prepare wrote certificates and manifests), then
#    the reboot: the second run resets, puts pibake's CA material back, and joins.
fresh
run PIBAKE_STAND_IN_FAULTS="join:check-etcd:cut" && fail "the bootstrap survived a power cut"
[ -e root/etc/kubernetes/manifests/kube-apiserver.yaml ] || fail "the cut join left no manifests (nothing to recover from)"
run || { cat run.log stand-in/calls.log >&2; fail "the join did not recover from the power cut"; }
assert_eq "$(kcalls)" "kubeadm init kubeadm join kubeadm reset kubeadm init kubeadm join " "kubeadm calls"
grep -q "init phase certs etcd-healthcheck-client" stand-in/calls.log || fail "no etcd health-check client certificate was issued"
assert_eq "$(steps)" "packages images keepalived kubeadm-join " "steps"
assert_eq "$(cat root/var/lib/pibake/control-plane-mode)" join "control-plane mode"
grep -q "removing etcd member $old_id (node-2's earlier card) through 127.0.0.1:$(client 1)" run.log ||
  { cat run.log >&2; fail "the stale member was not removed through node-1's etcd"; }
grep -q "an earlier kubeadm join was interrupted or failed" run.log || fail "the resumed run did not reset"
for f in ca.crt ca.key sa.key sa.pub front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key; do
  cmp -s "root/etc/kubernetes/pki/$f" "pristine/etc/kubernetes/pibake/pki/$f" || fail "pki/$f is not pibake's after the reset"
done
assert_eq "$(stat -c %a root/etc/kubernetes/pki/etcd/ca.key)" 600 "mode of etcd/ca.key"
grep -q "systemctl restart keepalived.service" calls.log || fail "keepalived was not started"
# etcd itself: the old member is gone, node-2 is a member again at its address, node-1 and node-3 started.
ctl member list > members.txt
if grep -q "^$old_id," members.txt; then cat members.txt >&2; fail "the stale member $old_id is still in etcd"; fi
grep -q ", https://10.0.0.2:2380, " members.txt || { cat members.txt >&2; fail "kubeadm join did not add node-2 at https://10.0.0.2:2380"; }
assert_eq "$(grep -c ', started, node-[13], ' members.txt)" 2 "started members node-1 and node-3"
assert_eq "$(wc -l < members.txt)" 3 "etcd members"
grep -qx "node-role.kubernetes.io/control-plane=" "$cluster/nodes/node-2" || fail "node-2 is not marked a control plane"
grep -q "kubectl .*-n kube-system delete pod etcd-node-2 --ignore-not-found" stand-in/calls.log ||
  fail "the stale etcd mirror pod was not deleted before the join"
[ -e root/var/lib/pibake/firstboot.done ] || fail "no firstboot.done"
note "joined: $(tr '\n' ';' < members.txt)"

# 2. Run again (a reboot after done): nothing happens.
rm -f stand-in/calls.log
run || fail "the finished bootstrap failed when run again"
[ ! -e stand-in/calls.log ] || fail "a finished bootstrap called kubeadm or kubectl again"

# 3. node-1's card from the same whole-cluster build (it may init) finds node-3's etcd answering,
#    while the endpoint does not: it joins, and never inits.
img1=out/node-1.img
mkdir -p pristine-1/etc
debugfs -R "rdump /etc/kubernetes $SCRATCH/pristine-1/etc" "$img1?offset=$(part_offset "$img1" 2)" >/dev/null 2>&1
debugfs -R "dump /usr/local/sbin/pibake-firstboot $SCRATCH/firstboot-1.img" "$img1?offset=$(part_offset "$img1" 2)" >/dev/null 2>&1
grep -q '^JOIN_ONLY=no$' firstboot-1.img || fail "node-1's card of a whole-cluster build may not init"
point_at_test_etcd firstboot-1.img firstboot-1
rm -rf root stand-in calls.log count-* && mkdir -p root stand-in && cp -a pristine/. root/ && rm -rf root/etc/kubernetes &&
  cp -a pristine-1/etc/kubernetes root/etc/
rm "$cluster/apiserver-up"
: > run.log
cp firstboot-1 firstboot
if run PIBAKE_MAX_DELAY=1 PIBAKE_SLEEP_LIMIT=2 INSTALLED="chrony conntrack curl etcd-client iptables isc-dhcp-server kea-dhcp4-server keepalived socat"; then
  fail "node-1 went on with no endpoint answering"
fi
assert_eq "$(cat root/var/lib/pibake/control-plane-mode 2>/dev/null)" join "node-1's mode with a cluster's etcd answering"
if grep -q "kubeadm init --config" stand-in/calls.log; then fail "node-1 ran kubeadm init though a cluster answered"; fi
touch "$cluster/apiserver-up"
point_at_test_etcd firstboot.img firstboot

# 4. No other control plane's etcd answers: the script keeps waiting (its sleep stub ends it) and
#    never calls kubeadm join.
stop_etcd 1
stop_etcd 3
rm -f etcd-1.pid etcd-3.pid
fresh
: > run.log
if run PIBAKE_MAX_DELAY=1 PIBAKE_SLEEP_LIMIT=2; then fail "the bootstrap went on with no etcd answering"; fi
grep -q "no other control plane's etcd answers (127.0.0.1:$(client 1) 127.0.0.1:$(client 3))" run.log ||
  { cat run.log >&2; fail "the wait for etcd was not logged"; }
if grep -q "kubeadm join" stand-in/calls.log; then fail "kubeadm join ran with no etcd answering"; fi
