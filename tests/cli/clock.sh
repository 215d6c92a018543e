#!/usr/bin/env bash
# The clock without a network (issue 12, item 4; docs/cluster.md): every image carries the clock
# floor, /usr/lib/clock-epoch and /var/lib/systemd/timesync/clock, whose mtimes (read with debugfs)
# are at or after the notBefore of every certificate pibake issued (read with openssl from the
# images and from the state dir), the same on every node; owned by the base's systemd-timesync user
# when it has one, else root. The gateway serves time with chrony (its drop-in checked by
# `chronyd -p`), the other nodes ask it (chrony's sources.d and timesyncd.conf.d, parsed).
source "$(dirname "$0")/lib.bash"
require_tool debugfs openssl chronyd python3 base64

# stat_field IMG PATH FIELD: "mtime" (Unix seconds), "owner" (uid:gid) or "mode" (octal) of PATH.
stat_field() {
  local out
  out=$(debugfs -R "stat $2" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null)
  grep -q "Inode:" <<< "$out" || fail "$1 has no $2"
  case $3 in
    mtime) printf '%d\n' "0x$(sed -n 's/^ *mtime: *0x\([0-9a-f]*\).*/\1/p' <<< "$out")" ;;
    owner) sed -n 's/.*User: *\([0-9]*\) *Group: *\([0-9]*\).*/\1:\2/p' <<< "$out" ;;
    mode) sed -n 's/.*Mode: *0*\([0-7]*\).*/\1/p' <<< "$out" ;;
  esac
}
not_before() { date -u -d "$(openssl x509 -noout -startdate -in "$1" | sed 's/^notBefore=//')" +%s; }

make_base base.img
echo 'nodes: {count: 3}' > cluster.yaml
fake_upstream
pibake_ok build --base-image base.img --out out

# Every certificate pibake issued: node-1's under /etc/kubernetes (its CAs, pibake's copy), each
# worker's CA and kubelet client certificate (embedded in kubelet.conf), and the state dir's.
mkdir -p certs
for k in 1 2 3; do
  mkdir -p "tree-$k"
  debugfs -R "rdump /etc/kubernetes $SCRATCH/tree-$k" "out/node-$k.img?offset=$(part_offset "out/node-$k.img" 2)" >/dev/null 2>&1
  if [ -s "tree-$k/kubernetes/kubelet.conf" ]; then
    python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["users"][0]["user"]["client-certificate-data"])' \
      "tree-$k/kubernetes/kubelet.conf" | base64 -d > "certs/kubelet-node-$k.crt"
  fi
done
state=$(find "$SCRATCH" -maxdepth 3 -type d -name pibake-state -not -path "*/home/*" | head -n 1)
[ -n "$state" ] || state=$(find "$SCRATCH" -maxdepth 4 -type d -name pibake-state | head -n 1)
[ -n "$state" ] || fail "no pibake-state directory after the build"
newest=0; count=0
while IFS= read -r crt; do
  t=$(not_before "$crt"); count=$((count + 1))
  [ "$t" -le "$newest" ] || newest=$t
done < <(find tree-1 tree-2 tree-3 certs "$state" -name '*.crt')
[ "$count" -ge 10 ] || fail "only $count certificates found in the images and the state dir"
[ -s certs/kubelet-node-2.crt ] && [ -s certs/kubelet-node-3.crt ] || fail "the workers' kubelet certificates were not found"

for k in 1 2 3; do
  img=out/node-$k.img
  epoch=$(stat_field "$img" /usr/lib/clock-epoch mtime)
  clock=$(stat_field "$img" /var/lib/systemd/timesync/clock mtime)
  assert_eq "$clock" "$epoch" "node-$k: timesync/clock and clock-epoch mtimes"
  # At or after every notBefore, and exactly the newest (SOURCE_DATE_EPOCH, 2023, is older).
  [ "$epoch" -ge "$newest" ] || fail "node-$k: clock floor $epoch is before a certificate's notBefore $newest"
  assert_eq "$epoch" "$newest" "node-$k: clock floor (the newest notBefore)"
  assert_eq "$(stat_field "$img" /var/lib/systemd/timesync/clock owner)" "0:0" "node-$k: owner of timesync/clock (no systemd-timesync user in the base)"
  assert_eq "$(stat_field "$img" /var/lib/systemd/timesync/clock mode)" "644" "node-$k: mode of timesync/clock"
  assert_eq "$(stat_field "$img" /var/lib/systemd/timesync mode)" "755" "node-$k: mode of /var/lib/systemd/timesync"
  assert_eq "$(stat_field "$img" /usr/lib/clock-epoch owner)" "0:0" "node-$k: owner of clock-epoch"
  [ -z "$(root_cat "$img" /usr/lib/clock-epoch)" ] || fail "node-$k: clock-epoch is not empty"
  # The first boot knows the same floor, and the CA's notBefore is not after it.
  root_cat "$img" /usr/local/sbin/pibake-firstboot > firstboot
  assert_contains firstboot "CLOCK_FLOOR=$epoch"
  ca=$(sed -n 's/^NOT_BEFORE=//p' firstboot)
  [ "$ca" -le "$epoch" ] || fail "node-$k: the CA's notBefore $ca is after the clock floor $epoch"
done

# The gateway serves time: chrony reads its drop-in (chronyd -p parses it and prints it back, and
# refuses an unknown directive), allowing the spec's subnet and keeping a local stratum offline.
root_cat out/node-1.img /etc/chrony/conf.d/pibake-gateway.conf > gateway.conf
chronyd -p -f gateway.conf > parsed.conf 2> chronyd.err || { cat chronyd.err >&2; fail "chronyd -p rejects the gateway's chrony drop-in"; }
assert_eq "$(grep -v '^#' parsed.conf | sort | tr '\n' ';')" "allow 10.0.0.0/24;local stratum 10;" "chrony directives on the gateway"
assert_contains <(root_cat out/node-1.img /usr/local/sbin/pibake-firstboot) 'PACKAGES="chrony conntrack etcd-client iptables isc-dhcp-server socat"'
echo "alow 10.0.0.0/24" > bad.conf
if chronyd -p -f bad.conf >/dev/null 2>&1; then fail "chronyd -p accepted an unknown directive: the check cannot fail"; fi
# The others take time from the gateway, whichever daemon their release runs.
for k in 2 3; do
  img=out/node-$k.img
  root_cat "$img" /etc/chrony/sources.d/pibake.sources > sources.conf
  chronyd -p -f sources.conf > parsed.conf 2> chronyd.err || { cat chronyd.err >&2; fail "chronyd -p rejects node-$k's sources"; }
  assert_eq "$(grep -v '^#' parsed.conf)" "server 10.0.0.1 iburst maxpoll 7" "node-$k: chrony source"
  root_cat "$img" /etc/systemd/timesyncd.conf.d/pibake.conf > timesyncd.conf
  python3 -c 'import configparser, sys; c = configparser.ConfigParser(); c.read(sys.argv[1]); t = c["Time"]
assert t["NTP"] == "10.0.0.1" and t["PollIntervalMaxSec"] == "128", dict(t)' \
    timesyncd.conf || fail "node-$k: timesyncd.conf.d does not name the gateway with a 128 s maximum poll interval"
  if debugfs -R "stat /etc/chrony/conf.d/pibake-gateway.conf" "$img?offset=$(part_offset "$img" 2)" 2>&1 | grep -q "Inode:"; then
    fail "node-$k serves time like the gateway"
  fi
  assert_contains <(root_cat "$img" /usr/local/sbin/pibake-firstboot) 'PACKAGES="conntrack iptables socat"'
done
for f in /etc/chrony/sources.d/pibake.sources /etc/systemd/timesyncd.conf.d/pibake.conf; do
  if debugfs -R "stat $f" "out/node-1.img?offset=$(part_offset out/node-1.img 2)" 2>&1 | grep -q "Inode:"; then
    fail "the gateway asks itself for the time ($f)"
  fi
done

# A base that has systemd-timesyncd's user (Ubuntu 24.04): the clock file and its directory are
# that user's, as timesyncd's StateDirectory= leaves them.
mkdir -p rootdir/etc other && chmod 0777 other
printf 'root:x:0:0:root:/root:/bin/bash\nsystemd-timesync:x:997:996:systemd Time Synchronization:/:/usr/sbin/nologin\n' > rootdir/etc/passwd
make_base other/base.img --release 24.04 --root-dir rootdir
(cd other && echo 'nodes: {count: 2}' > cluster.yaml && cat ../cluster.yaml | sed -n '/^mirrors:/,$p' >> cluster.yaml)
(cd other && pibake_ok build --base-image base.img --out out --node node-2)
assert_eq "$(stat_field other/out/node-2.img /var/lib/systemd/timesync/clock owner)" "997:996" "owner of timesync/clock (systemd-timesync in the base)"
assert_eq "$(stat_field other/out/node-2.img /var/lib/systemd/timesync owner)" "997:996" "owner of /var/lib/systemd/timesync"
assert_eq "$(stat_field other/out/node-2.img /usr/lib/clock-epoch owner)" "0:0" "owner of clock-epoch"
echo "ok: clock floor at the newest of $count notBefore dates on every node; chrony on the gateway, its clients elsewhere"
