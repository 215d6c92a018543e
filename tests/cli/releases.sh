#!/usr/bin/env bash
# Issue 11: Ubuntu 24.04, 25.10 and 26.04 bases, each built and read back with mtools, debugfs and
# e2fsck: the kernel command line that boots is the one edited (current/cmdline.txt on the A/B
# layout, new/cmdline.txt too while an update is pending; the root one on 24.04), tokens once,
# nothing else created; the release and layout shown by build, --dry-run and inspect (text and
# JSON); each node a fresh identity even from a base that has booted; bases pibake cannot serve
# (no command line, bigalloc root that must grow) refused before any output.
source "$(dirname "$0")/lib.bash"
require_tool debugfs mtype mdir sfdisk e2fsck fsck.fat python3 mke2fs

cat > cluster.yaml <<'YAML'
nodes: {count: 2}
network: {uplink: {interface: eth1}}
YAML
fake_upstream
tokens="cgroup_enable=memory cgroup_memory=1"

# boot_has IMG PATH: whether system-boot holds PATH (mdir, not pibake).
boot_has() { mdir -b -i "$1@@$(part_offset "$1" 1)" "::$2" >/dev/null 2>&1; }

# expect_cmdline IMG PATH BASE: PATH's first line is BASE's plus the tokens, once, order kept.
expect_cmdline() {
  local got orig
  got=$(boot_cat "$1" "$2" | head -1 | tr -d '\r')
  orig=$(boot_cat "$3" "$2" | head -1 | tr -d '\r')
  assert_eq "$got" "$orig $tokens" "$1:$2"
  [ "$(grep -o 'cgroup_enable=memory' <<<"$got" | wc -l)" = 1 ] || fail "$1:$2 has the token twice"
}

for release in 24.04 25.10 26.04; do
  note "Ubuntu $release"
  make_base "base-$release.img" --release "$release"
  rm -rf out
  pibake_ok build -c cluster.yaml --base-image "base-$release.img" --out out
  case $release in
    24.04) layout="flat; kernel command line /cmdline.txt"; boots=/cmdline.txt; codename=noble ;;
    25.10) layout="A/B (autoboot.txt tryboot_a_b=1): os_prefix=current/, [tryboot] os_prefix=new/; kernel command line /current/cmdline.txt"
           boots=/current/cmdline.txt; codename=questing ;;
    26.04) layout="A/B (autoboot.txt tryboot_a_b=1): os_prefix=current/, [tryboot] os_prefix=new/; kernel command line /current/cmdline.txt"
           boots=/current/cmdline.txt; codename=resolute ;;
  esac
  assert_contains out.log "(ubuntu $release, $codename); boot: $layout"
  for k in 1 2; do
    img=out/node-$k.img
    check_image "$img"
    expect_cmdline "$img" "$boots" "base-$release.img"
    if [ "$boots" != /cmdline.txt ]; then
      boot_has "$img" /cmdline.txt && fail "$img: a root cmdline.txt was created on the A/B layout"
    fi
    boot_has "$img" /new/cmdline.txt && fail "$img: new/ appeared"
    # inspect: the release, the layout and the effective command line, with a passing check.
    pibake inspect "$img" || { cat out.log err.log >&2; fail "inspect $img is unhealthy"; }
    assert_contains out.log "release: Ubuntu"
    assert_contains out.log "boot: $layout"
    assert_contains out.log "pass    memory cgroup on the kernel command line that boots ($boots)"
    pibake inspect --json "$img" || fail "inspect --json $img"
    python3 - out.log "$release" "$boots" <<'PY' || fail "inspect --json $img: release/boot objects"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["release"]["id"] == "ubuntu" and r["release"]["version_id"] == sys.argv[2], r["release"]
assert r["boot"]["cmdline_files"] == [sys.argv[3]], r["boot"]
assert "cgroup_enable=memory cgroup_memory=1" in r["boot"]["cmdline"], r["boot"]
PY
  done
  # A second pass over a pibake image changes nothing on the command line.
  cp out/node-1.img again-base.img && chmod 0644 again-base.img
  rm -rf again && pibake_ok build -c cluster.yaml --base-image again-base.img --out again --node node-1
  assert_eq "$(boot_cat again/node-1.img "$boots")" "$(boot_cat out/node-1.img "$boots")" "$boots after a second pass"
  rm -f again-base.img
done

note "--dry-run shows the release and layout of a base on this machine"
pibake_ok build -c cluster.yaml --base-image base-26.04.img --dry-run
assert_contains out.log "Ubuntu 26.04 LTS (ubuntu 26.04, resolute); boot: A/B"
assert_contains out.log "edit  system-boot:/current/cmdline.txt + cgroup_enable=memory cgroup_memory=1"
grep -q "system-boot:/cmdline.txt" out.log && fail "--dry-run plans the root cmdline.txt on the A/B layout"

note "an update pending in new/: both command lines are edited"
mkdir -p pending/new
printf 'kernel' > pending/new/vmlinuz
printf 'console=tty1 root=LABEL=writable rootwait\n' > pending/new/cmdline.txt
make_base base-pending.img --release 26.04 --boot-dir pending
rm -rf out && pibake_ok build -c cluster.yaml --base-image base-pending.img --out out
for k in 1 2; do
  expect_cmdline out/node-$k.img /current/cmdline.txt base-pending.img
  expect_cmdline out/node-$k.img /new/cmdline.txt base-pending.img
done

note "a base whose command line the firmware would not find is refused, with nothing written"
mkdir -p nocmd/current
printf '[all]\nos_prefix=current/\n[all]\nkernel=vmlinuz\ncmdline=cmdline.txt\n' > nocmd/config.txt
printf 'k' > nocmd/current/vmlinuz
make_base base-nocmd.img --release 26.04 --bare --boot-dir nocmd
rm -rf out
if pibake build -c cluster.yaml --base-image base-nocmd.img --out out; then fail "a base without a command line was accepted"; fi
assert_contains err.log "base-nocmd.img: system-boot has no kernel command line: config.txt name /current/cmdline.txt (os_prefix=current/), which does not exist"
assert_no_images out

note "a base that has booted: a warning, and every node a fresh identity"
mkdir -p booted/etc/ssh booted/var/lib/systemd booted/var/lib/cloud/instances/i-0123/sem booted/var/lib/cloud/data booted/var/lib/dbus
printf '0123456789abcdef0123456789abcdef\n' > booted/etc/machine-id
cp booted/etc/machine-id booted/var/lib/dbus/machine-id
head -c 512 /dev/urandom > booted/var/lib/systemd/random-seed
printf 'private\n' > booted/etc/ssh/ssh_host_ed25519_key
printf 'public\n' > booted/etc/ssh/ssh_host_ed25519_key.pub
printf 'done\n' > booted/var/lib/cloud/instances/i-0123/sem/config_ssh
printf 'i-0123\n' > booted/var/lib/cloud/data/instance-id
ln -s /var/lib/cloud/instances/i-0123 booted/var/lib/cloud/instance
make_base base-booted.img --release 26.04 --root-dir booted
rm -rf out && pibake_ok build -c cluster.yaml --base-image base-booted.img --out out
assert_contains err.log "warning: the base image has booted before (/etc/machine-id is set, /var/lib/systemd/random-seed exists, cloud-init has per-instance state in /var/lib/cloud, /etc/ssh holds SSH host keys)"
for k in 1 2; do
  img=out/node-$k.img
  check_image "$img"
  spec="$img?offset=$(part_offset "$img" 2)"
  assert_eq "$(debugfs -R 'stat /etc/machine-id' "$spec" 2>/dev/null | grep -o 'Size: [0-9]*' | head -1)" "Size: 0" "$img machine-id size"
  assert_eq "$(debugfs -R 'stat /var/lib/dbus/machine-id' "$spec" 2>/dev/null | grep -o 'Fast link dest: .*')" \
    'Fast link dest: "/etc/machine-id"' "$img dbus machine-id"
  for gone in /var/lib/systemd/random-seed /var/lib/cloud/instance /var/lib/cloud/instances /var/lib/cloud/data \
              /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub; do
    debugfs -R "stat $gone" "$spec" 2>&1 | grep "File not found by ext2_lookup" >/dev/null || fail "$img still has $gone"
  done
done
rm -rf out && pibake_ok build -c cluster.yaml --base-image base-26.04.img --out out
grep -q "has booted before" err.log && fail "a base that never booted was warned about"

note "a bigalloc root that must grow is refused before any output"
mkdir -p bigroot/etc && printf 'ID=ubuntu\nVERSION_ID="26.04"\n' > bigroot/etc/os-release
# Rebuilt by hand: system-boot from a 26.04 fixture, root a small bigalloc ext4 (mke2fs -O bigalloc).
make_base base-big.img --release 26.04 --root-mib 64
off=$(part_offset base-big.img 2); size=$(part_size base-big.img 2)
mke2fs -q -F -t ext4 -O bigalloc -C 16384 -b 4096 -L writable -d bigroot root-big.fs "$((size / 1024))k" 2>/dev/null
dd if=root-big.fs of=base-big.img bs=1M seek="$((off / 1048576))" conv=notrunc status=none
rm -rf out
if pibake build -c cluster.yaml --base-image base-big.img --out out; then fail "a bigalloc root that must grow was accepted"; fi
assert_contains err.log "uses the ext4 feature bigalloc, which resize2fs cannot grow safely"
assert_contains err.log "base-big.img"
assert_no_images out
echo "releases: ok"
