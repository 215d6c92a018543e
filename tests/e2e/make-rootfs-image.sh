#!/usr/bin/env bash
# Builds a stand-in for Ubuntu's preinstalled arm64 raspi image from Debian bookworm arm64 packages,
# for the QEMU end-to-end tests (issue 7). No loop devices, no mounts:
#   1. mmdebstrap --arch=arm64 (qemu-user-static + binfmt) into a directory, with
#      update-initramfs diverted to a no-op while packages install (its triggers would otherwise run
#      mkinitramfs several times under qemu-user), then run once at the end;
#   2. the image is laid out like Ubuntu's: MBR, p1 FAT32 "system-boot" (vmlinuz, initrd.img,
#      cmdline.txt, config.txt, NoCloud seed user-data/meta-data/network-config), p2 ext4
#      "writable" (mke2fs -d), spliced together with tests/fixtures/make-base-image.sh;
#   3. cloud-init reads its seed from system-boot (NoCloud, fs_label: system-boot), as on Ubuntu.
#
# The result is cached under ${PIBAKE_E2E_CACHE:-$HOME/.cache/pibake-e2e}/base-<hash>.img, keyed by
# a hash of this script and of make-base-image.sh; the path is printed on stdout (last line).
#
# usage: make-rootfs-image.sh [--force] [--print-path]
#   --force        rebuild even when the cached image exists
#   --print-path   print the cache path and exit (whether or not it exists)
# Env: PIBAKE_E2E_MIRROR (default http://deb.debian.org/debian), PIBAKE_E2E_SUITE (bookworm).
# Exit 77 when a tool is missing (mmdebstrap, qemu-aarch64 binfmt, sfdisk, mkfs.vfat, mke2fs, mtools).
#
# Needs root today (mmdebstrap's root mode writes a tree owned by root that mke2fs -d copies as
# is). Without root, mmdebstrap --mode=unshare to a tarball + mke2fs -d TARBALL (e2fsprogs >= 1.47.1)
# would do; bookworm's e2fsprogs 1.47.0 lacks tarball input.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
PATH=$PATH:/sbin:/usr/sbin
force=0; print_path=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1; shift ;;
    --print-path) print_path=1; shift ;;
    *) echo "make-rootfs-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

cache=${PIBAKE_E2E_CACHE:-$HOME/.cache/pibake-e2e}
suite=${PIBAKE_E2E_SUITE:-bookworm}
mirror=${PIBAKE_E2E_MIRROR:-http://deb.debian.org/debian}
key=$(cat "$0" "$src/tests/fixtures/make-base-image.sh" | sha256sum | cut -c1-16)
out=$cache/base-$suite-arm64-$key.img
if [ $print_path = 1 ]; then echo "$out"; exit 0; fi
if [ $force = 0 ] && [ -s "$out" ]; then echo "make-rootfs-image: cached" >&2; echo "$out"; exit 0; fi

for t in mmdebstrap sfdisk mkfs.vfat mke2fs mcopy mmd; do
  command -v $t >/dev/null || { echo "make-rootfs-image: $t is missing" >&2; exit 77; }
done
if [ "$(dpkg --print-architecture 2>/dev/null || uname -m)" != arm64 ] &&
   ! grep -qs enabled /proc/sys/fs/binfmt_misc/qemu-aarch64; then
  echo "make-rootfs-image: no qemu-aarch64 binfmt handler (apt-get install qemu-user-static binfmt-support;" \
       "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64)" >&2
  exit 77
fi
[ "$(id -u)" = 0 ] || { echo "make-rootfs-image: needs root for now (see the header)" >&2; exit 77; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/rootfs-work.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
stamp() { echo "make-rootfs-image: $1 at +$(( $(date +%s) - t0 ))s" >&2; }

packages=systemd,systemd-sysv,udev,dbus,systemd-resolved,systemd-timesyncd,cloud-init,netplan.io
packages+=,openssh-server,iproute2,iptables,kmod,linux-image-arm64,initramfs-tools,ca-certificates
packages+=,conntrack,socat,isc-dhcp-server,e2fsprogs,dosfstools,fdisk,cloud-guest-utils,sudo,procps
packages+=,less,iputils-ping,curl,locales,zstd

# Hooks run on the host with the tree as $1; `chroot "$1"` runs arm64 binaries through binfmt.
essential_hook='set -e
  chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
  printf "#!/bin/sh\necho update-initramfs: deferred by pibake e2e >&2\nexit 0\n" > "$1/usr/sbin/update-initramfs"
  chmod 755 "$1/usr/sbin/update-initramfs"'

customize_hook='set -e
  rm -f "$1/usr/sbin/update-initramfs"
  chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
  sed -i "s/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/" "$1/etc/locale.gen"
  chroot "$1" locale-gen
  printf "LANG=C.UTF-8\n" > "$1/etc/default/locale"
  chroot "$1" update-initramfs -c -k all
  chroot "$1" apt-get clean
  rm -rf "$1"/var/lib/apt/lists/*'

stamp "mmdebstrap $suite arm64 start"
mmdebstrap --arch=arm64 --variant=minbase --include="$packages" \
  --essential-hook="$essential_hook" \
  --customize-hook="$customize_hook" \
  "$suite" "$work/root" "deb $mirror $suite main" >&2
stamp "mmdebstrap done"

r=$work/root
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
# The kernel and initrd go to system-boot, as on a Pi (the firmware loads them from there).
mkdir -p "$work/boot"
vmlinuz=$(ls "$r"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$r"/boot/initrd.img-* | sort -V | tail -1)
cp "$vmlinuz" "$work/boot/vmlinuz"
cp "$initrd" "$work/boot/initrd.img"
printf 'console=ttyAMA0 root=LABEL=writable rootfstype=ext4 rootwait net.ifnames=0\n' > "$work/boot/cmdline.txt"
printf '[all]\nkernel=vmlinuz\ncmdline=cmdline.txt\ninitramfs initrd.img followkernel\n' > "$work/boot/config.txt"
printf '#cloud-config\n\nchpasswd:\n  expire: true\n  list:\n  - ubuntu:ubuntu\n\nssh_pwauth: true\n' > "$work/boot/user-data"
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    optional: true\n' > "$work/boot/network-config"
printf 'instance-id: ubuntu-raspi\n' > "$work/boot/meta-data"
printf 'Stand-in for Ubuntu raspi system-boot, built by pibake tests/e2e/make-rootfs-image.sh\n' > "$work/boot/README"

# Sizes: system-boot 256 MiB; writable = used + 25% + 256 MiB (cloud-init/pibake grow it later).
used_mib=$(( $(du -s --block-size=1M "$r" | cut -f1) ))
root_mib=$(( used_mib + used_mib / 4 + 256 ))
stamp "layout: rootfs ${used_mib} MiB used, writable ${root_mib} MiB"
# make-base-image.sh's skeleton is for fixtures; --bare + our trees gives the real content.
SOURCE_DATE_EPOCH=1700000000 bash "$src/tests/fixtures/make-base-image.sh" "$work/image.img" --bare \
  --boot-mib 256 --root-mib "$root_mib" --boot-dir "$work/boot" --root-dir "$r" >&2
mv "$work/image.img" "$out"
# Older cached images of this suite (other keys) are dead weight.
find "$cache" -maxdepth 1 -name "base-$suite-arm64-*.img" ! -name "$(basename "$out")" -delete
stamp "image written: $out ($(du -h --apparent-size "$out" | cut -f1) apparent, $(du -h "$out" | cut -f1) on disk)"
echo "$(date -u +%FT%TZ) make-rootfs-image total $(( $(date +%s) - t0 ))s key=$key" >> "$cache/timings.log"
echo "$out"
