// The .deb packages a node's first boot installs (docs/packages.md): which ones each node needs,
// what the base image already has (its dpkg status), how apt's answers are read, and how they are
// pinned in the lock file. Pure data: the apt runs and downloads are in pipeline/fetch_packages.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "plan/dhcp_server.h"
#include "spec/spec.h"

namespace pibake {

// Where the .debs go on a node's root filesystem (0644, root); first boot installs them from there.
inline constexpr const char* kCardDebsDir = "/var/cache/pibake/debs";

// The built-in keyring holding the Ubuntu archive's signing keys (keyrings/, docs/packages.md).
inline constexpr const char* kUbuntuArchiveKeyring = "keyrings/ubuntu-archive-keyring.gpg";

// A set of nodes that install the same packages: "gateway" (the node serving DHCP) or "node"
// (every other node), with "-control-plane" for the control planes. The lock file's key for the set.
struct PackageSet {
  std::string name;                    // "gateway", "node", "gateway-control-plane", "node-control-plane"
  std::vector<std::string> requested;  // package names, sorted, as apt's command line takes them
};

// What first boot installs when the base image lacks it: kubelet and kube-proxy use conntrack,
// kubectl port-forward uses socat, kube-proxy and the gateway's NAT iptables; the gateway serves
// time with chrony (docs/cluster.md, "The clock without a network") and DHCP with `dhcp`
// (choose_dhcp_server); every `control_plane` gets etcdctl (etcd-client) for its daily etcd
// snapshot, a snapshot's restore and a rebuilt control plane's removal of its stale member; with
// `control_plane_vip`, keepalived holds the virtual IP (its health check uses curl)
// (docs/cluster.md, "Several control planes", "etcd snapshots"). Sorted names.
std::vector<std::string> firstboot_packages(const ClusterSpec& spec, bool gateway, bool control_plane,
                                            bool control_plane_vip, DhcpServer dhcp);
// The same for `node` of `spec` (its gateway, role and virtual-IP duty).
std::vector<std::string> firstboot_packages(const ClusterSpec& spec, const NodeSpec& node, DhcpServer dhcp);

// The name of the package set `node` falls into (PackageSet::name).
std::string package_set_name(const ClusterSpec& spec, const NodeSpec& node);

// packages.keyring[i] as a path: absolute as written, a relative one under the spec's folder.
std::string keyring_path(const ClusterSpec& spec, size_t i);

// The sets the spec's nodes fall into (the gateway's first, then the others' in node order, each
// once), the gateway running the DHCP server `dhcp` (see firstboot_packages).
std::vector<PackageSet> package_sets(const ClusterSpec& spec, DhcpServer dhcp);

// The names of the packages dpkg(1)'s status file `status` (deb822 paragraphs, dpkg-query's
// "Status: install ok installed") lists as installed; unknown fields are ignored.
std::set<std::string> installed_packages(std::string_view status);

// One .deb to fetch, as apt-get install --print-uris names it: "'URL' FILE SIZE HASH".
struct AptUri {
  std::string url;        // where apt would fetch it (the archive as configured plus the pool path)
  std::string file_name;  // "conntrack_1%3a1.4.8-1_arm64.deb": name, version (':' as %3a), arch
  uint64_t size = 0;      // bytes
};

// Parses apt-get install --print-uris -qq output: one line per .deb, "'URL' FILE SIZE HASH". Lines
// that are not of that shape throw pibake::Error quoting the line.
std::vector<AptUri> parse_print_uris(std::string_view output);

// A record of an apt Packages index (as `apt-cache show` prints it): the fields pibake pins.
struct PackageRecord {
  std::string package;
  std::string version;
  std::string architecture;
  std::string filename;  // pool path relative to the archive root
  uint64_t size = 0;
  std::string sha256;  // hex
};

// Parses deb822 paragraphs of a Packages index (apt-cache show's output); records lacking
// Package, Version, Filename, Size or SHA256 throw pibake::Error naming the package.
std::vector<PackageRecord> parse_package_records(std::string_view text);

// One .deb pinned in the lock file.
struct LockedPackage {
  std::string name;               // "conntrack"
  std::string version;            // "1:1.4.8-1"
  std::string url;                // the archive (packages.archive, before mirrors) + "/" + Filename
  std::string sha256;             // from the archive's signed Packages index
  uint64_t size = 0;              // bytes of the .deb
  std::string file_name() const;  // the URL's last component: the name on the card
};

// A package set as the lock file pins it: what was asked, against which dpkg status, and the
// closure apt computed (the .debs, in apt's order).
struct LockedPackageSet {
  std::string name;                // PackageSet::name
  std::string requested;           // the requested names joined by spaces
  std::string base_status_sha256;  // sha256 of the base image's /var/lib/dpkg/status
  std::vector<std::string> debs;   // LockedPackage::name of each .deb of the closure
};

// A pinned .deb and its verified copy in the cache: what the plan puts on the card.
struct ResolvedDeb {
  LockedPackage package;
  std::string path;  // the blob in the cache
};

// "a b c": PackageSet::requested as the lock records it.
std::string join_requested(const std::vector<std::string>& names);

}  // namespace pibake
