#!/usr/bin/env bash
# kubernetes.mode: hard-way (issue 14, docs/hard-way.md), checked on the images with tools that did
# not write them: nothing of kubeadm on any card and no bootstrap token; every certificate verified
# by `openssl verify` against the CA it must chain to, with its subject, usages and names; each key
# the one of its certificate; each node holding only what it runs; every kubeconfig read by
# `kubectl config view`; every unit through `systemd-analyze verify`; the etcd unit's own command
# line run with a real etcd (Debian's) on 127.0.0.1 and pibake's certificates, checked with etcdctl
# using the API server's etcd client certificate; the pod ranges, bridge configurations and static
# routes; a regenerated worker identical, with the same pod range.
source "$(dirname "$0")/lib.bash"
require_tool debugfs openssl kubectl systemd-analyze etcd etcdctl python3 netplan
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
printf 'nodes: {count: 3}\nkubernetes: {mode: hard-way}\nnetwork: {uplink: {interface: eth1}}\n' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
state=pibake-state
cp=out/node-1.img

# dump_tree IMG DIR OUT: DIR of the image's root filesystem into OUT (debugfs rdump).
dump_tree() {
  rm -rf "$3"; mkdir -p "$3"
  debugfs -R "rdump $2 $SCRATCH/$3" "$1?offset=$(part_offset "$1" 2)" >/dev/null 2>&1
  [ -d "$3/$(basename "$2")" ] || fail "$1: $2 missing"
}
exists() { debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | grep -q "Mode:"; }
mode_of() { debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p'; }

# 1. No kubeadm: not installed, no configuration for it, no token in the state dir.
[ ! -e "$state/pki/bootstrap-token" ] || fail "the state dir holds a bootstrap token in hard-way mode"
grep -q "kubeadm" "$state/lock.yaml" && fail "lock.yaml pins kubeadm in hard-way mode"
for k in 1 2 3; do
  img=out/node-$k.img
  check_image "$img"
  for f in /usr/local/bin/kubeadm /etc/kubernetes/pibake/kubeadm-init.yaml /etc/systemd/system/kubelet.service.d/10-kubeadm.conf \
    /etc/kubernetes/bootstrap-kubelet.conf; do
    exists "$img" "$f" && fail "node-$k has $f in hard-way mode"
  done
  root_cat "$img" /etc/pibake/node.json > node.json
  grep -qi "bootstrap" node.json && fail "node-$k's node.json mentions a bootstrap token"
done
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl; do
  grep -q "^  $b:" "$state/lock.yaml" || fail "lock.yaml does not pin $b"
done
grep -q "^  etcd:" "$state/lock.yaml" || fail "lock.yaml does not pin etcd"

# 2. Certificates: each chains to its CA, says what Kubernetes' PKI documentation requires, and
# matches its key. Rows: file stem | CA | subject | extended key usage | names (sorted, or -).
ca=$state/pki
expect() {
  cat <<EOF
apiserver|ca|CN=kube-apiserver|TLS Web Server Authentication|DNS:kubernetes,DNS:kubernetes.cluster.home,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:node-1,DNS:node-1.cluster.home,IP Address:10.0.0.1,IP Address:10.96.0.1,IP Address:127.0.0.1
apiserver-kubelet-client|ca|CN=kube-apiserver-kubelet-client|TLS Web Client Authentication|-
apiserver-etcd-client|etcd/ca|CN=kube-apiserver-etcd-client|TLS Web Client Authentication|-
front-proxy-client|front-proxy-ca|CN=front-proxy-client|TLS Web Client Authentication|-
controller-manager|ca|CN=system:kube-controller-manager|TLS Web Client Authentication|-
scheduler|ca|CN=system:kube-scheduler|TLS Web Client Authentication|-
etcd/server-node-1|etcd/ca|CN=node-1|TLS Web Server Authentication, TLS Web Client Authentication|DNS:localhost,DNS:node-1,DNS:node-1.cluster.home,IP Address:10.0.0.1,IP Address:127.0.0.1
etcd/peer-node-1|etcd/ca|CN=node-1|TLS Web Server Authentication, TLS Web Client Authentication|DNS:localhost,DNS:node-1,DNS:node-1.cluster.home,IP Address:10.0.0.1,IP Address:127.0.0.1
kube-proxy|ca|CN=system:kube-proxy|TLS Web Client Authentication|-
EOF
  for k in 1 2 3; do
    echo "kubelet-client-node-$k|ca|O=system:nodes, CN=system:node:node-$k|TLS Web Client Authentication|-"
    echo "kubelet-serving-node-$k|ca|O=system:nodes, CN=system:node:node-$k|TLS Web Server Authentication|DNS:node-$k,DNS:node-$k.cluster.home,IP Address:10.0.0.$k"
  done
}
for k in 1 2 3; do dump_tree "out/node-$k.img" /etc/kubernetes "kube$k"; done
pki1=kube1/kubernetes/pki
checked=0
while IFS='|' read -r stem issuer subject usage names; do
  crt=""
  for k in 1 2 3; do
    [ -f "kube$k/kubernetes/pki/$stem.crt" ] && { crt=kube$k/kubernetes/pki/$stem.crt; break; }
  done
  [ -n "$crt" ] || fail "no node holds $stem.crt"
  openssl verify -CAfile "$ca/$issuer.crt" "$crt" > verify.log 2>&1 || { cat verify.log >&2; fail "$stem.crt does not chain to $issuer.crt"; }
  assert_eq "$(openssl x509 -in "$crt" -noout -subject -nameopt sep_comma_plus_space | sed 's/^subject=//')" "$subject" "$stem subject"
  assert_eq "$(openssl x509 -in "$crt" -noout -ext extendedKeyUsage | sed -n '2p' | sed 's/^ *//')" "$usage" "$stem usages"
  got=$(openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | sed -n '2p' | tr -d ' ' | tr ',' '\n' | sort | paste -sd, -)
  want=$(echo "$names" | tr -d ' ' | tr ',' '\n' | sort | paste -sd, -)
  [ "$names" = - ] && want=""
  assert_eq "$got" "$want" "$stem subjectAltName"
  openssl x509 -in "$crt" -noout -ext keyUsage | grep -q "Digital Signature" || fail "$stem lacks keyUsage digitalSignature"
  key=${crt%.crt}.key
  assert_eq "$(openssl pkey -in "$key" -pubout 2>/dev/null | sha256sum)" "$(openssl x509 -in "$crt" -noout -pubkey | sha256sum)" "$stem key matches its certificate"
  for k in 1 2 3; do
    if exists "out/node-$k.img" "/etc/kubernetes/pki/$stem.key"; then
      assert_eq "$(mode_of "out/node-$k.img" "/etc/kubernetes/pki/$stem.key")" 0600 "node-$k's $stem.key mode"
    fi
  done
  checked=$((checked + 1))
done < <(expect)
note "openssl verify, subject, usages, names and key of $checked certificates"

# 3. Each node holds only what it runs: the control plane the CAs' certificates, the cluster CA's key
# (the controller-manager signs CSRs) and sa.key; never the etcd or front-proxy CA key. A worker
# only its own kubelet's and kube-proxy's credentials and the cluster CA certificate.
files_of() { (cd "$1/kubernetes/pki" && find . -type f | sed 's|^\./||' | sort | paste -sd' ' -); }
assert_eq "$(files_of kube1)" "apiserver-etcd-client.crt apiserver-etcd-client.key apiserver-kubelet-client.crt apiserver-kubelet-client.key apiserver.crt apiserver.key ca.crt ca.key controller-manager.crt controller-manager.key etcd/ca.crt etcd/peer-node-1.crt etcd/peer-node-1.key etcd/server-node-1.crt etcd/server-node-1.key front-proxy-ca.crt front-proxy-client.crt front-proxy-client.key kube-proxy.crt kube-proxy.key kubelet-client-node-1.crt kubelet-client-node-1.key kubelet-serving-node-1.crt kubelet-serving-node-1.key sa.key sa.pub scheduler.crt scheduler.key" "node-1's /etc/kubernetes/pki"
for k in 2 3; do
  assert_eq "$(files_of "kube$k")" "ca.crt kube-proxy.crt kube-proxy.key kubelet-client-node-$k.crt kubelet-client-node-$k.key kubelet-serving-node-$k.crt kubelet-serving-node-$k.key" "node-$k's /etc/kubernetes/pki"
  for f in admin.conf super-admin.conf controller-manager.conf scheduler.conf encryption-config.yaml; do
    [ ! -e "kube$k/kubernetes/$f" ] || fail "worker node-$k has $f"
  done
done

# 4. kubeconfigs, read by kubectl: server, user, and a client certificate that chains to the CA.
check_kubeconfig() {  # check_kubeconfig FILE SERVER USER
  local f=$1
  assert_eq "$(kubectl config view --kubeconfig "$f" -o jsonpath='{.clusters[0].cluster.server}')" "$2" "$f server"
  assert_eq "$(kubectl config view --kubeconfig "$f" -o jsonpath='{.users[0].name}')" "$3" "$f user"
  kubectl config view --kubeconfig "$f" --raw -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > kc.crt
  kubectl config view --kubeconfig "$f" --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > kc-ca.crt
  cmp -s kc-ca.crt "$ca/ca.crt" || fail "$f does not carry the cluster CA"
  openssl verify -CAfile "$ca/ca.crt" kc.crt >/dev/null 2>&1 || fail "$f's client certificate does not chain to the cluster CA"
  assert_eq "$(openssl x509 -in kc.crt -noout -subject -nameopt sep_comma_plus_space | sed 's/^subject=//' | sed 's/.*CN=//')" "$3" "$f certificate CN"
}
check_kubeconfig kube1/kubernetes/controller-manager.conf https://127.0.0.1:6443 system:kube-controller-manager
check_kubeconfig kube1/kubernetes/scheduler.conf https://127.0.0.1:6443 system:kube-scheduler
check_kubeconfig kube1/kubernetes/admin.conf https://127.0.0.1:6443 kubernetes-admin
check_kubeconfig kube1/kubernetes/super-admin.conf https://127.0.0.1:6443 kubernetes-super-admin
for k in 1 2 3; do
  check_kubeconfig "kube$k/kubernetes/kubelet.conf" https://10.0.0.1:6443 "system:node:node-$k"
  check_kubeconfig "kube$k/kubernetes/kube-proxy.conf" https://10.0.0.1:6443 system:kube-proxy
done
check_kubeconfig out/admin.kubeconfig https://10.0.0.1:6443 kubernetes-admin
assert_eq "$(mode_of "$cp" /etc/kubernetes/encryption-config.yaml)" 0600 "encryption-config.yaml mode"
assert_yaml kube1/kubernetes/encryption-config.yaml "apiserver.config.k8s.io/v1 EncryptionConfiguration"
note "kubectl config view: 11 node kubeconfigs and out/admin.kubeconfig"

# 5. The units, through systemd-analyze verify against a root with systemd's units and the programs
# they start, taken from the image (links followed).
vroot=$SCRATCH/vroot
mkdir -p "$vroot/usr/lib/systemd" "$vroot/sbin"
cp -a /usr/lib/systemd/system "$vroot/usr/lib/systemd/"
ln -sf "$(command -v modprobe || echo /bin/true)" "$vroot/sbin/modprobe"
copy_exe() {  # copy_exe IMG PATH: PATH into the verify root, a link's target too
  local target
  mkdir -p "$vroot$(dirname "$2")"
  target=$(debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null | sed -n 's/.*Fast link dest: "\(.*\)"/\1/p')
  if [ -n "$target" ]; then copy_exe "$1" "$target"; ln -sf "$target" "$vroot$2"; return; fi
  root_cat "$1" "$2" > "$vroot$2"; chmod 755 "$vroot$2"
  [ -s "$vroot$2" ] || fail "$1 has no $2"
}
verify_units() {  # verify_units IMG UNIT...
  local img=$1 u exe
  shift
  for u in "$@"; do
    mkdir -p "$vroot$(dirname "$u")"
    root_cat "$img" "$u" > "$vroot$u"
    [ -s "$vroot$u" ] || fail "$img has no $u"
    for exe in $(sed -n 's/^Exec[A-Za-z]*=-\{0,1\}\([^ ]*\).*/\1/p' "$vroot$u"); do
      [ -e "$vroot$exe" ] || copy_exe "$img" "$exe"
    done
  done
  for u in "$@"; do
    systemd-analyze verify --root="$vroot" "$u" > verify.log 2>&1 || { cat verify.log >&2; fail "systemd-analyze verify rejects $u"; }
    if grep -i "$(basename "$u")" verify.log; then fail "systemd-analyze warns about $u"; fi
  done
}
mkdir -p "$vroot/etc/systemd/system/kubelet.service.d"
root_cat "$cp" /etc/systemd/system/kubelet.service.d/10-pibake-hard-way.conf > "$vroot/etc/systemd/system/kubelet.service.d/10-pibake-hard-way.conf"
control_units="/etc/systemd/system/etcd.service /etc/systemd/system/kube-apiserver.service
  /etc/systemd/system/kube-controller-manager.service /etc/systemd/system/kube-scheduler.service"
node_units="/etc/systemd/system/kubelet.service /etc/systemd/system/kube-proxy.service
  /etc/systemd/system/pibake-firstboot.service /usr/local/lib/systemd/system/containerd.service"
# shellcheck disable=SC2086 # unit paths have no spaces
verify_units "$cp" $control_units $node_units
for u in $control_units $node_units; do
  case $u in */containerd.service) wants=multi-user.target.wants/containerd.service ;; *) wants=multi-user.target.wants/$(basename "$u") ;; esac
  exists "$cp" "/etc/systemd/system/$wants" || fail "node-1 does not enable $(basename "$u")"
done
for k in 2 3; do
  for u in $control_units; do exists "out/node-$k.img" "$u" && fail "worker node-$k has $u"; done
  exists "out/node-$k.img" /usr/local/bin/kube-apiserver && fail "worker node-$k carries kube-apiserver"
  exists "out/node-$k.img" /opt/etcd/etcd && fail "worker node-$k carries etcd"
  exists "out/node-$k.img" /etc/systemd/system/multi-user.target.wants/kube-proxy.service || fail "node-$k does not enable kube-proxy"
done
note "systemd-analyze verify: $(echo $control_units $node_units | wc -w) units of node-1"

# 6. A real etcd runs the etcd unit's command line, with pibake's certificates: every path under
# /etc/kubernetes and /var/lib/etcd mapped into this scratch dir, node-1's address to 127.0.0.1 and
# the ports to free ones. etcdctl then reaches it with the API server's etcd client certificate,
# and a client without a certificate, or with one from the cluster CA (kube-proxy's), is refused.
port=$((20000 + RANDOM % 12000)); peer=$((port + 1))  # below the ephemeral range (32768-)
# exec_start UNIT: the unit's (last non-empty) ExecStart, continuation lines joined, from node-1's vroot.
exec_start() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$vroot$1" | sed -n 's/^ExecStart=\(.\)/\1/p' | tail -n 1; }
line=$(exec_start /etc/systemd/system/etcd.service)
[ -n "$line" ] || fail "etcd.service has no ExecStart"
mkdir -p etcd-data && chmod 700 etcd-data
# shellcheck disable=SC2001
cmd=$(echo "$line" | sed -e "s|/etc/kubernetes|$SCRATCH/kube1/kubernetes|g" -e "s|/var/lib/etcd|$SCRATCH/etcd-data|g" \
  -e "s|10\.0\.0\.1|127.0.0.1|g" -e "s|:2379|:$port|g" -e "s|:2380|:$peer|g" -e "s|:2381|:$((port + 2))|g" -e 's|^/usr/local/bin/etcd|etcd|')
note "etcd $(etcd --version | sed -n 's/^etcd Version: //p') runs: ${cmd//$SCRATCH/\$SCRATCH}"
# etcd 3.4 (Debian 12) lacks flags 3.6 has: the unit's flags must all be in its --help, or be named here.
etcd --help > etcd-help.txt 2>&1 || true
for flag in $(echo "$cmd" | tr ' ' '\n' | sed -n 's/^\(--[a-z0-9-]*\).*/\1/p'); do
  grep -q -- "^ *$flag\b" etcd-help.txt || fail "etcd.service passes $flag, which this etcd's --help does not list"
done
# shellcheck disable=SC2086 # the unit's command line, split as systemd does (no quoting in it)
$cmd > etcd.log 2>&1 &
etcd_pid=$!
trap 'kill $etcd_pid 2>/dev/null || true' EXIT
ectl() { ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$port" --cacert "$pki1/etcd/ca.crt" --dial-timeout=3s "$@"; }
ok=""
for _ in $(seq 1 300); do
  if ectl --cert "$pki1/apiserver-etcd-client.crt" --key "$pki1/apiserver-etcd-client.key" endpoint health > health.log 2>&1; then ok=1; break; fi
  kill -0 "$etcd_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$ok" ] || { cat etcd.log health.log >&2; fail "etcd from etcd.service's command line did not become healthy"; }
ectl --cert "$pki1/apiserver-etcd-client.crt" --key "$pki1/apiserver-etcd-client.key" put /pibake/hard-way ok >/dev/null
assert_eq "$(ectl --cert "$pki1/apiserver-etcd-client.crt" --key "$pki1/apiserver-etcd-client.key" get /pibake/hard-way --print-value-only)" ok "etcd get"
if ectl get /pibake/hard-way >/dev/null 2>&1; then
  fail "etcd answered a client without a certificate (--client-cert-auth is off)"
fi
if ectl --cert "$pki1/kube-proxy.crt" --key "$pki1/kube-proxy.key" get /pibake/hard-way >/dev/null 2>&1; then
  fail "etcd accepted a client certificate of the cluster CA (its trusted CA is not the etcd CA)"
fi
note "real etcd over TLS with pibake's certificates: health, put/get as kube-apiserver-etcd-client; no certificate and kube-proxy's refused"

# 6b. The Kubernetes components' own command lines, run by the e2e stand-in in its hard-way mode
# (tests/e2e/k8s-stand-in.sh, hard_way_component): every file their flags and configuration files
# name exists, each certificate chains to the CA beside it and matches its key, each kubeconfig's
# client certificate chains to its CA. node-1's files sit below a scratch root (PIBAKE_TEST_ROOT), as
# on the card. kube-apiserver then serves /readyz on 127.0.0.1 with its serving certificate, from
# the real etcd above (its etcd client flags): asked with curl and with the real kubectl and
# admin.conf. The same components refuse to start with a file missing, an etcd client certificate
# of the wrong CA, a kubelet serving key that is not its certificate's.
hwroot=$SCRATCH/hwroot
mkdir -p "$hwroot/etc" "$hwroot/var/lib"
cp -a kube1/kubernetes "$hwroot/etc/"
dump_tree "$cp" /var/lib/kubelet hwroot-kubelet && mv hwroot-kubelet/kubelet "$hwroot/var/lib/"
dump_tree "$cp" /var/lib/kube-proxy hwroot-proxy && mv hwroot-proxy/kube-proxy "$hwroot/var/lib/"
bin=$SCRATCH/stand-in-bin
mkdir -p "$bin"
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet; do
  cp "$PIBAKE_SOURCE_DIR/tests/e2e/k8s-stand-in.sh" "$bin/$b" && chmod 755 "$bin/$b"  # it acts by its name
done
api_port=$((port + 3))
# component ROOT UNIT: runs UNIT's command line with the stand-in, files below ROOT, in the
# background (sets comp_pid); etcd's and the API server's ports are this test's.
component() {
  local line
  line=$(exec_start "$2")
  [ -n "$line" ] || fail "$2 has no ExecStart"
  # shellcheck disable=SC2001
  line=$(echo "$line" | sed -e "s|^/usr/local/bin/|$bin/|" -e "s|https://127.0.0.1:2379|https://127.0.0.1:$port|" -e "s|--secure-port=6443|--secure-port=$api_port|")
  rm -rf stand-in-log
  # shellcheck disable=SC2086 # the unit's words, as systemd splits them (no quotes in pibake's units)
  env PIBAKE_STAND_IN_MODE=hard-way PIBAKE_TEST_ROOT="$1" PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in-log" $line > component.log 2>&1 &
  comp_pid=$!
}
# started NAME: the stand-in noted what it checked (it then runs on); else the test fails with its log.
started() {
  local _
  for _ in $(seq 1 100); do
    grep -q " $1: .* key pairs checked" stand-in-log/calls.log 2>/dev/null && return 0
    kill -0 "$comp_pid" 2>/dev/null || break
    sleep 0.2
  done
  cat component.log stand-in-log/calls.log >&2 2>/dev/null
  fail "$1 did not start from its unit's command line"
}
# refuses ROOT UNIT NAME MESSAGE: the component exits non-zero, saying MESSAGE.
refuses() {
  component "$1" "$2"
  if wait "$comp_pid"; then fail "$3 started with $4 wrong"; fi
  grep -qF -- "$4" component.log || { cat component.log >&2; fail "$3's refusal does not say '$4'"; }
}
# summary_of NAME: what NAME's stand-in noted it checked.
summary_of() { sed -n "s/.* $1: \(.*\) checked$/\1/p" stand-in-log/calls.log; }
summaries=""
for u in kube-controller-manager.service kube-scheduler.service kube-proxy.service kubelet.service.d/10-pibake-hard-way.conf; do
  c=${u%%.service*}
  component "$hwroot" "/etc/systemd/system/$u"
  started "$c"
  kill "$comp_pid"; wait "$comp_pid" 2>/dev/null || true
  summaries+="$c: $(summary_of "$c"); "
done
component "$hwroot" /etc/systemd/system/kube-apiserver.service
started kube-apiserver
summaries+="kube-apiserver: $(summary_of kube-apiserver)"
api_pid=$comp_pid
ready=""
for _ in $(seq 1 60); do
  ready=$(curl -fsS --max-time 5 --cacert "$hwroot/etc/kubernetes/pki/ca.crt" "https://127.0.0.1:$api_port/readyz" 2>/dev/null) && [ "$ready" = ok ] && break
  kill -0 "$api_pid" 2>/dev/null || break
  sleep 0.5
done
assert_eq "$ready" ok "the stand-in kube-apiserver's /readyz (its etcd: the real one, through its --etcd-* flags)"
assert_eq "$(kubectl --kubeconfig "$hwroot/etc/kubernetes/admin.conf" --server "https://127.0.0.1:$api_port" get --raw=/readyz 2>&1)" ok \
  "kubectl get --raw=/readyz with admin.conf"
# The stand-in kubectl (hard-way mode) applies node-1's first-boot objects through that API server
# as super-admin, as node-1's first boot does (a directory: its .yaml files), and they land in the
# real etcd; first boot's `get node NAME` and `label node` forms go through it too.
cp "$PIBAKE_SOURCE_DIR/tests/e2e/k8s-stand-in.sh" "$bin/kubectl" && chmod 755 "$bin/kubectl"
sed "s|https://127.0.0.1:6443|https://127.0.0.1:$api_port|" "$hwroot/etc/kubernetes/super-admin.conf" > super-admin.test.conf
skubectl() { env PIBAKE_STAND_IN_MODE=hard-way PIBAKE_STAND_IN_FAULTS= PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in-log" "$bin/kubectl" --kubeconfig super-admin.test.conf "$@"; }
skubectl apply -f "$hwroot/etc/kubernetes/pibake/" > apply.log 2>&1 || { cat apply.log >&2; fail "the stand-in kubectl did not apply node-1's first-boot objects"; }
ectl_api() { ectl --cert "$pki1/apiserver-etcd-client.crt" --key "$pki1/apiserver-etcd-client.key" "$@"; }
applied=$(ectl_api get --prefix /registry/pibake-stand-in/applied/ --keys-only |
  sed -n 's|^/registry/pibake-stand-in/applied/||p' | LC_ALL=C sort | tr '\n' ' ') || fail "etcdctl could not list the applied objects"
assert_eq "$applied" "clusterrolebindings/kubeadm:cluster-admins clusterrolebindings/pibake:kube-apiserver-kubelet-client clusterrolebindings/system:coredns clusterroles/system:coredns configmaps/coredns deployments/coredns serviceaccounts/coredns services/kube-dns " \
  "the objects first boot applies, in etcd through the stand-in API server"
# kubectl's refusals: apply without -f, apply of a path that does not exist, label of a node that
# has not registered (no kubelet runs here: node-1 is registered by hand below, as its kubelet would).
if skubectl apply > apply-bad.log 2>&1; then fail "the stand-in kubectl applied without -f"; fi
assert_contains apply-bad.log "must specify one of -f and -k"
if skubectl apply -f "$SCRATCH/no-such.yaml" > apply-bad.log 2>&1; then fail "the stand-in kubectl applied a missing file"; fi
assert_contains apply-bad.log 'the path "'"$SCRATCH"'/no-such.yaml" does not exist'
if skubectl label --overwrite node node-1 node-role.kubernetes.io/control-plane= > label.log 2>&1; then
  fail "the stand-in kubectl labelled node-1 before it registered"
fi
assert_contains label.log 'Error from server (NotFound): nodes "node-1" not found'
ectl_api put /registry/pibake-stand-in/nodes/node-1 '' >/dev/null || fail "etcdctl could not register node-1"
skubectl label --overwrite node node-1 node-role.kubernetes.io/control-plane= > label.log 2>&1 || { cat label.log >&2; fail "the stand-in kubectl did not label node-1"; }
assert_eq "$(ectl_api get /registry/pibake-stand-in/nodes/node-1 --print-value-only | grep .)" "node-role.kubernetes.io/control-plane=" "node-1's label, in etcd"
assert_eq "$(skubectl get node node-1 2>&1)" "node/node-1" "kubectl get node node-1 through the stand-in API server"
if skubectl get node node-9 > get.log 2>&1; then fail "the stand-in kubectl found a node that is not in etcd"; fi
grep -q 'NotFound' get.log || { cat get.log >&2; fail "the stand-in kubectl's get of a missing node does not say NotFound"; }
# A server that cannot answer is not NotFound: with its etcd gone the stand-in API server answers
# 503 for objects while /readyz still holds (15 s after etcd's last health), and kubectl label
# fails as the real one does, saying why, instead of taking node-1 for unregistered.
kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true
if skubectl label --overwrite node node-1 pibake.test/x=1 > label.log 2>&1; then
  fail "the stand-in kubectl labelled node-1 with its etcd gone"
fi
assert_contains label.log "Error from server (ServiceUnavailable): the server is currently unable to handle the request (get nodes node-1)"
kill "$api_pid"; wait "$api_pid" 2>/dev/null || true
note "the components' command lines (stand-ins, hard-way mode): $summaries"
# The checks say no.
cp -a "$hwroot" hwbad
rm hwbad/etc/kubernetes/pki/front-proxy-client.key
refuses "$SCRATCH/hwbad" /etc/systemd/system/kube-apiserver.service kube-apiserver \
  "open /etc/kubernetes/pki/front-proxy-client.key: no such file or directory"
cp "$hwroot/etc/kubernetes/pki/front-proxy-client.key" hwbad/etc/kubernetes/pki/
cp "$hwroot/etc/kubernetes/pki/kube-proxy.crt" hwbad/etc/kubernetes/pki/apiserver-etcd-client.crt
cp "$hwroot/etc/kubernetes/pki/kube-proxy.key" hwbad/etc/kubernetes/pki/apiserver-etcd-client.key
refuses "$SCRATCH/hwbad" /etc/systemd/system/kube-apiserver.service kube-apiserver \
  "/etc/kubernetes/pki/apiserver-etcd-client.crt does not chain to"
cp "$hwroot/etc/kubernetes/pki/kubelet-client-node-1.key" hwbad/etc/kubernetes/pki/kubelet-serving-node-1.key
refuses "$SCRATCH/hwbad" /etc/systemd/system/kubelet.service.d/10-pibake-hard-way.conf kubelet \
  "kubelet-serving-node-1.crt is not the certificate of"
note "the stand-ins refuse a missing file, an etcd client certificate of the cluster CA, a kubelet serving key not its certificate's"

# 7. Pod networking: node-k's bridge gets 10.244.k.0/24, and its routes reach every other node's.
for k in 1 2 3; do
  img=out/node-$k.img
  root_cat "$img" /etc/cni/net.d/10-bridge.conflist > conflist.json
  python3 - "$k" conflist.json <<'PYEND' || fail "node-$k's bridge configuration"
import json, sys
k, path = sys.argv[1], sys.argv[2]
c = json.load(open(path))
bridge = c["plugins"][0]
assert bridge["type"] == "bridge", bridge
ranges = json.dumps(bridge["ipam"])
assert bridge["ipam"]["type"] == "host-local", bridge["ipam"]
assert f'"10.244.{k}.0/24"' in ranges, ranges
PYEND
  boot_cat "$img" /network-config > network-config.yaml
  python3 - "$k" network-config.yaml <<'PYEND' || fail "node-$k's static routes"
import sys, yaml
k, path = int(sys.argv[1]), sys.argv[2]
routes = yaml.safe_load(open(path))["network"]["ethernets"]["eth0"].get("routes", [])
pods = {r["to"]: r["via"] for r in routes if r["to"] != "default"}
want = {f"10.244.{j}.0/24": f"10.0.0.{j}" for j in (1, 2, 3) if j != k}
assert pods == want, (pods, want)
PYEND
  # netplan itself: the file is what cloud-init renders into /etc/netplan (docs/overlays.md).
  rm -rf np && mkdir -p np/etc/netplan && cp network-config.yaml np/etc/netplan/50-cloud-init.yaml && chmod 600 np/etc/netplan/50-cloud-init.yaml
  netplan generate --root-dir np > netplan.log 2>&1 || { cat netplan.log >&2; fail "netplan generate rejects node-$k's network-config"; }
  grep -rq "10.244" np/run/systemd/network/ || fail "netplan generate dropped node-$k's pod routes"
done
note "bridge ranges 10.244.{1,2,3}.0/24 and the static routes between them, read by netplan generate"

# 8. Regenerating a worker gives the same image: its credentials and pod range come from the state dir.
pibake_ok build --base-image base.img --out out2 --node node-3
cmp -s out/node-3.img out2/node-3.img || fail "a regenerated node-3 differs from the first build"
note "regenerated node-3 is byte-identical"

# 9. The state dir's hard-way credentials are trusted only as pki/ is: a kept key that is not its
# certificate's, a symlink, a file others can read, a damaged Secrets key are each refused with the
# file named, and nothing is replaced behind the user's back. Each damage is undone after its check
# (files rewritten in place keep their owner: pibake runs as nobody under root).
hw=$state/hard-way
refused() {  # refused WHAT MESSAGE: a rebuild of node-3 fails, naming MESSAGE, and writes no image
  rm -rf out3
  if pibake build --base-image base.img --out out3 --node node-3; then fail "a build with $1 succeeded"; fi
  grep -qF -- "$2" "$SCRATCH/err.log" || { cat "$SCRATCH/err.log" >&2; fail "$1: the error does not say '$2'"; }
  [ ! -e out3/node-3.img ] || fail "a build with $1 left out3/node-3.img"
}
cp -p "$hw/kube-proxy" kept.bak
python3 - "$hw/kube-proxy" "$hw/scheduler" <<'PYEND'
import sys
mine, other = open(sys.argv[1]).read(), open(sys.argv[2]).read()
key = other[other.index("-----BEGIN RSA PRIVATE KEY-----"):]
cert_end = mine.index("-----END CERTIFICATE-----\n") + len("-----END CERTIFICATE-----\n")
open(sys.argv[1], "w").write(mine[:cert_end] + key)  # rewritten in place: owner and mode kept
PYEND
refused "kube-proxy's kept key swapped" "hard-way/kube-proxy (kept by an earlier build): its key does not belong to its certificate"
cat kept.bak > "$hw/kube-proxy"
chmod 0640 "$hw/kube-proxy"
refused "a kept key readable by its group" "hard-way/kube-proxy has mode 0640"
chmod 0600 "$hw/kube-proxy"
mv "$hw/kube-proxy" "$hw/kube-proxy.real" && ln -s kube-proxy.real "$hw/kube-proxy"
refused "a kept key behind a symlink" "hard-way/kube-proxy is a symbolic link"
rm "$hw/kube-proxy" && mv "$hw/kube-proxy.real" "$hw/kube-proxy"
cp -p "$hw/encryption-key" key.bak
echo "not-a-key" > "$hw/encryption-key"
rm -rf out3
pibake build --base-image base.img --out out3 --node node-1 && fail "a build with a damaged encryption key succeeded"
grep -qF "hard-way/encryption-key is damaged" "$SCRATCH/err.log" || { cat "$SCRATCH/err.log" >&2; fail "a damaged encryption key is not named"; }
cat key.bak > "$hw/encryption-key"
pibake_ok build --base-image base.img --out out3 --node node-3
cmp -s out/node-3.img out3/node-3.img || fail "node-3 differs after the state dir was restored"
note "kept credentials: a swapped key, mode 0640, a symlink and a damaged encryption key refused, naming the file"

# 10. First boot, taken from the cards and run against a scratch root with recording stubs on PATH
# (systemctl, kubectl, ctr, dpkg-query; kubeadm fails the test if called): on a worker the node's
# services restarted and nothing else; on node-1 also the API's readiness asked, the manifests of
# /etc/kubernetes/pibake applied as super-admin, node-1 found and labelled, super-admin.conf
# removed afterwards; a second run does nothing.
stubs=$SCRATCH/stubs
mkdir -p "$stubs"
for tool in systemctl kubectl ctr dpkg-query kubeadm; do
  cat > "$stubs/$tool" <<STUB
#!/bin/sh
echo "$tool \$*" >> "$SCRATCH/fb-calls.log"
case "$tool \$*" in
  kubeadm*) echo "kubeadm called in hard-way mode" >&2; exit 3 ;;
  "dpkg-query "*) echo "install ok installed" ;;
esac
exit 0
STUB
  chmod 755 "$stubs/$tool"
done
for k in 1 2; do
  img=out/node-$k.img
  root_cat "$img" /usr/local/sbin/pibake-firstboot > firstboot-$k
  shellcheck -s sh firstboot-$k || fail "shellcheck finds problems in node-$k's pibake-firstboot"
  rm -rf fbroot fb-calls.log && mkdir -p fbroot/etc
  cp -a "kube$k/kubernetes" fbroot/etc/
  env PATH="$stubs:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/fbroot" PIBAKE_FIRST_DELAY=1 sh firstboot-$k > fb.log 2>&1 ||
    { cat fb.log >&2; fail "node-$k's first boot failed"; }
  [ -s fbroot/var/lib/pibake/firstboot.done ] || fail "node-$k's first boot did not finish"
  grep -q "^kubeadm" fb-calls.log && fail "node-$k's first boot ran kubeadm"
  grep -q "^systemctl restart containerd.service kubelet.service kube-proxy.service$" fb-calls.log ||
    { cat fb-calls.log >&2; fail "node-$k's first boot did not restart its services"; }
  if [ "$k" = 1 ]; then
    sa=$SCRATCH/fbroot/etc/kubernetes/super-admin.conf
    assert_eq "$(grep '^kubectl' fb-calls.log | tr '\n' ';')" "kubectl --kubeconfig $sa --request-timeout=20s get --raw=/readyz;kubectl --kubeconfig $sa --request-timeout=20s apply -f $SCRATCH/fbroot/etc/kubernetes/pibake/;kubectl --kubeconfig $sa --request-timeout=20s get node node-1;kubectl --kubeconfig $sa --request-timeout=20s label --overwrite node node-1 node-role.kubernetes.io/control-plane=;" "node-1's kubectl calls"
    [ ! -e "$sa" ] || fail "super-admin.conf is still on node-1 after its first boot"
    [ -s fbroot/etc/kubernetes/admin.conf ] || fail "node-1's first boot removed admin.conf"
    assert_eq "$(ls fbroot/etc/kubernetes/pibake | tr '\n' ' ')" "coredns.yaml rbac-apiserver-to-kubelet.yaml rbac-cluster-admins.yaml " "node-1's manifests"
  else
    grep -q "^kubectl" fb-calls.log && fail "worker node-$k's first boot called kubectl"
  fi
  : > fb-calls.log
  env PATH="$stubs:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/fbroot" sh firstboot-$k > fb.log 2>&1 || fail "node-$k's second first boot failed"
  [ ! -s fb-calls.log ] || { cat fb-calls.log >&2; fail "node-$k's first boot ran again"; }
done
note "first boot (stubs): node services restarted, node-1's manifests applied as super-admin, which is then removed; no kubeadm"
