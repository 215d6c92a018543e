#!/usr/bin/env bash
# Issue 3's overlays, checked with the tools that read them on the Pi: netplan generate on each
# node's network-config, cloud-init schema on user-data, dhcpd -t on the gateway's dhcpd.conf and
# kea-dhcp4 -t on its Kea configuration (network.dhcp_server: kea), systemd-analyze verify and the
# shell checker (shellcheck) on the units and scripts; read back with debugfs and mtools.
source "$(dirname "$0")/lib.bash"
require_tool debugfs mtype sfdisk netplan cloud-init dhcpd kea-dhcp4 systemd-analyze shellcheck python3
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
cat > cluster.yaml <<'YAML'
cluster: {name: stack, domain: cluster.home}
nodes: {count: 4}
network:
  subnet: 10.0.0.0/24
  uplink: {interface: wlan0, wifi: {ssid: "home net", password: "s3cret-pass", country: GB}}
  dhcp_range: 10.0.0.100-10.0.0.200
  dns: [1.1.1.1, 9.9.9.9]
access:
  user: pi
  ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs0e6mPyyVZl4PzbJ3p1bYd3Tj9n9bO7zq1o6yJ9T3V me@laptop"]
YAML
fake_upstream
pibake_ok build -c cluster.yaml --base-image base.img --out out

for k in 1 2 3 4; do
  img=out/node-$k.img
  # The command line that boots (Ubuntu 26.04's current/cmdline.txt, the fixture's default
  # layout; tests/cli/releases.sh covers the others): the cgroup tokens once, every original
  # token kept, in order.
  cmd=$(boot_cat "$img" /current/cmdline.txt | head -1)
  orig=$(boot_cat base.img /current/cmdline.txt | head -1)
  case "$cmd" in "$orig cgroup_enable=memory cgroup_memory=1"*) ;; *) fail "$img cmdline.txt: '$cmd'";; esac
  for t in cgroup_enable=memory cgroup_memory=1; do
    assert_eq "$(tr ' ' '\n' <<< "$cmd" | grep -cx -- "$t")" 1 "$img cmdline.txt: count of $t"
  done
  # The seed's YAML parses with python3-yaml too (cloud-init reads all three with it).
  for f in user-data network-config meta-data; do
    boot_cat "$img" /$f > seed-$f
    yaml_docs seed-$f > /dev/null
  done
  python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["instance-id"] and d["local-hostname"] == sys.argv[2], d' \
    seed-meta-data "node-$k" || fail "node-$k's meta-data lacks instance-id or local-hostname node-$k"
  root_cat "$img" /etc/cloud/cloud.cfg.d/90-pibake.cfg > 90-pibake.cfg
  yaml_docs 90-pibake.cfg > /dev/null
  # network-config renders with netplan itself.
  root=$SCRATCH/netplan-$k; mkdir -p "$root/etc/netplan"
  boot_cat "$img" /network-config > "$root/etc/netplan/50-cloud-init.yaml"
  chmod 600 "$root/etc/netplan/50-cloud-init.yaml"
  netplan generate --root-dir "$root" 2> netplan.err || { cat netplan.err >&2; fail "netplan rejects node-$k's network-config"; }
  net=$root/run/systemd/network/10-netplan-eth0.network
  assert_contains "$net" "Address=10.0.0.$k/24"
  assert_contains "$net" "DNS=1.1.1.1"
  # user-data passes cloud-init's own schema check.
  boot_cat "$img" /user-data > user-data
  cloud-init schema --config-file user-data > schema.log 2>&1 || { cat schema.log user-data >&2; fail "cloud-init schema rejects node-$k's user-data"; }
  assert_contains user-data "ssh_pwauth: false"
  assert_contains user-data 'name: "pi"'
  # Names: hostname and every node in /etc/hosts.
  assert_eq "$(root_cat "$img" /etc/hostname)" "node-$k" "hostname"
  root_cat "$img" /etc/hosts > hosts
  for j in 1 2 3 4; do assert_contains hosts "10.0.0.$j node-$j.cluster.home node-$j"; done
  # Kernel settings on every node.
  assert_contains <(root_cat "$img" /etc/modules-load.d/pibake-kubernetes.conf) "br_netfilter"
  root_cat "$img" /etc/sysctl.d/90-pibake-kubernetes.conf > sysctl
  assert_contains sysctl "net.ipv4.ip_forward = 1"
  assert_contains sysctl "net.bridge.bridge-nf-call-iptables = 1"
  debugfs -R "stat /etc/systemd/system/swap.target" "$img?offset=$(part_offset "$img" 2)" 2>/dev/null > swap
  assert_contains swap 'Fast link dest: "/dev/null"'
  if [ $k = 1 ]; then
    assert_contains "$root/run/systemd/network/10-netplan-eth0.network" "Address=10.0.0.1/24"
    ls "$root"/run/netplan/wpa-wlan0.conf >/dev/null 2>&1 || fail "the gateway's Wi-Fi uplink was not rendered"
    assert_contains "$root/run/netplan/wpa-wlan0.conf" 'ssid="home net"'
    case "$cmd" in *"cfg80211.ieee80211_regdom=GB"*) ;; *) fail "gateway cmdline lacks the regulatory domain";; esac
  else
    assert_contains "$net" "Gateway=10.0.0.1"
    case "$cmd" in *cfg80211*) fail "worker got the Wi-Fi regulatory domain";; esac
  fi
done

# Gateway-only files: DHCP server and NAT. Workers have none of them.
g=out/node-1.img
root_cat "$g" /etc/dhcp/dhcpd.conf > dhcpd.conf
dhcpd -t -cf dhcpd.conf > dhcpd.log 2>&1 || { cat dhcpd.log >&2; fail "dhcpd -t rejects the gateway's dhcpd.conf"; }
assert_contains dhcpd.conf "range 10.0.0.100 10.0.0.200;"
assert_contains dhcpd.conf "option routers 10.0.0.1;"
assert_contains dhcpd.conf 'option domain-name "cluster.home";'
assert_contains dhcpd.conf "option domain-name-servers 1.1.1.1, 9.9.9.9;"
assert_contains dhcpd.conf "authoritative;"
assert_contains dhcpd.conf "option ntp-servers 10.0.0.1;"
assert_contains dhcpd.conf "default-lease-time 600;"
assert_contains dhcpd.conf "max-lease-time 7200;"
# The fixture is Ubuntu 26.04: network.dhcp_server auto picks isc-dhcp-server, and only its files.
assert_contains <(root_cat "$g" /usr/local/sbin/pibake-firstboot) 'PACKAGES="chrony conntrack etcd-client iptables isc-dhcp-server socat"'
if debugfs -R "stat /etc/kea/kea-dhcp4.conf" "$g?offset=$(part_offset "$g" 2)" 2>&1 | grep "Inode:" >/dev/null; then
  fail "the isc-dhcp-server gateway has /etc/kea/kea-dhcp4.conf"
fi
assert_contains <(root_cat "$g" /etc/default/isc-dhcp-server) 'INTERFACESv4="eth0"'
# The DHCP server waits for eth0's address, however late, then runs dhcpd in the foreground (so
# systemd restarts it whenever it exits). Run against stand-ins: `ip` shows no address for its
# first 3 calls (the link is down), sleep and dhcpd record their calls.
root_cat "$g" /usr/local/sbin/pibake-dhcp-server > pibake-dhcp-server
shellcheck -s sh pibake-dhcp-server || fail "shellcheck finds problems in pibake-dhcp-server"
debugfs -R "stat /usr/local/sbin/pibake-dhcp-server" "$g?offset=$(part_offset "$g" 2)" 2>/dev/null | grep "Mode:  0755" >/dev/null \
  || fail "pibake-dhcp-server is not 0755"
root_cat "$g" /etc/systemd/system/isc-dhcp-server.service > dhcp.service
assert_contains dhcp.service "Restart=always"
assert_contains dhcp.service "StartLimitIntervalSec=0"
dhcp_root=$SCRATCH/dhcp-root; mkdir -p "$dhcp_root/etc/default" "$dhcp_root/etc/dhcp" stand-ins
root_cat "$g" /etc/default/isc-dhcp-server > "$dhcp_root/etc/default/isc-dhcp-server"
cat > stand-ins/ip <<STUB
#!/bin/sh
echo "ip \$*" >> "$SCRATCH/dhcp-calls.log"
n=\$(grep -c '^ip ' "$SCRATCH/dhcp-calls.log")
[ "\$n" -gt 3 ] || exit 0
echo "2: eth0    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0"
STUB
printf '#!/bin/sh\necho "sleep $*" >> "%s/dhcp-calls.log"\n' "$SCRATCH" > stand-ins/sleep
printf '#!/bin/sh\necho "dhcpd $*" >> "%s/dhcp-calls.log"\n' "$SCRATCH" > stand-ins/dhcpd
chmod +x stand-ins/*
env PATH="$SCRATCH/stand-ins:$PATH" PIBAKE_TEST_ROOT="$dhcp_root" sh pibake-dhcp-server > dhcp-run.log 2>&1 \
  || { cat dhcp-run.log >&2; fail "pibake-dhcp-server failed"; }
assert_eq "$(grep -c 'waiting for 10.0.0.1 on eth0' dhcp-run.log)" 1 "'waiting' lines (logged once)"
assert_eq "$(grep -c '^ip -4 -o addr show dev eth0$' dhcp-calls.log)" 4 "address checks"
assert_eq "$(grep -c '^sleep 2$' dhcp-calls.log)" 2 "waits between address checks"
assert_eq "$(tail -n 1 dhcp-calls.log)" "dhcpd -f -4 -cf $dhcp_root/etc/dhcp/dhcpd.conf -lf $dhcp_root/var/lib/dhcp/dhcpd.leases -pf $dhcp_root/run/dhcp-server/dhcpd.pid eth0" "dhcpd command line"
[ -f "$dhcp_root/var/lib/dhcp/dhcpd.leases" ] || fail "pibake-dhcp-server did not create the leases file"
root_cat "$g" /usr/local/sbin/pibake-nat > pibake-nat
shellcheck -s sh pibake-nat || fail "shellcheck finds problems in pibake-nat"
assert_contains pibake-nat "UPLINK=wlan0"
off=$(part_offset "$g" 2)
debugfs -R "stat /usr/local/sbin/pibake-nat" "$g?offset=$off" 2>/dev/null | grep "Mode:  0755" >/dev/null || fail "pibake-nat is not 0755"
debugfs -R "stat /etc/systemd/system/multi-user.target.wants/pibake-nat.service" "$g?offset=$off" 2>/dev/null > link.txt
assert_contains link.txt 'Fast link dest: "/etc/systemd/system/pibake-nat.service"'

# systemd-analyze verify against a root holding systemd's own units, pibake's units and the
# programs they start (taken from the image, or the host's for system tools).
vroot=$SCRATCH/vroot
mkdir -p "$vroot/usr/lib/systemd" "$vroot/sbin"
cp -a /usr/lib/systemd/system "$vroot/usr/lib/systemd/"
ln -sf "$(command -v modprobe || echo /bin/true)" "$vroot/sbin/modprobe"  # only its presence is checked
units="/etc/systemd/system/pibake-nat.service /etc/systemd/system/pibake-firstboot.service
  /etc/systemd/system/pibake-label-workers.service /etc/systemd/system/kubelet.service
  /etc/systemd/system/pibake-renew-certs.service /etc/systemd/system/pibake-renew-certs.timer
  /etc/systemd/system/pibake-etcd-snapshot.service /etc/systemd/system/pibake-etcd-snapshot.timer
  /etc/systemd/system/isc-dhcp-server.service
  /usr/local/lib/systemd/system/containerd.service"
for u in $units; do
  mkdir -p "$vroot$(dirname "$u")"
  root_cat "$g" "$u" > "$vroot$u"
  [ -s "$vroot$u" ] || fail "node-1 has no $u"
  for exe in $(sed -n 's/^Exec[A-Za-z]*=-\{0,1\}\([^ ]*\).*/\1/p' "$vroot$u"); do
    [ -e "$vroot$exe" ] && continue
    mkdir -p "$vroot$(dirname "$exe")"
    root_cat "$g" "$exe" > "$vroot$exe"; chmod 755 "$vroot$exe"
    [ -s "$vroot$exe" ] || fail "node-1 has no $exe (started by $u)"
  done
done
mkdir -p "$vroot/etc/systemd/system/kubelet.service.d"
root_cat "$g" /etc/systemd/system/kubelet.service.d/10-kubeadm.conf > "$vroot/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
for u in $units; do
  systemd-analyze verify --root="$vroot" "$u" > verify.log 2>&1 || { cat verify.log >&2; fail "systemd-analyze verify rejects $u"; }
  if grep -i "$(basename "$u")" verify.log; then fail "systemd-analyze warns about $u"; fi
done

for k in 2 3 4; do
  w=out/node-$k.img; woff=$(part_offset "$w" 2)
  for f in /etc/dhcp/dhcpd.conf /etc/default/isc-dhcp-server /usr/local/sbin/pibake-nat /etc/systemd/system/pibake-nat.service \
    /etc/systemd/system/isc-dhcp-server.service /usr/local/sbin/pibake-dhcp-server; do
    if debugfs -R "stat $f" "$w?offset=$woff" 2>&1 | grep "Inode:" >/dev/null; then fail "worker node-$k has $f"; fi
  done
done

# network.dhcp_server: kea. The gateway gets Kea's configuration, checked by kea-dhcp4 itself and
# then value by value (python3's json) against the spec and against what dhcpd.conf says above:
# the same pool, subnet, router, broadcast address, domain, DNS and NTP servers and lease times.
sed 's/^  dns: \[1.1.1.1, 9.9.9.9\]$/&\n  dhcp_server: kea/' cluster.yaml > cluster-kea.yaml
grep -q '^  dhcp_server: kea$' cluster-kea.yaml || fail "cluster-kea.yaml lacks dhcp_server: kea"
pibake_ok build -c cluster-kea.yaml --base-image base.img --out out-kea --node node-1
k=out-kea/node-1.img; koff=$(part_offset "$k" 2)
root_cat "$k" /etc/kea/kea-dhcp4.conf > kea-dhcp4.conf
kea-dhcp4 -t kea-dhcp4.conf > kea.log 2>&1 || { cat kea.log kea-dhcp4.conf >&2; fail "kea-dhcp4 -t rejects the gateway's kea-dhcp4.conf"; }
python3 - kea-dhcp4.conf dhcpd.conf <<'PY' || fail "kea-dhcp4.conf does not carry the spec's (and dhcpd.conf's) settings"
import json, re, sys
kea = json.load(open(sys.argv[1]))["Dhcp4"]
dhcpd = open(sys.argv[2]).read()
def isc(option):  # the value of an ISC "option NAME VALUE;" line
    return re.search(r"option " + option + r" ([^;]+);", dhcpd).group(1).strip('"')
def options(data):
    return {o["name"]: o["data"] for o in data}
(subnet,) = kea["subnet4"]
opts = {**options(kea["option-data"]), **options(subnet["option-data"])}
want = {  # the spec: cluster.yaml above
    "interfaces": ["eth0"], "subnet": "10.0.0.0/24", "pools": ["10.0.0.100 - 10.0.0.200"],
    "routers": "10.0.0.1", "broadcast-address": "10.0.0.255", "domain-name": "cluster.home",
    "domain-name-servers": "1.1.1.1, 9.9.9.9", "ntp-servers": "10.0.0.1",
    "valid-lifetime": 600, "max-valid-lifetime": 7200, "authoritative": True,
}
got = {
    "interfaces": kea["interfaces-config"]["interfaces"], "subnet": subnet["subnet"],
    "pools": [p["pool"] for p in subnet["pools"]], "routers": opts["routers"],
    "broadcast-address": opts["broadcast-address"], "domain-name": opts["domain-name"],
    "domain-name-servers": opts["domain-name-servers"], "ntp-servers": opts["ntp-servers"],
    "valid-lifetime": kea["valid-lifetime"], "max-valid-lifetime": kea["max-valid-lifetime"],
    "authoritative": kea["authoritative"],
}
assert got == want, (got, want)
first, last = re.search(r"range (\S+) (\S+);", dhcpd).groups()
isc_view = {
    "pools": [first + " - " + last], "routers": isc("routers"), "broadcast-address": isc("broadcast-address"),
    "domain-name": isc("domain-name"), "domain-name-servers": isc("domain-name-servers"),
    "ntp-servers": isc("ntp-servers"),
    "valid-lifetime": int(re.search(r"default-lease-time (\d+);", dhcpd).group(1)),
    "max-valid-lifetime": int(re.search(r"max-lease-time (\d+);", dhcpd).group(1)),
}
assert all(got[key] == value for key, value in isc_view.items()), (got, isc_view)
assert "host " not in dhcpd and "reservations" not in subnet  # no static leases on either side
PY
for f in /etc/dhcp/dhcpd.conf /etc/default/isc-dhcp-server /etc/systemd/system/isc-dhcp-server.service; do
  if debugfs -R "stat $f" "$k?offset=$koff" 2>&1 | grep "Inode:" >/dev/null; then fail "the Kea gateway has $f"; fi
done
root_cat "$k" /usr/local/sbin/pibake-firstboot > firstboot-kea
assert_contains firstboot-kea 'PACKAGES="chrony conntrack etcd-client iptables kea-dhcp4-server socat"'
assert_contains firstboot-kea 'DHCP_SERVICE=kea-dhcp4-server.service'
shellcheck -s sh firstboot-kea || fail "shellcheck finds problems in the Kea gateway's pibake-firstboot"
# Its start script waits for the address as for dhcpd, then runs kea-dhcp4 in the foreground.
root_cat "$k" /usr/local/sbin/pibake-dhcp-server > pibake-dhcp-server-kea
shellcheck -s sh pibake-dhcp-server-kea || fail "shellcheck finds problems in the Kea gateway's pibake-dhcp-server"
printf '#!/bin/sh\necho "kea-dhcp4 $*" >> "%s/dhcp-calls.log"\n' "$SCRATCH" > stand-ins/kea-dhcp4
chmod +x stand-ins/kea-dhcp4
: > dhcp-calls.log
env PATH="$SCRATCH/stand-ins:$PATH" PIBAKE_TEST_ROOT="$dhcp_root" sh pibake-dhcp-server-kea > kea-run.log 2>&1 \
  || { cat kea-run.log >&2; fail "pibake-dhcp-server (Kea) failed"; }
assert_eq "$(grep -c 'waiting for 10.0.0.1 on eth0' kea-run.log)" 1 "'waiting' lines (Kea)"
assert_contains kea-run.log "starting kea-dhcp4"
assert_eq "$(tail -n 1 dhcp-calls.log)" "kea-dhcp4 -c $dhcp_root/etc/kea/kea-dhcp4.conf" "kea-dhcp4 command line"
# Its unit, beside the others above (the programs it starts from the Kea image).
u=/etc/systemd/system/kea-dhcp4-server.service
root_cat "$k" "$u" > "$vroot$u"
root_cat "$k" /usr/local/sbin/pibake-dhcp-server > "$vroot/usr/local/sbin/pibake-dhcp-server"
assert_contains "$vroot$u" "Restart=always"
assert_contains "$vroot$u" "User=_kea"
systemd-analyze verify --root="$vroot" "$u" > verify.log 2>&1 || { cat verify.log >&2; fail "systemd-analyze verify rejects $u"; }
if grep -i "$(basename "$u")" verify.log; then fail "systemd-analyze warns about $u"; fi

# Rebuilding from a pibake image is idempotent: cmdline.txt does not gain the tokens twice.
pibake_ok build -c cluster.yaml --base-image out/node-2.img --out again --node node-2
assert_eq "$(boot_cat again/node-2.img /current/cmdline.txt)" "$(boot_cat out/node-2.img /current/cmdline.txt)" "cmdline.txt after a second pass"
# The default uplink (wlan0) with no Wi-Fi network: the gateway's network-config names no Wi-Fi at
# all, so netplan renders no wpa_supplicant for it (an empty-SSID access point made
# netplan-wpa-wlan0.service wait for the device at every boot).
mkdir nowifi && chmod 0777 nowifi
{ echo 'nodes: {count: 1}'; sed -n '/^mirrors:/,$p' cluster.yaml; } > nowifi/cluster.yaml
chmod 0644 nowifi/cluster.yaml
(cd nowifi && pibake_ok build --base-image ../base.img --out out)
root=$SCRATCH/netplan-nowifi; mkdir -p "$root/etc/netplan"
boot_cat nowifi/out/node-1.img /network-config > "$root/etc/netplan/50-cloud-init.yaml"
chmod 600 "$root/etc/netplan/50-cloud-init.yaml"
netplan generate --root-dir "$root" 2> netplan.err || { cat netplan.err >&2; fail "netplan rejects the no-Wi-Fi gateway's network-config"; }
assert_contains "$root/run/systemd/network/10-netplan-eth0.network" "Address=10.0.0.1/24"
if grep -q "wifis\|access-points" "$root/etc/netplan/50-cloud-init.yaml"; then fail "network-config names a Wi-Fi network though none is configured"; fi
if compgen -G "$root/run/netplan/wpa-*" >/dev/null || compgen -G "$root/run/systemd/system/*/netplan-wpa-*" >/dev/null; then
  fail "netplan renders a wpa_supplicant with no Wi-Fi network configured"
fi
echo "ok: netplan, cloud-init schema, dhcpd -t, kea-dhcp4 -t, systemd-analyze verify and shellcheck accept every node's files"
