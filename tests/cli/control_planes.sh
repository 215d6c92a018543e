#!/usr/bin/env bash
# Three control planes (docs/cluster.md, "Several control planes"): every control plane's files read
# back from its image with debugfs: keepalived holds the virtual IP, kubeadm's configurations name
# it as controlPlaneEndpoint and in the certificate's names, the discovery kubeconfig carries the
# node's own client certificate (openssl verify), every kubeconfig points at the VIP; the first
# control plane of a whole-cluster build may init and every other joins, a rebuilt one (node-1
# too) only joins; the recorded VIP cannot move. The scripts run in tests/cli/bootstrap.sh.
source "$(dirname "$0")/lib.bash"
require_tool debugfs openssl e2fsck python3 sh
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
printf 'nodes: {count: 4, control_planes: 3}\n' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
state=pibake-state
vip=10.0.0.254

dump() {  # dump IMG PATH OUT: a file from the image's root filesystem, with debugfs
  rm -f "$3"
  debugfs -R "dump $2 $SCRATCH/$3" "$1?offset=$(part_offset "$1" 2)" >/dev/null 2>&1
  [ -f "$3" ] || fail "$1: $2 missing"
}
absent() { ! debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | grep -q "Mode:"; }
mode_of() { debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p'; }
server_of() { sed -n 's/^ *server: //p' "$1" | tr -d '"'; }

# The state dir records the VIP pibake picked, so a node added later cannot move it.
grep -q "api_vip: $vip\$" "$state/cluster.yaml" || fail "the state dir's cluster.yaml does not record api_vip $vip"
assert_eq "$(server_of out/admin.kubeconfig)" "https://$vip:6443" "admin.kubeconfig server"

for k in 1 2 3; do
  img=out/node-$k.img
  check_image "$img"
  dump "$img" /etc/keepalived/keepalived.conf keepalived.conf
  assert_contains keepalived.conf "$vip/24 dev eth0"
  assert_contains keepalived.conf "unicast_src_ip 10.0.0.$k"
  assert_contains keepalived.conf "priority $((150 - k))"
  for j in 1 2 3; do
    if [ "$j" != "$k" ]; then assert_contains keepalived.conf "        10.0.0.$j"; fi
  done
  if grep -q "^        10.0.0.$k\$" keepalived.conf; then fail "node-$k lists itself as a VRRP peer"; fi
  # keepalived's own parser: every problem is a line; the one expected here is the health check
  # script, which lives in the image, not on this machine (its exit status is 5 for that alone).
  if command -v keepalived >/dev/null; then
    keepalived --config-test --use-file "$SCRATCH/keepalived.conf" > ka.log 2>&1 || true
    if grep -v '^Disabling track script pibake_apiserver since not found/accessible$' ka.log | grep -q .; then
      cat ka.log >&2
      fail "keepalived --config-test finds problems in node-$k's configuration"
    fi
    [ "$k" != 1 ] || note "keepalived --config-test: $(wc -l < ka.log) line(s), only the absent health check script"
  else
    [ "$k" != 1 ] || note "keepalived not installed: its configuration is checked with grep only"
  fi
  assert_eq "$(mode_of "$img" /usr/local/sbin/pibake-apiserver-check)" 0755 "node-$k health check mode"
  dump "$img" /usr/local/sbin/pibake-apiserver-check check
  sh -n check || fail "node-$k's health check does not parse"
  # kubeadm: init and join configurations, the VIP as the endpoint and in the certificate.
  dump "$img" /etc/kubernetes/pibake/kubeadm-init.yaml init.yaml
  dump "$img" /etc/kubernetes/pibake/kubeadm-join.yaml join.yaml
  assert_eq "$(mode_of "$img" /etc/kubernetes/pibake/kubeadm-join.yaml)" 0600 "node-$k kubeadm-join.yaml mode"
  python3 - init.yaml join.yaml "$k" "$vip" <<'PY' || fail "node-$k's kubeadm configuration"
import sys, yaml
init, join, k, vip = list(yaml.safe_load_all(open(sys.argv[1]))), yaml.safe_load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
cluster = [d for d in init if d["kind"] == "ClusterConfiguration"][0]
assert cluster["controlPlaneEndpoint"] == vip + ":6443", cluster["controlPlaneEndpoint"]
sans = cluster["apiServer"]["certSANs"]
for want in [vip, "10.0.0.1", "10.0.0.2", "10.0.0.3", "node-1", "node-2.cluster.home", "node-3"]:
    assert want in sans, (want, sans)
assert join["kind"] == "JoinConfiguration"
assert join["discovery"]["file"]["kubeConfigPath"] == "/etc/kubernetes/pibake/discovery.conf"
assert join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == "10.0.0." + k
assert join["nodeRegistration"]["name"] == "node-" + k
assert "taints" not in join["nodeRegistration"], "node-4 is a worker: the control planes keep their taint"
PY
  # Discovery: the node's own client certificate from the cluster CA, pointing at the VIP, 0600.
  dump "$img" /etc/kubernetes/pibake/discovery.conf discovery.conf
  assert_eq "$(mode_of "$img" /etc/kubernetes/pibake/discovery.conf)" 0600 "node-$k discovery.conf mode"
  assert_eq "$(server_of discovery.conf)" "https://$vip:6443" "node-$k discovery.conf server"
  sed -n 's/^ *client-certificate-data: //p' discovery.conf | base64 -d > client.crt
  openssl verify -CAfile "$state/pki/ca.crt" client.crt >/dev/null || fail "node-$k's discovery certificate does not verify"
  assert_eq "$(openssl x509 -in client.crt -noout -subject -nameopt RFC2253)" "subject=CN=system:node:node-$k,O=system:nodes" \
    "node-$k discovery certificate subject"
  cmp -s discovery.conf "$state/nodes/node-$k/kubelet.conf" || fail "node-$k's discovery.conf is not the one kept in the state dir"
  # Every control plane carries the shared CA material kubeadm join --control-plane needs.
  for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub; do
    dump "$img" "/etc/kubernetes/pki/$f" got
    cmp -s got "$state/pki/$f" || fail "node-$k's /etc/kubernetes/pki/$f differs from the state dir's"
  done
  dump "$img" /usr/local/sbin/pibake-firstboot firstboot
  assert_contains firstboot "ENDPOINT=$vip"
  assert_contains firstboot "JOIN_ONLY=$([ "$k" = 1 ] && echo no || echo yes)"
  # A first build: the card that may init looks for a running cluster once.
  assert_contains firstboot 'INIT_WAIT=${PIBAKE_INIT_WAIT:-0}'
  assert_contains firstboot 'ETCD_ENDPOINTS="'"$(for j in 1 2 3; do [ "$j" = "$k" ] || printf '10.0.0.%s:2379 ' "$j"; done | sed 's/ $//')"'"'
done

# The worker: no keepalived, no CA key, its kubelet on the VIP.
w=out/node-4.img
absent "$w" /etc/keepalived/keepalived.conf || fail "the worker has a keepalived configuration"
absent "$w" /etc/kubernetes/pki/ca.key || fail "the worker has the CA key"
dump "$w" /etc/kubernetes/kubelet.conf kubelet.conf
assert_eq "$(server_of kubelet.conf)" "https://$vip:6443" "node-4 kubelet.conf server"

# Rebuilding a control plane, node-1 included, gives a card that only joins.
for k in 1 2; do
  pibake_ok build --base-image base.img --out "again-$k" --node "node-$k"
  dump "again-$k/node-$k.img" /usr/local/sbin/pibake-firstboot firstboot
  assert_contains firstboot "JOIN_ONLY=yes"
  dump "again-$k/node-$k.img" /etc/kubernetes/pibake/discovery.conf again.conf
  cmp -s again.conf "$state/nodes/node-$k/kubelet.conf" || fail "a rebuilt node-$k got new kubelet credentials"
done

# Built again whole (a worker added): node-1 may still init, but only after looking for the
# cluster it may have formed for 10 minutes.
pibake_ok build --base-image base.img --out whole --nodes 5
dump whole/node-1.img /usr/local/sbin/pibake-firstboot firstboot
assert_contains firstboot "JOIN_ONLY=no"
assert_contains firstboot 'INIT_WAIT=${PIBAKE_INIT_WAIT:-600}'

# The control planes are fixed at the first build: one left out, or one more, is refused.
cat > fewer.yaml <<YAML
nodes:
  - {name: node-1, role: control-plane}
  - {name: node-4, ip: 10.0.0.4}
kubernetes: {api_vip: $vip}
YAML
sed -n '/^mirrors:/,$p' cluster.yaml >> fewer.yaml
if pibake build -c fewer.yaml --base-image base.img --out fewer; then fail "a spec without node-3, a control plane, was accepted"; fi
assert_contains "$SCRATCH/err.log" 'the control planes was "node-1, node-2, node-3", now "node-1"'
[ ! -e fewer ] || fail "a refused build wrote out/"

# The endpoint cannot move: a VIP written differently.
cp cluster.yaml moved.yaml
printf 'kubernetes: {api_vip: 10.0.0.250}\n' >> moved.yaml
if pibake build -c moved.yaml --base-image base.img --out moved; then fail "a moved api_vip was accepted"; fi
assert_contains "$SCRATCH/err.log" 'the API server endpoint (kubernetes.api_vip, or the control plane'"'"'s address) was "10.0.0.254", now "10.0.0.250"'
[ ! -e moved ] || fail "a refused build wrote out/"
