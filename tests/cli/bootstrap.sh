#!/usr/bin/env bash
# The first-boot bootstrap, taken from built images and run against a scratch copy of node-1's
# /etc/kubernetes: kubeadm and kubectl are tests/e2e/k8s-stand-in.sh (kubeadm's init phases in
# kubeadm's order, each of which can be made to fail, hang or lose power; a stand-in cluster that
# kubectl reads); systemctl, apt-get, dpkg-query, dpkg and sleep are stubs that record their calls
# and fail on demand. Checked: order, retries, recovery from an init interrupted or failed in every
# phase (reset, pibake's CA material back with its modes), power cuts, the DHCP start, apt
# failures, installed packages, pibake-label-workers, and never running twice.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sh shellcheck python3 timeout setsid dpkg-deb
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
echo 'nodes: {count: 3}' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out
for k in 1 2; do
  debugfs -R "dump /usr/local/sbin/pibake-firstboot $SCRATCH/firstboot-$k" "out/node-$k.img?offset=$(part_offset out/node-$k.img 2)" >/dev/null 2>&1
  [ -s firstboot-$k ] || fail "node-$k has no pibake-firstboot"
  sh -n firstboot-$k || fail "node-$k's pibake-firstboot does not parse"
  shellcheck -s sh firstboot-$k || fail "shellcheck finds problems in node-$k's pibake-firstboot"
done
debugfs -R "dump /usr/local/sbin/pibake-label-workers $SCRATCH/label" "out/node-1.img?offset=$(part_offset out/node-1.img 2)" >/dev/null 2>&1
shellcheck -s sh label || fail "shellcheck finds problems in pibake-label-workers"
grep -q '^for w in node-2 node-3; do' label || fail "pibake-label-workers does not list the workers"
# node-1's /etc/kubernetes as the image has it: the PKI, pibake's copy, kubeadm-init.yaml, cni.yaml.
mkdir -p pristine/etc pristine/var/lib/pibake
debugfs -R "rdump /etc/kubernetes $SCRATCH/pristine/etc" "out/node-1.img?offset=$(part_offset out/node-1.img 2)" >/dev/null 2>&1
debugfs -R "rdump /etc/containerd $SCRATCH/pristine/etc" "out/node-1.img?offset=$(part_offset out/node-1.img 2)" >/dev/null 2>&1
# ... and the container image archives the card carries (docs/images.md).
debugfs -R "rdump /var/lib/pibake/images $SCRATCH/pristine/var/lib/pibake" "out/node-1.img?offset=$(part_offset out/node-1.img 2)" >/dev/null 2>&1
assert_eq "$(ls pristine/var/lib/pibake/images | wc -l)" 9 "image archives on node-1"
[ -s pristine/etc/kubernetes/pibake/pki/ca.key ] && [ -s pristine/etc/kubernetes/pibake/kubeadm-init.yaml ] && [ -s pristine/etc/containerd/config.toml ] ||
  fail "node-1.img has no /etc/kubernetes/pibake/{pki/ca.key,kubeadm-init.yaml} or /etc/containerd/config.toml"

source "$PIBAKE_SOURCE_DIR/tests/cli/bootstrap_stubs.bash"
make_bootstrap_stubs
shellcheck -s sh "$PIBAKE_SOURCE_DIR/tests/e2e/k8s-stand-in.sh" || fail "shellcheck finds problems in k8s-stand-in.sh"

# fresh: a new scratch root (node-1's /etc/kubernetes from the image) and no recorded calls.
fresh() { rm -rf root stand-in calls.log count-* installed ctr-images && mkdir -p root stand-in && cp -a pristine/. root/; }
# images_imported: containerd (the ctr stub) holds the card's images, as after the images step.
images_imported() {
  local f
  for f in pristine/var/lib/pibake/images/*.tar; do "$bin/ctr" --namespace k8s.io images import "$f" >/dev/null; done
  rm -f calls.log count-*
}
# run SCRIPT [VAR=value...]: the bootstrap in its own session (a stand-in "cut" kills the session)
# with the stubs first on PATH, the scratch root, no fault unless given. Returns its status. The
# stubbed sleep returns at once, so backoff and the API wait cost nothing; PIBAKE_INIT_TIMEOUT is
# generous (a loaded machine must not time out a healthy init) except where a hang is tested.
run() {
  local script=$1; shift
  env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_FIRST_DELAY=1 PIBAKE_API_WAIT=10 \
    PIBAKE_INIT_TIMEOUT=600 PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" PIBAKE_STAND_IN_PARSED="$SCRATCH/parsed" PIBAKE_STAND_IN_FAULTS= "$@" \
    setsid sh "$SCRATCH/$script" >> run.log 2>&1
}
calls() { grep -E "^($1)( |\$)" calls.log | cut -d' ' -f1-2 | tr '\n' ' '; }
# kcalls: "kubeadm init|reset" and "kubectl apply|label" calls in order (not kubectl's reads).
kcalls() {
  awk '$2 == "kubeadm" { print $2, $3 }
       $2 == "kubectl" { for (i = 3; i <= NF; i++) if ($i == "apply" || $i == "label") { print $2, $i; break } }' \
    stand-in/calls.log | tr '\n' ' '
}
steps() { tr '\n' ' ' < root/var/lib/pibake/steps; }
# pki_restored: every file of pibake's PKI copy is back under /etc/kubernetes/pki, same bytes,
# certificates and public keys 0644, private keys 0600.
pki_restored() {
  local f want
  for f in ca.crt ca.key sa.pub sa.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key; do
    cmp -s "root/etc/kubernetes/pki/$f" "pristine/etc/kubernetes/pibake/pki/$f" || fail "$1: pki/$f is not pibake's"
    case $f in *.key) want=600 ;; *) want=644 ;; esac
    assert_eq "$(stat -c %a "root/etc/kubernetes/pki/$f")" $want "$1: mode of pki/$f"
  done
}
# cluster_complete: the objects kubeadm's last phases create, as the bootstrap's check reads them.
cluster_complete() {
  local o
  for o in kube-system/configmaps/kubeadm-config kube-public/configmaps/cluster-info kube-system/deployments/coredns \
    kube-system/daemonsets/kube-proxy clusterrolebindings/kubeadm:node-autoapprove-certificate-rotation; do
    [ -e "root/var/lib/etcd/pibake-stand-in/$o" ] || fail "$1: the stand-in cluster lacks $o"
  done
}

# Control plane (and gateway): packages, DHCP, kubeadm init, CNI, in that order. Faults: the DHCP
# server is not active at the first check, the first kubeadm init fails in its etcd phase (after
# certs and kubeconfig wrote admin.conf), the first kubectl apply fails.
fresh
run firstboot-1 FAIL_systemctl_is_active=1 PIBAKE_STAND_IN_FAULTS="init:etcd:fail apply:fail" ||
  { cat run.log >&2; fail "control-plane bootstrap failed"; }
assert_eq "$(calls 'apt-get install|systemctl (enable|daemon-reload|restart|is-active)')" \
  "apt-get install systemctl enable systemctl daemon-reload systemctl restart systemctl is-active systemctl enable systemctl daemon-reload systemctl restart systemctl is-active " \
  "package and DHCP calls (is-active fails once: the whole start is retried)"
assert_contains calls.log "systemctl is-active --quiet isc-dhcp-server.service"
assert_contains calls.log "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold chrony conntrack etcd-client iptables isc-dhcp-server socat"
assert_contains run.log "pibake-firstboot: the clock says"  # the clock check says what it found
assert_eq "$(kcalls)" "kubeadm init kubeadm reset kubeadm init kubectl apply kubectl apply " "kubeadm/kubectl calls"
assert_contains stand-in/calls.log "kubeadm init --config $SCRATCH/root/etc/kubernetes/pibake/kubeadm-init.yaml --skip-token-print"
assert_contains stand-in/calls.log "kubeadm: fault: fail at etcd"
assert_contains stand-in/calls.log "kubectl --kubeconfig $SCRATCH/root/etc/kubernetes/admin.conf apply -f $SCRATCH/root/etc/kubernetes/pibake/cni.yaml"
assert_eq "$(steps)" "packages images dhcp-server kubeadm-init cni " "steps"
# The images step: each archive the card carries imported into containerd's k8s.io namespace
# (after containerd is started), then the archives removed.
assert_eq "$(grep -c '^ctr --namespace k8s.io images import ' calls.log)" "$(ls pristine/var/lib/pibake/images | wc -l)" \
  "ctr imports (one per archive on node-1)"
assert_contains calls.log "ctr --namespace k8s.io images import $SCRATCH/root/var/lib/pibake/images/registry.k8s.io_etcd_3.6.6-0.tar"
assert_contains run.log "pibake-firstboot: imported registry.k8s.io_kube-apiserver_v1.37.1"
[ ! -e root/var/lib/pibake/images ] || fail "the image archives were left on the node after the import"
assert_eq "$(grep -c '^sleep [0-9]' calls.log)" 3 "backoff sleeps (DHCP, kubeadm, kubectl: one retry each)"
# kubeadm's preflight found every control-plane image in containerd, so it pulled none.
assert_contains stand-in/calls.log "kubeadm: preflight: 7 control-plane images already in containerd, none pulled"
pki_restored "after a failed init"
cluster_complete "after a failed init"
# The CNI manifest as applied: every document in the stand-in cluster.
for o in namespaces/kube-flannel daemonsets/kube-flannel-ds configmaps/kube-flannel-cfg; do
  [ -e "root/var/lib/etcd/pibake-stand-in/applied/$o" ] || fail "the CNI manifest's $o was not applied"
done
[ -f root/var/lib/pibake/firstboot.done ] || fail "no completion mark"

# Done means done: a reboot runs nothing.
rm -f calls.log stand-in/calls.log
run firstboot-1 || fail "second run failed"
[ ! -s calls.log ] && [ ! -s stand-in/calls.log ] || fail "the bootstrap ran again after completion: $(cat calls.log stand-in/calls.log 2>/dev/null)"

# pibake-label-workers against the stand-in cluster above: the first label call fails (node-2 has
# not registered), so the run exits 1 for its unit's Restart=; the next labels both and records it.
if env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" \
  PIBAKE_STAND_IN_FAULTS="label:fail" sh label > label.log 2>&1; then fail "pibake-label-workers succeeded with node-2 missing"; fi
assert_contains label.log "node-2 has not registered yet"
[ ! -e root/var/lib/pibake/labels.done ] || fail "labels.done written while node-2 was unlabelled"
env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" \
  PIBAKE_STAND_IN_FAULTS="label:fail" sh label >> label.log 2>&1 || { cat label.log >&2; fail "second pibake-label-workers run failed"; }
for w in node-2 node-3; do
  assert_eq "$(cat "root/var/lib/etcd/pibake-stand-in/nodes/$w")" "node-role.kubernetes.io/worker=" "labels of $w"
done
[ -s root/var/lib/pibake/labels.done ] || fail "no labels.done after every worker was labelled"

# kubeadm init interrupted or failed in each phase: the bootstrap recovers. A "cut" (power loss:
# the stand-in kills the bootstrap's session) is followed by a reboot (a second run). A hang is
# stopped by the bootstrap's PIBAKE_INIT_TIMEOUT, which costs real time, so it is tried in a phase
# before admin.conf, one that leaves files, and the last one that changes the cluster.
phases="preflight certs kubeconfig etcd control-plane kubelet-start wait-control-plane upload-config upload-certs
  mark-control-plane bootstrap-token kubelet-finalize addon/coredns addon/kube-proxy show-join-command"
for p in $phases; do
  modes="fail cut"
  case $p in certs | wait-control-plane | addon/kube-proxy) modes="$modes hang" ;; esac
  for mode in $modes; do
    what="init $mode in $p"
    fresh
    # Packages and DHCP are tested above: start at kubeadm init.
    mkdir -p root/var/lib/pibake && printf 'packages\nimages\ndhcp-server\n' > root/var/lib/pibake/steps
    images_imported
    if [ $mode = cut ]; then
      if run firstboot-1 PIBAKE_STAND_IN_FAULTS="init:$p:cut"; then fail "$what: the cut run finished"; fi
      ! grep -qx kubeadm-init root/var/lib/pibake/steps 2>/dev/null || fail "$what: kubeadm-init recorded as done"
    fi
    timeout=600; [ $mode != hang ] || timeout=30
    run firstboot-1 PIBAKE_STAND_IN_FAULTS="init:$p:$mode" PIBAKE_INIT_TIMEOUT=$timeout ||
      { tail -n 30 run.log >&2; fail "$what: the bootstrap failed"; }
    assert_contains stand-in/calls.log "kubeadm: fault: $mode at $p"
    if [ $mode = cut ] && [ $p = show-join-command ]; then
      # Every object was in the cluster when the power went: finished, nothing to redo.
      assert_eq "$(kcalls)" "kubeadm init kubectl apply " "$what: calls"
    else
      assert_eq "$(kcalls)" "kubeadm init kubeadm reset kubeadm init kubectl apply " "$what: calls"
    fi
    assert_eq "$(steps)" "packages images dhcp-server kubeadm-init cni " "$what: steps"
    pki_restored "$what"
    cluster_complete "$what"
  done
done

# A card that lacks one (etcd's archive gone): kubeadm's preflight would pull it, and offline that
# fails; the stand-in refuses naming it, and the bootstrap never records kubeadm-init as done.
fresh
rm root/var/lib/pibake/images/registry.k8s.io_etcd_*.tar
if run firstboot-1 PIBAKE_SLEEP_LIMIT=3 >/dev/null 2>&1; then fail "the bootstrap finished with etcd's image missing"; fi
assert_contains stand-in/calls.log "[ERROR ImagePull]: failed to pull image registry.k8s.io/etcd:3.6.6-0"
if grep -qx kubeadm-init root/var/lib/pibake/steps; then fail "kubeadm-init recorded as done without etcd's image"; fi

# A power cut after init, while kubectl apply runs; after the reboot init is not repeated.
fresh
if run firstboot-1 PIBAKE_STAND_IN_FAULTS="apply:cut"; then fail "the run cut during kubectl apply finished"; fi
grep -qx kubeadm-init root/var/lib/pibake/steps || fail "kubeadm init was not recorded before the cut"
run firstboot-1 || fail "bootstrap after the power cut failed"
assert_eq "$(kcalls)" "kubeadm init kubectl apply kubectl apply " "calls around a cut during kubectl apply"

# Stand-ins refuse what does not parse: one indentation error in kubeadm-init.yaml and in cni.yaml.
fresh
sed -i 's/^  advertiseAddress:/ advertiseAddress:/' root/etc/kubernetes/pibake/kubeadm-init.yaml
if env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" PIBAKE_STAND_IN_FAULTS= \
  kubeadm init --config root/etc/kubernetes/pibake/kubeadm-init.yaml > bad.log 2>&1; then fail "kubeadm stand-in accepted a broken config"; fi
assert_contains bad.log "does not parse"
fresh
run firstboot-1 PIBAKE_STAND_IN_FAULTS= || fail "bootstrap before the CNI check failed"
sed -i 's/^  name: kube-flannel$/ name: kube-flannel/' root/etc/kubernetes/pibake/cni.yaml
if env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_STAND_IN_LOG="$SCRATCH/stand-in" PIBAKE_STAND_IN_FAULTS= \
  kubectl --kubeconfig root/etc/kubernetes/admin.conf apply -f root/etc/kubernetes/pibake/cni.yaml > bad.log 2>&1; then
  fail "kubectl stand-in accepted a broken manifest"
fi
assert_contains bad.log "does not parse"

# apt-get fails (update once, install once): retried after `dpkg --configure -a`; then done.
fresh
run firstboot-1 FAIL_apt_get_update=1 FAIL_apt_get_install=1 || fail "bootstrap with apt failures failed"
assert_eq "$(calls 'apt-get|dpkg')" "dpkg --configure apt-get update dpkg --configure apt-get update apt-get install dpkg --configure apt-get update apt-get install " "apt calls with two failures"
grep -qx packages root/var/lib/pibake/steps || fail "packages not recorded after the apt retries"
# Everything already installed: no apt-get, no dpkg.
fresh
run firstboot-1 INSTALLED="conntrack socat iptables isc-dhcp-server chrony etcd-client" || fail "bootstrap with everything installed failed"
if grep -qE '^(apt-get|dpkg) ' calls.log; then fail "apt-get or dpkg ran though every package was installed: $(cat calls.log)"; fi
assert_eq "$(grep -c '^dpkg-query' calls.log)" 6 "dpkg-query calls (one per package)"

# The clock (docs/cluster.md, "The clock without a network"), with a stand-in `date`: `date +%s`
# answers PIBAKE_FAKE_NOW until its PIBAKE_FAKE_NTP_AFTER-th call, then the real time (NTP has
# answered); everything else is the real date. Every later step is recorded as done: only the
# clock check runs before the completion mark.
floor=$(sed -n 's/^CLOCK_FLOOR=//p' firstboot-2)
ca=$(sed -n 's/^NOT_BEFORE=//p' firstboot-2)
[ "$floor" -ge "$ca" ] && [ "$ca" -gt 1700000000 ] || fail "clock floor $floor is not at or after the CA's notBefore $ca"
cat > "$bin/date" <<STUB
#!/bin/sh
if [ -n "\${PIBAKE_FAKE_NOW:-}" ] && [ "\$*" = "+%s" ]; then
  n=\$(cat "$SCRATCH/count-date" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > "$SCRATCH/count-date"
  [ "\$n" -gt "\${PIBAKE_FAKE_NTP_AFTER:-1000000}" ] || { echo "\$PIBAKE_FAKE_NOW"; exit 0; }
fi
exec /bin/date "\$@"
STUB
chmod +x "$bin/date"
clock_run() {
  fresh; : > run.log
  mkdir -p root/var/lib/pibake && printf 'packages\nimages\nkubelet\n' > root/var/lib/pibake/steps
  run firstboot-2 "$@" || { cat run.log >&2; fail "bootstrap with a stand-in clock ($*) failed"; }
  [ -f root/var/lib/pibake/firstboot.done ] || fail "no completion mark with a stand-in clock ($*)"
}
# Offline, the clock at the floor (what systemd sets it to at boot): no wait at all.
clock_run PIBAKE_FAKE_NOW="$floor"
assert_contains run.log "pibake-firstboot: the clock says $(date -u -d "@$floor" +%Y-%m-%dT%H:%M:%SZ): not before the cluster's certificates"
if grep -q "waiting for NTP" run.log || grep -q '^sleep' calls.log; then fail "the bootstrap waited with the clock at the floor"; fi
# A clock before the floor (the floor files gone, or systemd ignoring them) and the CA: said, and
# waited for until NTP answers (the 3rd reading).
clock_run PIBAKE_FAKE_NOW=1577836800 PIBAKE_FAKE_NTP_AFTER=2
assert_eq "$(grep -c "the clock says 2020-01-01T00:00:00Z, before the image's clock floor $(date -u -d "@$floor" +%Y-%m-%dT%H:%M:%SZ): systemd did not advance it" run.log)" 2 "'before the floor' lines"
assert_eq "$(grep -c '^sleep [0-9]' calls.log)" 2 "waits for NTP"
assert_contains run.log "not before the cluster's certificates"
rm -f "$bin/date"

# The card holds the .debs (as pibake puts them there): installed from it in one apt-get call with
# no sources configured, and no `apt-get update`: nothing reaches the network.
mkdir -p debs
for p in chrony conntrack etcd-client iptables isc-dhcp-server socat libfoo; do
  mkdir -p "debs/$p/DEBIAN"
  printf 'Package: %s\nVersion: 1.0\nArchitecture: arm64\nMaintainer: t <t@invalid>\nDescription: t\n' "$p" > "debs/$p/DEBIAN/control"
  dpkg-deb --root-owner-group --build "debs/$p" "debs/${p}_1.0_arm64.deb" >/dev/null || fail "dpkg-deb --build failed"
done
fresh
mkdir -p root/var/cache/pibake/debs && cp debs/*.deb root/var/cache/pibake/debs/
run firstboot-1 || { cat run.log >&2; fail "bootstrap with the packages on the card failed"; }
assert_eq "$(calls 'apt-get|dpkg')" "dpkg --configure apt-get install " "apt calls with every package on the card"
assert_contains calls.log "apt-get install -y -q --no-install-recommends -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/nonexistent -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $SCRATCH/root/var/cache/pibake/debs/chrony_1.0_arm64.deb"
assert_eq "$(sort installed | tr '\n' ' ')" "chrony conntrack etcd-client iptables isc-dhcp-server libfoo socat " "installed from the card"
assert_contains run.log "from the card (7 .debs in $SCRATCH/root/var/cache/pibake/debs, no network)"
# A card that lacks one (socat): the rest from the card, socat from the network, and the log says so.
fresh
mkdir -p root/var/cache/pibake/debs && cp debs/*.deb root/var/cache/pibake/debs/ && rm root/var/cache/pibake/debs/socat_*
run firstboot-1 || { cat run.log >&2; fail "bootstrap with socat missing from the card failed"; }
assert_eq "$(calls 'apt-get|dpkg')" "dpkg --configure apt-get install apt-get update apt-get install " "apt calls with socat off the card"
assert_contains run.log "still missing after the card's packages: socat; trying the network"
grep -q "^apt-get install .*--force-confold socat$" calls.log || fail "socat was not fetched from the network: $(cat calls.log)"

# A worker: packages, then the kubelet; never kubeadm, kubectl or the DHCP server.
fresh
run firstboot-2 || fail "worker bootstrap failed"
if grep -q isc-dhcp calls.log || [ -s stand-in/calls.log ]; then fail "a worker ran control-plane or gateway steps"; fi
assert_contains calls.log "systemctl restart containerd.service kubelet.service"
echo "ok: order, retries, recovery from every init phase (fail, hang, power cut), labels, apt and DHCP faults, no second run"
