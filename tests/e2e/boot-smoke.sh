#!/usr/bin/env bash
# Boot smoke test (groundwork for issue 7): builds ONE node image with pibake from the arm64
# stand-in base image (tests/e2e/make-rootfs-image.sh, cached) and stand-in upstream artifacts
# (tests/fixtures/make-artifacts.sh through file:// mirrors), boots it under qemu-system-aarch64
# (TCG, -M virt, direct kernel boot with the image's own vmlinuz/initrd.img/cmdline.txt), and
# checks from the serial log, over SSH and afterwards in the image itself that cloud-init applied
# pibake's seed (hostname node-1) and that pibake-firstboot ran.
#
# Network: eth0 is on a private L2 made of a unix-socket vde_switch (nothing else on it yet);
# eth1 (the gateway's uplink) is QEMU user networking with restrict=on, so no guest packet can
# leave the VM except through the host-side forwards on 127.0.0.1 (SSH hostfwd).
#
# Not part of the default ctest run: configure with -DPIBAKE_E2E=ON (see docs/e2e.md).
# Env: PIBAKE (binary; default build/pibake), PIBAKE_E2E_CACHE, PIBAKE_E2E_TIMEOUT (seconds to wait
# for the boot, default 900), PIBAKE_E2E_KEEP=1 (keep the work dir), PIBAKE_TEST_TMP (work dir parent).
# Exit 0 pass, 1 fail, 77 skipped (a tool is missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export PATH=$PATH:/usr/sbin:/sbin
PIBAKE=${PIBAKE:-$src/build/pibake}
timeout_s=${PIBAKE_E2E_TIMEOUT:-900}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

skip() { echo "SKIP (e2e.boot_smoke): $*" >&2; exit 77; }
for t in qemu-system-aarch64 vde_switch mcopy mtype sfdisk debugfs ssh ssh-keygen python3; do
  command -v $t >/dev/null || skip "$t is not installed"
done
[ -x "$PIBAKE" ] || skip "no pibake binary at $PIBAKE (set PIBAKE)"

mkdir -p "${PIBAKE_TEST_TMP:-/tmp}"
W=$(mktemp -d "${PIBAKE_TEST_TMP:-/tmp}/e2e-boot-smoke.XXXXXX")
QEMU_PID=""; VDE_PID=""
cleanup() {
  [ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true
  [ -z "$VDE_PID" ] || kill "$VDE_PID" 2>/dev/null || true
  if [ "${PIBAKE_E2E_KEEP:-0}" = 1 ] || [ "${failed:-0}" = 1 ]; then
    echo "work dir kept: $W" >&2
  else
    rm -rf "$W"
  fi
}
trap cleanup EXIT
cd "$W"

report=$W/report.txt
t_start=$(date +%s); t_stage=$t_start
stage() {  # stage NAME: records how long the stage that just ended took
  local now; now=$(date +%s)
  printf '%-28s %5ss\n' "$1" $((now - t_stage)) | tee -a "$report"
  t_stage=$now
}
failed=0
fail() {
  failed=1
  echo "FAIL (e2e.boot_smoke): $*" >&2
  if [ -s serial.log ]; then echo "--- last 60 lines of serial.log ---" >&2; tail -n 60 serial.log | tr -d '\r' >&2; fi
  exit 1
}
part_field() {
  sfdisk -d "$1" | awk -v n="$2" -v f="$3" '
    /^[^ ].* : start=/ { i++; if (i == n) { s = $0; sub(".*" f "= *", "", s); sub(",.*", "", s); print s * 512 } }'
}
# The serial log without carriage returns and systemd's colour codes.
serial_text() { tr -d '\r' < serial.log | sed 's/\x1b\[[0-9;]*m//g'; }
serial_has() { grep -aqE -- "$1" <(serial_text); }
# Problems that do not stop the run (so one run shows as much as it can); any one fails the test.
problems=()
problem() { echo "PROBLEM: $*" | tee -a "$report" >&2; problems+=("$*"); }

# 1. The arm64 stand-in base image (cached; ~20-40 min the first time under qemu-user).
base=$(bash "$here/make-rootfs-image.sh" | tail -n 1) || {
  rc=$?; [ $rc = 77 ] && skip "cannot build the arm64 base image"; fail "make-rootfs-image.sh exited $rc"; }
[ -s "$base" ] || fail "no base image"
stage "base image (cache: $(basename "$base"))"

# 2. pibake build: one node (control plane + gateway), wired uplink eth1, stand-in artifacts.
bash "$src/tests/fixtures/make-artifacts.sh" "$W/upstream" >/dev/null
ssh-keygen -q -t ed25519 -N '' -C pibake-e2e -f "$W/id_e2e"
cat > cluster.yaml <<YAML
cluster: {name: e2e}
nodes: {count: 1}
network:
  uplink: {interface: eth1}
access:
  ssh_authorized_keys: ["$(cat "$W/id_e2e.pub")"]
mirrors:
  "https://dl.k8s.io": "file://$W/upstream/dl.k8s.io"
  "https://github.com": "file://$W/upstream/github.com"
YAML
HOME=$W "$PIBAKE" build --base-image "$base" --out out > build.log 2>&1 || { cat build.log >&2; fail "pibake build failed"; }
img=$W/out/node-1.img
[ -s "$img" ] || fail "pibake wrote no node-1.img"
stage "pibake build (1 node)"

# 3. Kernel, initrd and command line from the node image's system-boot.
boot_off=$(part_field "$img" 1 start); root_off=$(part_field "$img" 2 start)
mcopy -n -i "$img@@$boot_off" ::vmlinuz "$W/vmlinuz"
mcopy -n -i "$img@@$boot_off" ::initrd.img "$W/initrd.img"
cmdline=$(mtype -i "$img@@$boot_off" ::cmdline.txt | head -n 1 | tr -d '\r\n')
case " $cmdline " in *" console=ttyAMA0 "*) ;; *) cmdline="$cmdline console=ttyAMA0" ;; esac
echo "cmdline: $cmdline" | tee -a "$report"
mtype -i "$img@@$boot_off" ::meta-data | grep -q 'local-hostname: node-1' || fail "the seed's meta-data does not name node-1"

# 4. Boot. eth0: vde_switch on a unix socket dir; eth1: user networking, restrict=on (no route
# out), SSH forwarded from 127.0.0.1 only.
vde_switch -s "$W/lan.vde" -M "$W/lan.mgmt" -d -p "$W/vde.pid" </dev/null >/dev/null 2>&1 || fail "vde_switch did not start"
VDE_PID=$(cat "$W/vde.pid")
ssh_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
: > serial.log
qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 1 -nodefaults -display none \
  -kernel "$W/vmlinuz" -initrd "$W/initrd.img" -append "$cmdline" \
  -drive file="$img",format=raw,if=virtio \
  -netdev vde,id=lan,sock="$W/lan.vde" -device virtio-net-pci,netdev=lan,mac=52:54:00:e2:e0:01 \
  -netdev user,id=up,restrict=on,hostfwd="tcp:127.0.0.1:$ssh_port-:22" \
  -device virtio-net-pci,netdev=up,mac=52:54:00:e2:e1:01 \
  -serial file:"$W/serial.log" -monitor unix:"$W/monitor.sock",server,nowait \
  -no-reboot > qemu.log 2>&1 &
QEMU_PID=$!
deadline=$(( $(date +%s) + timeout_s ))
login=0; firstboot=0; cycle=0; cloudinit=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  kill -0 "$QEMU_PID" 2>/dev/null || { cat qemu.log >&2; fail "qemu exited early"; }
  if [ $login = 0 ] && serial_has 'node-1 login:'; then login=1; stage "boot to 'node-1 login:'"; fi
  if [ $firstboot = 0 ] && serial_has 'Finished pibake-firstboot'; then
    firstboot=1; stage "pibake-firstboot finished"; fi
  if serial_has 'Failed to start pibake-firstboot'; then fail "pibake-firstboot failed"; fi
  # systemd drops a unit's start job when it finds an ordering cycle; it then never runs.
  if serial_has 'ordering cycle on pibake-firstboot|skipping pibake-firstboot'; then cycle=1; fi
  if [ $cloudinit = 0 ] && serial_has 'Cloud-init v\. .* finished'; then cloudinit=1; stage "cloud-init finished"; fi
  [ $login = 1 ] && [ $cloudinit = 1 ] && { [ $firstboot = 1 ] || [ $cycle = 1 ]; } && break
  sleep 5
done
[ $login = 1 ] || fail "no 'node-1 login:' on the serial console within ${timeout_s}s"

# 5. Checks from the serial log.
serial_has 'Cloud-init v\. .* running .init-local' || fail "cloud-init did not run (init-local)"
serial_has 'Cloud-init v\. .* finished' || fail "cloud-init did not finish"
echo "--- key serial lines ---" | tee -a "$report"
serial_text | grep -aE 'Linux version|Cloud-init v\.|ci-info: \| +eth[01] |pibake|ordering cycle|FAILED|node-1 login:' \
  | head -n 40 | tee -a "$report" || true
[ $cycle = 0 ] || problem "systemd found an ordering cycle and skipped pibake-firstboot.service at boot"
serial_has 'FAILED.*cloud-(init|config|final)' && problem "a cloud-init stage failed (see serial.log)"

# 6. Checks over SSH (through the uplink's hostfwd on 127.0.0.1).
ssh_e2e() {
  ssh -i "$W/id_e2e" -p "$ssh_port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o ConnectTimeout=20 -o BatchMode=yes -o LogLevel=ERROR ubuntu@127.0.0.1 "$@"
}
ssh_ok=0
for _ in $(seq 1 12); do ssh_e2e true 2>/dev/null && { ssh_ok=1; break; }; sleep 10; done
if [ $ssh_ok = 1 ]; then
  echo "--- over ssh ---" | tee -a "$report"
  if [ $cycle = 1 ] && ! ssh_e2e 'test -e /var/lib/pibake/firstboot.done'; then
    # Start it by hand, so the rest of the bootstrap is still exercised in this run.
    echo "starting pibake-firstboot by hand (it was skipped at boot)" | tee -a "$report"
    ssh_e2e 'sudo systemctl start pibake-firstboot' || problem "pibake-firstboot failed when started by hand"
  fi
  ssh_e2e 'hostname; hostname -f; cat /proc/cmdline; ip -br addr; ip route; cloud-init status --long;
           sudo cat /var/lib/pibake/steps; ls /var/lib/pibake; systemctl is-system-running;
           systemctl --failed --no-legend; systemctl is-active isc-dhcp-server pibake-nat;
           sudo iptables -t nat -S POSTROUTING; sudo journalctl -b -u pibake-firstboot --no-pager | tail -n 25' \
    2>&1 | tee -a "$report" ssh.log || true
  [ "$(ssh_e2e hostname)" = node-1 ] || problem "hostname over ssh is not node-1"
  [ "$(ssh_e2e 'ip -4 -br addr show eth0' | awk '{print $3}')" = 10.0.0.1/24 ] || problem "eth0 is not 10.0.0.1/24"
  ssh_e2e 'cloud-init status' | grep -q 'status: done' || problem "cloud-init status is not done"
  ! ssh_e2e 'systemctl is-failed cloud-init-local cloud-init cloud-config cloud-final' | grep -qx failed ||
    problem "a cloud-init unit failed"
  ssh_e2e 'systemctl is-active isc-dhcp-server' >/dev/null || problem "isc-dhcp-server is not active on the gateway"
  stage "ssh checks"
else
  echo "ssh to ubuntu@127.0.0.1:$ssh_port did not work" | tee -a "$report"
fi
if [ $firstboot = 0 ] && [ $ssh_ok = 1 ]; then
  ssh_e2e 'test -e /var/lib/pibake/firstboot.done' && firstboot=1
fi

# 7. Power off cleanly, then look inside the image with debugfs (no mount).
if [ $ssh_ok = 1 ]; then ssh_e2e 'sudo systemctl poweroff' >/dev/null 2>&1 || true
else echo system_powerdown | python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())' "$W/monitor.sock" || true; fi
for _ in $(seq 1 60); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 2; done
if kill -0 "$QEMU_PID" 2>/dev/null; then kill "$QEMU_PID"; echo "qemu did not power off; killed" | tee -a "$report"; fi
wait "$QEMU_PID" 2>/dev/null || true; QEMU_PID=""
stage "power off"
r() { debugfs -R "cat $1" "$img?offset=$root_off" 2>/dev/null; }
[ "$(r /etc/hostname)" = node-1 ] || fail "/etc/hostname in the image is not node-1 after boot"
r /var/lib/cloud/data/instance-id | tee -a "$report" | grep -q . || fail "cloud-init recorded no instance-id"
if r /var/lib/pibake/steps > steps.txt && [ -s steps.txt ]; then
  echo "pibake-firstboot steps done: $(tr '\n' ' ' < steps.txt)" | tee -a "$report"
fi
debugfs -R "stat /var/lib/pibake/firstboot.done" "$img?offset=$root_off" 2>/dev/null | grep -q Inode && firstboot=1
[ $firstboot = 1 ] || fail "pibake-firstboot did not finish (no /var/lib/pibake/firstboot.done)"
e2fsck -fn "$img?offset=$root_off" > e2fsck.log 2>&1 || { cat e2fsck.log >&2; fail "e2fsck -fn after shutdown"; }
printf '%-28s %5ss\n' total $(( $(date +%s) - t_start )) | tee -a "$report"
if [ ${#problems[@]} -gt 0 ]; then
  failed=1
  printf 'FAIL (e2e.boot_smoke): %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "PASS (e2e.boot_smoke)"
