#!/usr/bin/env bash
# Installs, from Debian/Ubuntu packages (Debian 12 tested), what pibake needs:
#   install-deps.sh          to build pibake and run it (the README's main job)
#   install-deps.sh --test   that, plus the independent tools the tests check images with and the
#                            QEMU end-to-end test's tools (CI and the README's test command)
# The default set stays small on purpose: the test set holds packages that change a machine
# (cloud-init alters how it boots; Debian starts isc-dhcp-server and Kea on install; chrony
# replaces systemd-timesyncd), which a user's
# workstation should not get just to build images. Run as root or with sudo available.
set -euo pipefail
with_tests=false
case "${1:-}" in
  "") ;;
  --test) with_tests=true ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
build_deps=(build-essential cmake pkg-config
  libarchive-dev libcurl4-openssl-dev libssl-dev libfdisk-dev libyaml-cpp-dev
  libext2fs-dev comerr-dev libcli11-dev libfmt-dev liblzma-dev libzstd-dev catch2
  nlohmann-json3-dev)  # nlohmann-json3-dev: OCI manifests, indexes and image layouts (docs/images.md)
# What pibake runs: resize2fs (growing the root filesystem), e2fsck and fsck.fat (`pibake inspect`),
# apt-get and gpgv/sqv (resolving and verifying first-boot packages, docs/packages.md).
run_deps=(e2fsprogs dosfstools ca-certificates apt)
# Independent tools the tests check images with.
test_deps=(mtools fdisk util-linux bmap-tools xz-utils zstd openssl python3
  shellcheck cloud-init netplan.io isc-dhcp-server kea-dhcp4-server chrony systemd iptables jq
  python3-yaml wireless-regdb  # python3-yaml: the tests parse every YAML file pibake writes; wireless-regdb: the Wi-Fi country table's source, checked by tests/cli/regdb_countries.sh
  docker-registry skopeo  # the reference distribution server and an OCI copier: tests/cli/images.sh's registry on 127.0.0.1
  apt-utils gpg  # apt-ftparchive and gpg: tests/cli/packages.sh builds and signs an apt archive on 127.0.0.1
  strace  # tests/cli/in_place.sh kills a regenerate at an exact write (strace's syscall fault injection)
  etcd-server etcd-client keepalived iproute2 curl)  # a real etcd cluster on 127.0.0.1 for tests/cli/control_plane_join.sh; keepalived --config-test and, in network namespaces (iproute2), tests/cli/vip_failover.sh
# The QEMU end-to-end test (tests/e2e, docs/e2e.md): an arm64 base image built with mmdebstrap
# through qemu-user, booted with qemu-system-aarch64 on a vde_switch L2.
e2e_deps=(mmdebstrap arch-test qemu-user-static binfmt-support uidmap qemu-system-arm vde2 socat
  openssh-client)
# The fuzz targets (tests/fuzz, CTest label fuzz): clang with its libFuzzer and sanitizer runtimes.
fuzz_deps=(clang libclang-rt-14-dev)
wanted=("${build_deps[@]}" "${run_deps[@]}")
if $with_tests; then
  wanted+=("${test_deps[@]}" "${e2e_deps[@]}" "${fuzz_deps[@]}")
  # kubectl reads the kubeconfigs in the tests; Debian's kubernetes-client unless one is installed.
  command -v kubectl >/dev/null || wanted+=(kubernetes-client)
fi
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: all packages present$($with_tests && echo ', test tools included')"
