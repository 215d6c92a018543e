#!/usr/bin/env bash
# Installs what pibake needs to build and test, from Debian/Ubuntu packages (Debian 12 tested).
# Run as root or with sudo available.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
build_deps=(build-essential cmake pkg-config
  libarchive-dev libcurl4-openssl-dev libssl-dev libfdisk-dev libyaml-cpp-dev
  libext2fs-dev comerr-dev libcli11-dev libfmt-dev liblzma-dev libzstd-dev catch2)
# Independent tools the tests check images with, and that pibake runs (resize2fs).
tool_deps=(e2fsprogs dosfstools mtools fdisk util-linux bmap-tools xz-utils zstd openssl python3
  shellcheck cloud-init netplan.io isc-dhcp-server systemd iptables
  wireless-regdb)  # the Wi-Fi country table's source, checked by tests/cli/regdb_countries.sh
# The QEMU end-to-end test (tests/e2e, docs/e2e.md): an arm64 base image built with mmdebstrap
# through qemu-user, booted with qemu-system-aarch64 on a vde_switch L2.
e2e_deps=(mmdebstrap arch-test qemu-user-static binfmt-support uidmap qemu-system-arm vde2 socat
  openssh-client)
tool_deps+=("${e2e_deps[@]}")
# kubectl reads the kubeconfigs in the tests; Debian's kubernetes-client unless one is installed.
command -v kubectl >/dev/null || tool_deps+=(kubernetes-client)
missing=()
for p in "${build_deps[@]}" "${tool_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present"
