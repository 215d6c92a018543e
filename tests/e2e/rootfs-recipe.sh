# shellcheck shell=bash disable=SC2034 # the variables are used by the sourcing script
# Sourced by make-rootfs-image.sh: WHAT goes into the arm64 stand-in root filesystem. The cache of
# the slow part (mmdebstrap under qemu-user) is keyed by a hash of this file alone, so edit it only
# to change the package set or the hooks; everything else lives in make-rootfs-image.sh.
suite=${PIBAKE_E2E_SUITE:-trixie}

packages=systemd,systemd-sysv,udev,dbus,systemd-resolved,systemd-timesyncd,cloud-init,netplan.io
packages+=,openssh-server,iproute2,iptables,kmod,linux-image-arm64,initramfs-tools,ca-certificates
packages+=,e2fsprogs,dosfstools,fdisk,cloud-guest-utils,sudo,procps
packages+=,less,iputils-ping,curl,locales,zstd,libseccomp2

# Debian's arm64 builds of what pibake downloads from upstream; the e2e tests repackage them into
# the upstream release layouts (containerd-*.tar.gz, runc.arm64, cni-plugins-*.tgz). etcd-server:
# the etcd a stand-in control plane runs for real (issue 16).
artifact_debs="containerd runc containernetworking-plugins etcd-server"

# What pibake-firstboot installs and the rootfs lacks, as on Ubuntu's image (builder/plan/packages.cpp):
# the e2e test serves their dependency closure, resolved against this rootfs's dpkg status, as a
# signed apt archive on 127.0.0.1; pibake puts it on the cards and first boot installs it offline.
# Every control plane: etcd-client (etcd snapshots); several control planes: keepalived and curl.
firstboot_debs="conntrack socat isc-dhcp-server chrony etcd-client keepalived"

# Hooks run on the host inside mmdebstrap's user namespace, with the tree as $1; `chroot "$1"` runs
# arm64 binaries through binfmt. update-initramfs is diverted to a no-op while packages install
# (their triggers would run mkinitramfs several times under qemu-user) and run once at the end,
# with only the modules a QEMU virt machine needs to find its root (MODULES=list), which keeps
# that single run short under emulation.
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
  sed -i "s/^MODULES=.*/MODULES=list/" "$1/etc/initramfs-tools/initramfs.conf"
  printf "%s\n" virtio_pci virtio_mmio virtio_blk virtio_scsi ext4 crc32c_generic vfat nls_cp437 nls_ascii \
    >> "$1/etc/initramfs-tools/modules"
  chroot "$1" update-initramfs -c -k all
  mkdir -p "$1/var/cache/pibake-e2e-debs"
  cd "$1/var/cache/pibake-e2e-debs"
  APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get -o APT::Sandbox::User=root download '"$artifact_debs"'
  mkdir -p firstboot/partial
  APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get -o APT::Sandbox::User=root -o Dir::Cache::archives="$PWD/firstboot/" \
    install --download-only -y -q --no-install-recommends '"$firstboot_debs"'
  rm -rf firstboot/partial firstboot/lock
  chroot "$1" apt-get clean
  rm -rf "$1"/var/lib/apt/lists/*'
