#!/usr/bin/env bash
# The cluster's keys: node-1 gets the CAs kubeadm init reuses, workers get only ca.crt and their
# own kubelet credentials; every chain verifies with openssl; the printed discovery hash is seed
# 004's openssl pipeline; regenerating one node touches nothing else; a spec that would break the
# running cluster is refused.
source "$(dirname "$0")/lib.bash"
require_tool debugfs openssl sfdisk mtype e2fsck fsck.fat python3
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
echo 'nodes: {count: 3}' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
state=pibake-state

# State dir and its keys: 0700 and 0600.
assert_eq "$(stat -c %a $state)" 700 "state dir mode"
for k in ca.key front-proxy-ca.key etcd/ca.key sa.key; do
  assert_eq "$(stat -c %a $state/pki/$k)" 600 "$k mode"
done
assert_eq "$(stat -c %a out/admin.kubeconfig)" 600 "admin.kubeconfig mode"

dump() {  # dump IMG PATH OUT: a file from the image's root filesystem, with debugfs
  rm -f "$3"
  debugfs -R "dump $2 $SCRATCH/$3" "$1?offset=$(part_offset "$1" 2)" >/dev/null 2>&1
  [ -f "$3" ] || fail "$1: $2 missing"
}
mode_of() { debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p'; }

# node-1: the very CA material of the state dir, keys 0600.
n1=out/node-1.img
check_image "$n1"
for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub; do
  dump "$n1" "/etc/kubernetes/pki/$f" got
  cmp -s got "$state/pki/$f" || fail "node-1's /etc/kubernetes/pki/$f differs from the state dir's"
done
for f in ca.key sa.key etcd/ca.key front-proxy-ca.key; do
  assert_eq "$(mode_of "$n1" /etc/kubernetes/pki/$f)" 0600 "node-1 $f mode"
done
openssl x509 -in "$state/pki/ca.crt" -noout -text > ca.txt
assert_contains ca.txt "CA:TRUE"
assert_contains ca.txt "Certificate Sign"

# The kubeadm config: the fields the cluster depends on, root-only (it holds the bootstrap token).
dump "$n1" /etc/kubernetes/pibake/kubeadm-init.yaml kubeadm.yaml
assert_eq "$(mode_of "$n1" /etc/kubernetes/pibake/kubeadm-init.yaml)" 0600 "kubeadm-init.yaml mode"
for want in "apiVersion: kubeadm.k8s.io/v1beta4" "kind: InitConfiguration" "kind: ClusterConfiguration" \
    "advertiseAddress: 10.0.0.1" "podSubnet: 10.244.0.0/16" "serviceSubnet: 10.96.0.0/12" \
    "kubernetesVersion: v1.37.1" "imageRepository: registry.k8s.io" '- "kubernetes.cluster.home"' \
    '- "10.0.0.1"' "criSocket: unix:///run/containerd/containerd.sock" "cgroupDriver: systemd" \
    "token: \"$(cat $state/pki/bootstrap-token)\""; do
  assert_contains kubeadm.yaml "$want"
done
assert_yaml kubeadm.yaml "kubeadm.k8s.io/v1beta4 InitConfiguration" "kubeadm.k8s.io/v1beta4 ClusterConfiguration" \
  "kubelet.config.k8s.io/v1beta1 KubeletConfiguration"
dump "$n1" /etc/kubernetes/pibake/cni.yaml cni.yaml
assert_yaml cni.yaml "v1 Namespace" "rbac.authorization.k8s.io/v1 ClusterRole" \
  "rbac.authorization.k8s.io/v1 ClusterRoleBinding" "v1 ServiceAccount" "v1 ConfigMap" "apps/v1 DaemonSet"
# Flannel's net-conf.json, parsed out of the parsed ConfigMap.
python3 - cni.yaml > netconf.txt <<'PY' || fail "cni.yaml: no kube-flannel-cfg net-conf.json"
import json, sys, yaml
cm = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "ConfigMap"][0]
c = json.loads(cm["data"]["net-conf.json"])
print(c["Network"], c["Backend"]["Type"])
PY
assert_eq "$(cat netconf.txt)" "10.244.0.0/16 host-gw" "Flannel Network and backend"
# Every other YAML file pibake writes parses: the state dir's lock file and spec, the spec in out/,
# the admin kubeconfig and the kubelet kubeconfigs.
yaml_docs "$state/lock.yaml" >/dev/null
yaml_docs "$state/cluster.yaml" >/dev/null
yaml_docs out/cluster.yaml >/dev/null
assert_yaml out/admin.kubeconfig "v1 Config"
for f in "$state"/nodes/*/kubelet.conf; do assert_yaml "$f" "v1 Config"; done

# Workers: ca.crt and their own kubelet credentials, never a CA key or the SA key.
cakey_line=$(sed -n 5p "$state/pki/ca.key")
for k in 2 3; do
  w=out/node-$k.img
  check_image "$w"
  off=$(part_offset "$w" 2)
  for f in ca.key front-proxy-ca.key etcd/ca.key sa.key sa.pub front-proxy-ca.crt; do
    if debugfs -R "stat /etc/kubernetes/pki/$f" "$w?offset=$off" 2>&1 | grep "Inode:" >/dev/null; then fail "worker node-$k has $f"; fi
  done
  # Nowhere in the whole image, not even in a stray file: a line of the CA key.
  if grep -aqF -- "$cakey_line" "$w"; then fail "worker node-$k contains the CA key"; fi
  dump "$w" /etc/kubernetes/pki/ca.crt wca.crt
  cmp -s wca.crt "$state/pki/ca.crt" || fail "node-$k's ca.crt is not the cluster CA"
  dump "$w" /etc/kubernetes/kubelet.conf kubelet.conf
  assert_eq "$(mode_of "$w" /etc/kubernetes/kubelet.conf)" 0600 "node-$k kubelet.conf mode"
  assert_yaml kubelet.conf "v1 Config"
  grep -q "server: \"https://10.0.0.1:6443\"" kubelet.conf || fail "node-$k kubelet.conf does not point at https://10.0.0.1:6443"
  sed -n 's/^ *client-certificate-data: //p' kubelet.conf | base64 -d > kubelet.crt
  openssl verify -CAfile "$state/pki/ca.crt" kubelet.crt >/dev/null || fail "node-$k's kubelet certificate does not verify"
  subject=$(openssl x509 -in kubelet.crt -noout -subject -nameopt RFC2253)
  case "$subject" in *"CN=system:node:node-$k"*"O=system:nodes"*|*"O=system:nodes"*"CN=system:node:node-$k"*) ;;
    *) fail "node-$k's kubelet certificate subject is '$subject'" ;; esac
  # To a file first: `openssl | grep -q` under pipefail fails when grep exits early (SIGPIPE).
  openssl x509 -in kubelet.crt -noout -text > kubelet.txt
  grep -q "TLS Web Client Authentication" kubelet.txt || fail "kubelet cert lacks clientAuth"
  grep -q "Public Key Algorithm: rsaEncryption" kubelet.txt || fail "kubelet key is not RSA"
  dump "$w" /var/lib/kubelet/config.yaml kcfg.yaml
  assert_yaml kcfg.yaml "kubelet.config.k8s.io/v1beta1 KubeletConfiguration"
  assert_contains kcfg.yaml "clientCAFile: /etc/kubernetes/pki/ca.crt"
  assert_contains kcfg.yaml "cgroupDriver: systemd"
  assert_contains kcfg.yaml "- 10.96.0.10"
  # The directory staticPodPath names exists (else the kubelet logs an error on every sync).
  static_dir=$(sed -n 's/^staticPodPath: //p' kcfg.yaml)
  assert_eq "$static_dir" /etc/kubernetes/manifests "node-$k staticPodPath"
  debugfs -R "stat $static_dir" "$w?offset=$(part_offset "$w" 2)" 2>/dev/null | grep "Type: directory" >/dev/null \
    || fail "node-$k has no directory $static_dir"
  assert_eq "$(mode_of "$w" "$static_dir")" 0755 "node-$k $static_dir mode"
done

# The admin kubeconfig verifies, and kubectl (when installed) reads it.
sed -n 's/^ *client-certificate-data: //p' out/admin.kubeconfig | base64 -d > admin.crt
openssl verify -CAfile "$state/pki/ca.crt" admin.crt >/dev/null || fail "admin certificate does not verify"
if command -v kubectl >/dev/null; then
  kubectl config view --kubeconfig out/admin.kubeconfig --raw >/dev/null || fail "kubectl cannot read admin.kubeconfig"
elif [ "${CI:-}" = true ]; then
  fail "kubectl is not installed (apt-get install kubernetes-client); under CI=true a skipped check is a failure"
else
  echo "note: kubectl not installed; admin.kubeconfig checked with openssl and python3-yaml only"
fi

# The printed join line carries seed 004's hash.
want_hash=$(openssl x509 -pubkey -in "$state/pki/ca.crt" -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* //')
assert_contains out.log "--discovery-token-ca-cert-hash sha256:$want_hash"
if grep -qF "$(cat $state/pki/bootstrap-token)" out.log err.log; then fail "the bootstrap token was printed"; fi

# `pibake kubeconfig`: a fresh admin kubeconfig from the state dir at any time (new key and
# certificate, 1 year), 0600, verified by openssl; the PKI is untouched; later builds hand it out.
pki_before=$(cd $state && find pki -type f | sort | xargs sha256sum)
pibake_ok kubeconfig -o fresh/admin.kubeconfig
assert_eq "$(stat -c %a fresh/admin.kubeconfig)" 600 "pibake kubeconfig output mode"
assert_contains out.log "wrote fresh/admin.kubeconfig"
sed -n 's/^ *client-certificate-data: //p' fresh/admin.kubeconfig | base64 -d > fresh.crt
openssl verify -CAfile "$state/pki/ca.crt" fresh.crt >/dev/null || fail "the fresh admin certificate does not verify"
[ "$(openssl x509 -in fresh.crt -noout -serial)" != "$(openssl x509 -in admin.crt -noout -serial)" ] || fail "pibake kubeconfig did not issue a new certificate"
openssl x509 -in fresh.crt -noout -subject -nameopt RFC2253 | grep "CN=kubernetes-admin" >/dev/null || fail "fresh admin certificate subject"
openssl x509 -in fresh.crt -noout -checkend $((364 * 86400)) >/dev/null || fail "the fresh admin certificate ends within 364 days"
if openssl x509 -in fresh.crt -noout -checkend $((366 * 86400)) >/dev/null; then fail "the fresh admin certificate lasts over 366 days"; fi
grep -q 'server: "https://10.0.0.1:6443"' fresh/admin.kubeconfig || fail "the fresh kubeconfig does not point at node-1"
cmp -s fresh/admin.kubeconfig $state/admin.kubeconfig || fail "the state dir does not keep the fresh admin kubeconfig"
assert_eq "$(cd $state && find pki -type f | sort | xargs sha256sum)" "$pki_before" "the PKI after pibake kubeconfig"
pibake_ok kubeconfig -o -
grep -q "client-key-data:" out.log || fail "pibake kubeconfig -o - printed no kubeconfig"
assert_contains err.log "kubernetes-admin certificate valid until"
# Without a cluster (no state dir): refused, and no CA is created.
mkdir -p empty && chmod 0777 empty && echo 'nodes: {count: 3}' > empty/cluster.yaml
if pibake kubeconfig -c empty/cluster.yaml -o empty/k; then fail "pibake kubeconfig without a state dir succeeded"; fi
assert_contains err.log "no cluster in empty/pibake-state"
[ ! -e empty/pibake-state ] && [ ! -e empty/k ] || fail "pibake kubeconfig without a cluster created files"

# Regenerate node-3: same image (its credentials are kept), everything else untouched.
sums_before=$(cd out && sha256sum node-1.img node-2.img node-3.img)
pki_before=$(cd $state && find pki -type f | sort | xargs sha256sum)
rm out/node-3.img
pibake_ok build --base-image base.img --out out --node node-3
assert_eq "$(cd out && sha256sum node-1.img node-2.img node-3.img)" "$sums_before" "images after regenerating node-3"
assert_eq "$(cd $state && find pki -type f | sort | xargs sha256sum)" "$pki_before" "the PKI after regenerating node-3"
cmp -s out/admin.kubeconfig $state/admin.kubeconfig || fail "the next build did not hand out the fresh admin kubeconfig"
if cmp -s out/admin.kubeconfig fresh/admin.kubeconfig; then fail "the kubeconfig printed by -o - was not kept"; fi
if grep -q "only control plane" "$SCRATCH/err.log"; then fail "regenerating a worker warned about the control plane"; fi
# Regenerating the only control plane warns that its card starts a new, empty cluster.
pibake_ok build --base-image base.img --out out-cp --node node-1
assert_contains "$SCRATCH/err.log" "warning: node-1 is the cluster's only control plane: its new card runs kubeadm init and starts a new, empty cluster"
assert_contains "$SCRATCH/err.log" "Restore the cluster's objects with --etcd-snapshot FILE, a snapshot you copied off node-1 earlier"

# A changed subnet would strand the running cluster: refused, nothing written.
sed -i '1i network: {subnet: 10.1.0.0/24, dhcp_range: 10.1.0.100-10.1.0.200}' cluster.yaml
if pibake build --base-image base.img --out out5; then fail "a changed subnet was accepted"; fi
assert_contains err.log 'network.subnet was "10.0.0.0/24", now "10.1.0.0/24"'
assert_no_images out5
echo "ok: CA chains verify, workers hold no CA key, hash matches seed 004, regeneration is exact"
