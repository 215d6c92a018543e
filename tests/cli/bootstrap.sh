# The first-boot bootstrap, taken from built images and run against stand-in kubeadm, kubectl,
# systemctl, apt-get and dpkg-query that record their calls: order, retries, a power cut half-way,
# an interrupted kubeadm init, and never running twice.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sh shellcheck

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

# Stand-ins: each records "name args" in calls.log; FAIL_<name>=N makes the first N calls fail.
bin=$SCRATCH/bin; mkdir -p "$bin"
for tool in kubeadm kubectl systemctl apt-get dpkg-query dpkg sleep; do
  cat > "$bin/$tool" <<STUB
#!/bin/sh
echo "$tool \$*" >> "$SCRATCH/calls.log"
count_file="$SCRATCH/count-$tool"
n=\$(cat "\$count_file" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > "\$count_file"
limit=\$(printenv FAIL_$(echo $tool | tr '-' '_') || echo 0)
[ "\$n" -gt "\$limit" ] || exit 1
case "$tool" in
  dpkg-query) exit 1 ;;   # nothing installed: every package is missing
  kubeadm) case "\$1" in init) mkdir -p "$SCRATCH/root/etc/kubernetes/manifests"; echo admin > "$SCRATCH/root/etc/kubernetes/admin.conf" ;; esac ;;
esac
exit 0
STUB
  chmod +x "$bin/$tool"
done
run() {  # run SCRIPT [env...]: the bootstrap with the stand-ins first on PATH and a scratch root
  local script=$1; shift
  env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_FIRST_DELAY=1 "$@" sh "$SCRATCH/$script" >> run.log 2>&1
}
reset_calls() { rm -f calls.log count-*; }
mkdir -p root/etc/kubernetes/pibake/pki

# Control plane (and gateway): packages, DHCP, kubeadm init, CNI, in that order; kubeadm fails twice.
reset_calls
run firstboot-1 FAIL_kubeadm=2 || fail "control-plane bootstrap failed"
grep -E '^(apt-get install|systemctl (enable|restart) isc-dhcp|kubeadm init|kubectl)' calls.log | cut -d' ' -f1-2 > order
assert_eq "$(tr '\n' ' ' < order)" "apt-get install systemctl enable systemctl restart kubeadm init kubeadm init kubeadm init kubectl --kubeconfig " "call order"
assert_contains calls.log "systemctl is-active --quiet isc-dhcp-server.service"
assert_contains calls.log "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold conntrack socat iptables isc-dhcp-server"
assert_contains calls.log "kubeadm init --config $SCRATCH/root/etc/kubernetes/pibake/kubeadm-init.yaml --skip-token-print"
assert_contains calls.log "kubectl --kubeconfig $SCRATCH/root/etc/kubernetes/admin.conf apply -f $SCRATCH/root/etc/kubernetes/pibake/cni.yaml"
assert_eq "$(grep -c '^sleep' calls.log)" 2 "sleeps between kubeadm retries"
[ -f root/var/lib/pibake/firstboot.done ] || fail "no completion mark"

# Done means done: a reboot runs nothing.
reset_calls
run firstboot-1 || fail "second run failed"
[ ! -s calls.log ] || fail "the bootstrap ran again after completion: $(cat calls.log)"

# A power cut after kubeadm init (kubectl keeps failing; the run is killed), then a reboot:
# init is not repeated, the CNI is applied.
rm -rf root/var/lib/pibake root/etc/kubernetes/admin.conf root/etc/kubernetes/manifests; reset_calls
env PATH="$bin:$PATH" PIBAKE_TEST_ROOT="$SCRATCH/root" PIBAKE_FIRST_DELAY=1 FAIL_kubectl=1000 \
  timeout 5 sh "$SCRATCH/firstboot-1" >> run.log 2>&1 && fail "the run that should be cut off finished"
grep -qx kubeadm-init root/var/lib/pibake/steps || fail "kubeadm init was not recorded before the cut"
reset_calls
run firstboot-1 || fail "bootstrap after the power cut failed"
if grep -q '^kubeadm' calls.log; then fail "kubeadm ran again after the power cut: $(cat calls.log)"; fi
assert_contains calls.log "apply -f"

# An init interrupted half-way (manifests but no admin.conf): reset, then pibake's PKI copy is put back.
rm -rf root/var/lib/pibake root/etc/kubernetes/admin.conf root/etc/kubernetes/pki; reset_calls
mkdir -p root/etc/kubernetes/manifests && touch root/etc/kubernetes/manifests/kube-apiserver.yaml
echo seed > root/etc/kubernetes/pibake/pki/ca.crt
run firstboot-1 || fail "bootstrap after an interrupted init failed"
grep -E '^kubeadm' calls.log | cut -d' ' -f1-2 | tr '\n' ' ' > kc
assert_eq "$(cat kc)" "kubeadm reset kubeadm init " "kubeadm calls after an interrupted init"
assert_eq "$(cat root/etc/kubernetes/pki/ca.crt)" seed "restored CA"

# A worker: packages, then the kubelet; never kubeadm.
rm -rf root/var/lib/pibake; reset_calls
run firstboot-2 || fail "worker bootstrap failed"
if grep -qE '^(kubeadm|kubectl)|isc-dhcp' calls.log; then fail "a worker ran control-plane or gateway steps: $(cat calls.log)"; fi
assert_contains calls.log "systemctl restart containerd.service kubelet.service"
echo "ok: order, retries, resume after a power cut, no second run"
