// validate(): every semantic rule of the spec, all problems collected in file order of sections.
// The nodes and network rules are in validate_network.cpp, single-value predicates in
// validate_values.cpp; docs/spec.md lists every rule.
#include <fmt/format.h>
#include <cstdio>

#include <algorithm>

#include "spec/spec.h"
#include "spec/spec_internal.h"

namespace pibake {
namespace {

using spec_detail::ends_with;
using spec_detail::item_field;
using spec_detail::Problems;
using spec_detail::quote;
using spec_detail::quote_short;
using spec_detail::starts_with;

constexpr const char* kLabelRule = "use 1 to 63 lowercase letters, digits and '-', not starting or ending with '-'";

void check_cluster(const ClusterSpec& spec, Problems& out) {
  const auto& c = spec.cluster;
  if (c.name.empty()) {
    out.push_back({"cluster.name", "is empty"});
  } else if (!spec_detail::is_dns_label(c.name)) {
    out.push_back({"cluster.name", quote(c.name) + " is not a valid name (RFC 1123 label): " + kLabelRule});
  }
  if (c.domain.empty()) {
    out.push_back({"cluster.domain", "is empty"});
  } else if (!spec_detail::is_dns_name(c.domain)) {
    out.push_back({"cluster.domain", quote(c.domain) + " is not a DNS name: use dot-separated labels of lowercase "
                                                       "letters, digits and '-'"});
  }
}

// A download source: https:// (TLS, per the security model), file://, or a local path.
void check_source(const std::string& field, const std::string& value, Problems& out) {
  size_t scheme_end = value.find("://");
  if (scheme_end == std::string::npos || starts_with(value, "https://") || starts_with(value, "file://")) {
    return;
  }
  out.push_back({field, quote(value) + " is not an https:// URL or a local path: downloads must "
                                       "use TLS (a mirror may point elsewhere)"});
}

void check_base_image(const ClusterSpec& spec, Problems& out) {
  const auto& b = spec.base_image;
  if (b.url.empty()) {
    out.push_back({"base_image.url", "is empty: give the Ubuntu image's URL or a local path"});
  } else {
    check_source("base_image.url", b.url, out);
    if (!ends_with(b.url, ".img") && !ends_with(b.url, ".img.xz") && !ends_with(b.url, "/")) {
      out.push_back(
          {"base_image.url", quote(b.url) + " is not an .img or .img.xz file, nor a release folder ending in /"});
    }
  }
  if (!b.sha256.empty() && (b.sha256.size() != 64 || !spec_detail::is_hex(b.sha256))) {
    out.push_back({"base_image.sha256", quote(b.sha256) + " is not a SHA-256 digest (64 hexadecimal digits)"});
  }
  if (!b.sha256sums.empty()) check_source("base_image.sha256sums", b.sha256sums, out);
}

void check_component(const char* field, const ComponentSpec& c, Problems& out);

// kubernetes.mode: hard-way (docs/hard-way.md): one control plane, node-1's services reached at its
// own address (no virtual IP, no second etcd member to join), and a /24 of the pod CIDR per node.
void check_hard_way(const ClusterSpec& spec, Problems& out) {
  const std::vector<const NodeSpec*> control_planes = control_plane_nodes(spec);
  if (control_planes.size() > 1) {
    out.push_back({spec.nodes_listed ? "nodes" : "nodes.control_planes",
                   fmt::format("kubernetes.mode: hard-way runs one control plane, this spec has {} ({}): nothing "
                               "on a hard-way node joins a second one",
                               control_planes.size(), control_plane_names(spec))});
  }
  if (!spec.kubernetes.api_vip.empty()) {
    out.push_back({"kubernetes.api_vip",
                   "kubernetes.mode: hard-way has one control plane, reached at its own address: "
                   "remove api_vip"});
  }
  std::optional<Cidr> pods = Cidr::parse(spec.kubernetes.pod_cidr);
  std::optional<Cidr> subnet = Cidr::parse(spec.network.subnet);
  if (pods && subnet) {
    const uint64_t ranges = pods->prefix <= 24 ? uint64_t{1} << (24 - pods->prefix) : 0;
    for (const NodeSpec& n : spec.nodes) {
      std::optional<Ipv4> ip = Ipv4::parse(n.ip);
      if (!ip || !subnet->contains(*ip) || hard_way_pod_range(spec, n))
        continue;  // a bad address is reported elsewhere
      out.push_back(
          {"kubernetes.pod_cidr",
           fmt::format("{} holds {} /24 ranges (numbered from 0), and kubernetes.mode: hard-way gives "
                       "each node the one its address numbers in network.subnet: {} ({}) needs number {}; "
                       "use a pod CIDR with more /24s",
                       quote(spec.kubernetes.pod_cidr), ranges, n.name, n.ip, ip->value - subnet->base.value)});
      break;
    }
  }
}

void check_kubernetes(const ClusterSpec& spec, Problems& out) {
  const auto& k = spec.kubernetes;
  for (size_t i = 0; i < k.api_server_sans.size(); ++i) {
    const std::string& san = k.api_server_sans[i];
    if (!spec_detail::is_san_dns_name(san) && !Ipv4::parse(san) && !spec_detail::is_ipv6(san)) {
      out.push_back(
          {item_field("kubernetes.api_server_sans", i), quote(san) + " is neither a DNS name nor an IP address"});
    }
  }
  if (k.mode != kModeKubeadm && k.mode != kModeHardWay) {
    out.push_back(
        {"kubernetes.mode", fmt::format("{} is not a mode: use {} or {}", quote(k.mode), kModeKubeadm, kModeHardWay)});
  }
  const bool hard_way = k.mode == kModeHardWay;
  if (hard_way && k.cni != kBridgeCni) {
    out.push_back({"kubernetes.cni", fmt::format("{} is not for kubernetes.mode: hard-way, which routes pods itself "
                                                 "(a /24 per node, static routes): use {} or leave it out",
                                                 quote(k.cni), kBridgeCni)});
  } else if (!hard_way && std::find(kSupportedCnis.begin(), kSupportedCnis.end(), k.cni) == kSupportedCnis.end()) {
    out.push_back(
        {"kubernetes.cni", fmt::format("{} is not supported: use {}{}", quote(k.cni), fmt::join(kSupportedCnis, " or "),
                                       k.cni == kBridgeCni ? " (bridge is kubernetes.mode: hard-way's)" : "")});
  }
  if (hard_way) check_hard_way(spec, out);
  if (!spec.etcd.version.empty()) {
    if (!hard_way) {
      out.push_back({"etcd.version",
                     "is for kubernetes.mode: hard-way only: kubeadm runs the etcd image of its "
                     "Kubernetes release"});
    } else {
      check_component("etcd.version", spec.etcd, out);
    }
  }
  const std::string& repo = k.image_repository;
  if (repo.empty()) {
    out.push_back({"kubernetes.image_repository", "is empty"});
  } else if (size_t scheme = repo.find("://"); scheme != std::string::npos) {
    out.push_back(
        {"kubernetes.image_repository", quote(repo) + " must not include a scheme: write " + repo.substr(scheme + 3)});
  } else if (repo.find_first_of(" \t\n") != std::string::npos || repo.back() == '/') {
    out.push_back({"kubernetes.image_repository", quote(repo) + " is not an image repository like registry.k8s.io"});
  }
}

void check_component(const char* field, const ComponentSpec& c, Problems& out) {
  using spec_detail::is_version;
  if (starts_with(c.version, "v") && is_version(std::string_view(c.version).substr(1))) {
    out.push_back({field, quote(c.version) + " has a leading \"v\": write " + c.version.substr(1) +
                              " (the release tag without the v)"});
  } else if (!is_version(c.version)) {
    out.push_back({field, quote(c.version) + " is not a version like 1.2.3"});
  }
}

// A crypt(3) string as /etc/shadow holds it: "$id$salt$hash" or "$id$param$salt$hash".
bool looks_like_crypt_hash(std::string_view h) {
  if (h.find_first_of(" \t\n:") != std::string_view::npos) return false;
  return starts_with(h, "$") && std::count(h.begin(), h.end(), '$') >= 3 && !ends_with(h, "$");
}

void check_access(const ClusterSpec& spec, Problems& out) {
  const auto& a = spec.access;
  if (a.user.empty()) {
    out.push_back({"access.user", "is empty"});
  } else if (a.user == "root") {
    out.push_back({"access.user", "\"root\" cannot be the login user: name an ordinary user"});
  } else if (!spec_detail::is_linux_user_name(a.user)) {
    out.push_back({"access.user", quote(a.user) + " is not a valid Linux user name: use lowercase "
                                                  "letters, digits, '_' and '-', starting with a "
                                                  "letter or '_', at most 32 characters"});
  }
  for (size_t i = 0; i < a.ssh_authorized_keys.size(); ++i) {
    const std::string& key = a.ssh_authorized_keys[i];
    std::string field = item_field("access.ssh_authorized_keys", i);
    if (key.empty()) {
      out.push_back({field, "is empty"});
    } else if (key.find("PRIVATE KEY") != std::string::npos) {
      // Never echo it: the message may end up in logs.
      out.push_back({field,
                     "is a private key: give the public key (the .pub file) and keep the "
                     "private key secret"});
    } else if (std::optional<std::string> why = spec_detail::ssh_key_problem(key)) {
      out.push_back({field, quote_short(key) + " is not an SSH public key: " + *why});
    }
  }
  // The value is not quoted: it may be a plaintext password, which must not reach logs either.
  if (!a.password_hash.empty() && !starts_with(a.password_hash, "$")) {
    out.push_back({"access.password_hash",
                   "is not a crypt(3) hash (it must start with \"$\", like the output of "
                   "\"mkpasswd -m sha-512\"): never put a plaintext password in the spec"});
  } else if (!a.password_hash.empty() && !looks_like_crypt_hash(a.password_hash)) {
    out.push_back({"access.password_hash",
                   "is not a crypt(3) hash of the form $id$salt$hash (like the output of "
                   "\"mkpasswd -m sha-512\")"});
  }
}

// packages.archive: an https:// URL (apt's archive root; a mirror may point at http://127.0.0.1),
// packages.keyring: file names.
void check_packages(const ClusterSpec& spec, Problems& out) {
  const PackagesSpec& p = spec.packages;
  if (p.archive.empty()) {
    out.push_back({"packages.archive", "is empty: give the apt archive's URL (" + std::string(kDefaultPackagesArchive) +
                                           " for Ubuntu on arm64)"});
  } else if (!starts_with(p.archive, "https://") || p.archive.size() <= 8 || p.archive[8] == '/' ||
             p.archive.find_first_of(" \t\n") != std::string::npos) {
    out.push_back({"packages.archive", quote(p.archive) + " is not an https:// URL (a mirror may point elsewhere)"});
  }
  for (size_t i = 0; i < p.keyring.size(); ++i) {
    if (p.keyring[i].empty()) out.push_back({spec_detail::item_field("packages.keyring", i), "is empty"});
  }
}

bool has_host(std::string_view url, std::string_view scheme) {
  return starts_with(url, scheme) && url.size() > scheme.size() && url[scheme.size()] != '/';
}

void check_mirrors(const ClusterSpec& spec, Problems& out) {
  for (const auto& [prefix, replacement] : spec.mirrors) {
    std::string field = spec_detail::mirror_field(prefix);
    if (prefix.empty()) {
      out.push_back({field, "the URL prefix is empty"});
    } else if (!(has_host(prefix, "http://") || has_host(prefix, "https://")) ||
               prefix.find_first_of(" \t\n") != std::string::npos) {
      out.push_back({field, quote(prefix) + " is not an http:// or https:// URL prefix"});
    }
    bool url =
        has_host(replacement, "http://") || has_host(replacement, "https://") || (starts_with(replacement, "file:///"));
    if (replacement.empty()) {
      out.push_back({field, "the replacement is empty"});
    } else if ((!url && !starts_with(replacement, "/")) || replacement.find_first_of(" \t\n") != std::string::npos) {
      out.push_back({field, quote(replacement) + " is not a URL (http://, https://, file:///) or an absolute path"});
    }
  }
}

}  // namespace

std::vector<Diagnostic> validate(const ClusterSpec& spec) {
  Problems out;
  check_cluster(spec, out);
  check_base_image(spec, out);
  spec_detail::validate_nodes_and_network(spec, out);
  spec_detail::validate_uplink(spec, out);
  check_kubernetes(spec, out);
  spec_detail::validate_versions(spec, out);
  check_component("containerd.version", spec.containerd, out);
  check_component("runc.version", spec.runc, out);
  check_component("cni_plugins.version", spec.cni_plugins, out);
  check_access(spec, out);
  check_packages(spec, out);
  check_mirrors(spec, out);
  return out;
}

std::vector<Diagnostic> spec_warnings(const ClusterSpec& spec) {
  std::vector<Diagnostic> out;
  const UplinkSpec& up = spec.network.uplink;
  if (starts_with(up.interface, "wl") && !up.wifi) {
    out.push_back(
        {"network.uplink.wifi", fmt::format("not set: the gateway's {} uplink has no Wi-Fi network to join, so "
                                            "the cluster has no internet access on first boot (set ssid, "
                                            "password and country, or use a wired uplink such as eth1)",
                                            quote(up.interface))});
  }
  for (Diagnostic& d : version_warnings(spec, utc_date_today())) out.push_back(std::move(d));
  return out;
}

}  // namespace pibake
