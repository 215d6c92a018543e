#!/usr/bin/env bash
# Builds a stand-in for Ubuntu's preinstalled arm64 raspi image from Debian arm64 packages, for the
# QEMU end-to-end tests (issue 7). No root (see lib.sh), no loop devices, no mounts:
#   1. rootfs-recipe.sh (the packages and hooks) -> mmdebstrap --mode=unshare --arch=arm64 (arm64
#      maintainer scripts run through qemu-user-static's binfmt handler) into a tarball. The slow
#      part (docs/e2e.md, "Timings on this machine"); cached, keyed by a hash of rootfs-recipe.sh
#      alone. The tarball also carries Debian's arm64 containerd, runc and CNI plugin packages for
#      the test's artifacts.
#   2. Inside a user namespace (unshare --map-auto --map-root-user, so files keep their owners),
#      the tree is unpacked, given Ubuntu's shape (hostname, fstab, os-release, cloud-init NoCloud
#      seed on system-boot, the ubuntu user), and laid out like Ubuntu's image by
#      tests/fixtures/make-base-image.sh: MBR, p1 FAT32 "system-boot", p2 ext4 "writable"
#      (mke2fs -d). PIBAKE_E2E_LAYOUT picks system-boot's shape: `ab` (default), Ubuntu 26.04's
#      A/B boot (config.txt os_prefix=current/, [tryboot] new/, autoboot.txt tryboot_a_b=1;
#      vmlinuz, initrd.img and the only cmdline.txt in current/); `flat`, Ubuntu 24.04's (all of
#      them at the partition root).
#
# Output, under ${PIBAKE_E2E_CACHE:-$HOME/.cache/pibake-e2e}:
#   base-<suite>-<layout>-arm64-<key>.img     the image (its path is the last line on stdout)
#   base-<suite>-<layout>-arm64-<key>.debs/   the containerd, runc and containernetworking-plugins .debs;
#                                             firstboot/: rootfs-recipe.sh's firstboot_debs with the
#                                             dependencies the image lacks (served as an apt archive)
#
# usage: make-rootfs-image.sh [--force] [--print-path]
#   --force        rebuild the image (the rootfs tarball too) even when cached
#   --print-path   print the image's cache path and exit (whether or not it exists)
# Env: PIBAKE_E2E_MIRROR (default http://deb.debian.org/debian; the only network access, and only
# when the cache is cold), PIBAKE_E2E_SUITE (trixie), PIBAKE_E2E_LAYOUT (ab), PIBAKE_E2E_CACHE.
# Exit 77 when a tool is missing (mmdebstrap, the qemu-aarch64 binfmt handler, uidmap, mke2fs...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
PATH=$PATH:/sbin:/usr/sbin
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"

# --- inside the user namespace: unpack, shape, lay out (called by the script itself, below) ---
if [ "${1:-}" = --layout-in-userns ]; then
  tarball=$2 work=$3 out=$4 layout=$5
  r=$work/root
  mkdir -p "$r"
  # /dev comes from devtmpfs at boot; device nodes cannot be made in a user namespace anyway.
  tar -C "$r" --numeric-owner -xpf "$tarball" --exclude='./dev/*'
  mv "$r/var/cache/pibake-e2e-debs" "$work/debs"
  # Ubuntu-like configuration of the root tree.
  printf 'ubuntu\n' > "$r/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 ubuntu\n\n::1 ip6-localhost ip6-loopback\n' > "$r/etc/hosts"
  printf 'LABEL=writable\t/\text4\tdiscard,errors=remount-ro\t0 1\nLABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0 1\n' > "$r/etc/fstab"
  mkdir -p "$r/boot/firmware"
  ln -sf ../run/systemd/resolve/stub-resolv.conf "$r/etc/resolv.conf"
  # cloud-init: NoCloud seed on the FAT partition, exactly as Ubuntu's raspi images configure it
  # (/etc/cloud/cloud.cfg.d/99-fake_cloud.cfg), and Ubuntu's default user.
  cat > "$r/etc/cloud/cloud.cfg.d/99-fake_cloud.cfg" <<'EOF'
# configure cloud-init for NoCloud, seed on the system-boot partition (as Ubuntu's raspi images)
datasource_list: [ NoCloud, None ]
datasource:
  NoCloud:
    fs_label: system-boot
EOF
  cat > "$r/etc/cloud/cloud.cfg.d/90-pibake-e2e-ubuntu-user.cfg" <<'EOF'
# Ubuntu's default user instead of Debian's
system_info:
  default_user:
    name: ubuntu
    lock_passwd: True
    gecos: Ubuntu
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
EOF
  # The test harness's way in to a gateway that has no uplink at all (cluster.sh with
  # PIBAKE_E2E_UPLINK=none): a management port, QEMU user networking with restrict=on (it reaches
  # nothing; only the test's SSH hostfwd comes in), with a fixed address and no route. Matched by
  # the MAC only that port has, so every other VM, and the port's absence, leave it unused. It
  # stands for a console cable, not for anything pibake configures.
  mkdir -p "$r/etc/netplan"
  cat > "$r/etc/netplan/10-pibake-e2e-mgmt.yaml" <<'EOF'
# pibake e2e harness only: the test's management port (see tests/e2e/make-rootfs-image.sh)
network:
  version: 2
  ethernets:
    e2e-mgmt:
      match: {macaddress: "52:54:00:e2:ee:01"}
      addresses: [10.0.2.15/24]
      dhcp4: false
      dhcp6: false
      link-local: []
EOF
  chmod 600 "$r/etc/netplan/10-pibake-e2e-mgmt.yaml"
  # The release pibake reads (/etc/os-release -> ../usr/lib/os-release, as on Debian and Ubuntu):
  # the Ubuntu release this stand-in is shaped like, saying what it really is.
  case "$layout" in
    ab) os_version=26.04; os_codename=resolute; os_pretty="Ubuntu 26.04 LTS" ;;
    flat) os_version=24.04; os_codename=noble; os_pretty="Ubuntu 24.04.3 LTS" ;;
  esac
  printf 'PRETTY_NAME="%s (pibake e2e stand-in: Debian %s)"\nNAME="Ubuntu"\nVERSION_ID="%s"\nVERSION_CODENAME=%s\nID=ubuntu\nID_LIKE=debian\n' \
    "$os_pretty" "$(cat "$r/etc/debian_version")" "$os_version" "$os_codename" > "$r/usr/lib/os-release"
  # The kernel, initrd and command line go to system-boot, as on a Pi (the firmware loads them
  # from there): on 26.04's A/B layout into current/, named by config.txt's os_prefix, with
  # autoboot.txt's tryboot_a_b=1 (canonical/pi-gadget configs/resolute-arm64-server); on 24.04's
  # at the partition root (configs/noble-arm64-server).
  b=$work/boot
  os_dir=$b
  mkdir -p "$b"
  if [ "$layout" = ab ]; then
    os_dir=$b/current
    mkdir -p "$os_dir"
    printf '[all]\nos_prefix=current/\n\n[tryboot]\nos_prefix=new/\n\n[all]\narm_64bit=1\nkernel=vmlinuz\ncmdline=cmdline.txt\ninitramfs initrd.img followkernel\n\n[pi4]\nmax_framebuffers=2\narm_boost=1\n\n[all]\n' > "$b/config.txt"
    printf '[all]\ntryboot_a_b=1\n' > "$b/autoboot.txt"
    printf 'console=ttyAMA0 root=LABEL=writable rootfstype=ext4 panic=10 rootwait net.ifnames=0\n' > "$os_dir/cmdline.txt"
  else
    printf '[all]\nkernel=vmlinuz\ncmdline=cmdline.txt\ninitramfs initrd.img followkernel\n\n[all]\narm_64bit=1\n' > "$b/config.txt"
    printf 'console=ttyAMA0 root=LABEL=writable rootfstype=ext4 rootwait net.ifnames=0\n' > "$os_dir/cmdline.txt"
  fi
  cp "$(ls "$r"/boot/vmlinuz-* | sort -V | tail -n 1)" "$os_dir/vmlinuz"
  cp "$(ls "$r"/boot/initrd.img-* | sort -V | tail -n 1)" "$os_dir/initrd.img"
  printf '#cloud-config\n\nchpasswd:\n  expire: true\n  list:\n  - ubuntu:ubuntu\n\nssh_pwauth: true\n' > "$b/user-data"
  printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    optional: true\n' > "$b/network-config"
  printf 'instance-id: ubuntu-raspi\n' > "$b/meta-data"
  printf 'Stand-in for Ubuntu raspi system-boot, built by pibake tests/e2e/make-rootfs-image.sh\n' > "$b/README"
  # Sizes: system-boot 256 MiB; writable = used + 25% + 256 MiB (pibake grows it when asked).
  used_mib=$(du -s --block-size=1M "$r" | cut -f1)
  root_mib=$(( used_mib + used_mib / 4 + 256 ))
  echo "make-rootfs-image: rootfs ${used_mib} MiB used, writable ${root_mib} MiB" >&2
  SOURCE_DATE_EPOCH=1700000000 TMPDIR=$work bash "$src/tests/fixtures/make-base-image.sh" "$out" --bare \
    --boot-mib 256 --root-mib "$root_mib" --boot-dir "$b" --root-dir "$r" >&2
  exit 0
fi

args=("$@")
force=0; print_path=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1; shift ;;
    --print-path) print_path=1; shift ;;
    *) echo "make-rootfs-image: unknown argument $1" >&2; exit 2 ;;
  esac
done
e2e_as_user "${args[@]}"

# shellcheck source=tests/e2e/rootfs-recipe.sh
. "$here/rootfs-recipe.sh"
cache=${PIBAKE_E2E_CACHE:-$HOME/.cache/pibake-e2e}
mirror=${PIBAKE_E2E_MIRROR:-http://deb.debian.org/debian}
layout=${PIBAKE_E2E_LAYOUT:-ab}
case "$layout" in ab|flat) ;; *) echo "make-rootfs-image: PIBAKE_E2E_LAYOUT is ab or flat, not $layout" >&2; exit 2 ;; esac
rootfs_key=$(sha256sum < "$here/rootfs-recipe.sh" | cut -c1-16)
key=$(cat "$here/rootfs-recipe.sh" "$0" "$src/tests/fixtures/make-base-image.sh" | sha256sum | cut -c1-16)
tarball=$cache/rootfs-$suite-arm64-$rootfs_key.tar
out=$cache/base-$suite-$layout-arm64-$key.img
if [ $print_path = 1 ]; then echo "$out"; exit 0; fi
exit_if_cached() {
  if [ $force = 0 ] && [ -s "$out" ] && [ -d "${out%.img}.debs" ]; then
    echo "make-rootfs-image: cached" >&2; echo "$out"; exit 0
  fi
}
exit_if_cached

for t in mmdebstrap sfdisk mkfs.vfat mke2fs mcopy mmd tar; do
  command -v $t >/dev/null || { echo "make-rootfs-image: $t is missing" >&2; exit 77; }
done
if [ "$(dpkg --print-architecture 2>/dev/null || uname -m)" != arm64 ] &&
   ! grep -qs enabled /proc/sys/fs/binfmt_misc/qemu-aarch64; then
  echo "make-rootfs-image: no qemu-aarch64 binfmt handler (as root: apt-get install qemu-user-static" \
       "binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc;" \
       "update-binfmts --enable qemu-aarch64)" >&2
  exit 77
fi
e2e_need_unshare

mkdir -p "$cache"
# One build at a time; a run that waited here may find the image made meanwhile.
exec 9> "$cache/.lock"
flock 9
exit_if_cached
# Work dirs hold files owned by subordinate ids: only the user namespace can remove them.
remove_work_dir() { ns_root rm -rf "$1" 2>/dev/null || rm -rf "$1" || true; }
# A run killed outright (SIGKILL) leaves its work dir behind.
for stale in "$cache"/rootfs-work.*; do
  [ ! -d "$stale" ] || remove_work_dir "$stale"
done
work=$(mktemp -d "$cache/rootfs-work.XXXXXX")
chmod 755 "$work"   # mmdebstrap's namespace root is a subordinate uid: it must be able to enter
trap 'remove_work_dir "$work"' EXIT
t0=$(date +%s)
stamp() { echo "make-rootfs-image: $1 at +$(( $(date +%s) - t0 ))s" >&2; }

if [ $force = 1 ] || [ ! -s "$tarball" ]; then
  stamp "mmdebstrap $suite arm64 (unshare mode) start"
  # mmdebstrap hands apt a pipe as `cat >&N`, which dash (/bin/sh) refuses for N > 9 ("Bad fd
  # number"): with many descriptors inherited (ctest, flock, a CI runner) N passes 9. Only 0-2 go in.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] && [ "$fd" != 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    TMPDIR=$work exec mmdebstrap --mode=unshare --format=tar --arch=arm64 --variant=minbase \
      --include="$packages" --essential-hook="$essential_hook" --customize-hook="$customize_hook" \
      "$suite" "$work/rootfs.tar" "deb $mirror $suite main" >&2
  )
  mv "$work/rootfs.tar" "$tarball"
  stamp "mmdebstrap done: $(du -h "$tarball" | cut -f1)"
  echo "$(date -u +%FT%TZ) mmdebstrap $(( $(date +%s) - t0 ))s rootfs_key=$rootfs_key" >> "$cache/timings.log"
fi

ns_root bash "$0" --layout-in-userns "$tarball" "$work" "$work/image.img" "$layout"
rm -rf "${out%.img}.debs"
mkdir -p "${out%.img}.debs"
cp "$work"/debs/*.deb "${out%.img}.debs/"
cp -r "$work"/debs/firstboot "${out%.img}.debs/firstboot"
mv "$work/image.img" "$out"
# Older cached images and tarballs of this suite (other keys) are dead weight.
find "$cache" -maxdepth 1 -name "base-$suite-$layout-arm64-*" ! -name "$(basename "${out%.img}").*" -exec rm -rf {} +
find "$cache" -maxdepth 1 -name "rootfs-$suite-arm64-*.tar" ! -name "$(basename "$tarball")" -delete
stamp "image written: $out ($(du -h --apparent-size "$out" | cut -f1) apparent, $(du -h "$out" | cut -f1) on disk)"
echo "$(date -u +%FT%TZ) make-rootfs-image total $(( $(date +%s) - t0 ))s key=$key" >> "$cache/timings.log"
echo "$out"
