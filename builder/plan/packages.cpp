// First-boot packages: the sets, dpkg's status, apt's answers (see packages.h).
#include "plan/packages.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "plan/checksums.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {
namespace {

// Splits deb822 text (dpkg's status, a Packages index) into paragraphs of field -> value; only the
// first line of each field is kept (pibake reads single-line fields only).
std::vector<std::map<std::string, std::string>> paragraphs(std::string_view text) {
  std::vector<std::map<std::string, std::string>> out(1);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (!out.back().empty()) out.emplace_back();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t' || line[0] == '#') continue;  // continuation or comment
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    out.back()[std::string(line.substr(0, colon))] = std::string(value);
  }
  if (out.back().empty()) out.pop_back();
  return out;
}

bool parse_u64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

std::vector<std::string> firstboot_packages(const ClusterSpec& spec, bool gateway, bool control_plane,
                                            bool control_plane_vip, DhcpServer dhcp) {
  std::vector<std::string> out = {"conntrack", "iptables", "socat"};
  if (gateway) {
    out.emplace_back(dhcp_server_facts(dhcp).package);
    out.emplace_back("chrony");
  }
  // etcdctl: the daily etcd snapshot, its restore before kubeadm init, and a rebuilt control plane
  // removing its stale member. The hard way has etcdctl from etcd's own release (/opt/etcd).
  if (control_plane && !is_hard_way(spec)) out.emplace_back("etcd-client");
  if (control_plane_vip) {
    out.emplace_back("keepalived");
    out.emplace_back("curl");  // keepalived's health check (pibake-apiserver-check)
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> firstboot_packages(const ClusterSpec& spec, const NodeSpec& node, DhcpServer dhcp) {
  return firstboot_packages(spec, node.name == gateway_name(spec), node.role == NodeRole::kControlPlane,
                            holds_api_vip(spec, node), dhcp);
}

std::string package_set_name(const ClusterSpec& spec, const NodeSpec& node) {
  std::string name = node.name == gateway_name(spec) ? "gateway" : "node";
  return node.role == NodeRole::kControlPlane ? name + "-control-plane" : name;
}

std::string keyring_path(const ClusterSpec& spec, size_t i) {
  const std::string& path = spec.packages.keyring.at(i);
  size_t slash = spec.source_path.rfind('/');
  if (path.starts_with("/") || slash == std::string::npos) return path;
  return spec.source_path.substr(0, slash + 1) + path;
}

std::vector<PackageSet> package_sets(const ClusterSpec& spec, DhcpServer dhcp) {
  std::vector<PackageSet> out;
  auto add = [&](const NodeSpec& node) {
    std::string name = package_set_name(spec, node);
    for (const PackageSet& s : out)
      if (s.name == name) return;
    out.push_back({name, firstboot_packages(spec, node, dhcp)});
  };
  if (spec.nodes.empty()) return out;
  const NodeSpec* gateway = find_node(spec, gateway_name(spec));
  add(gateway ? *gateway : spec.nodes.front());
  for (const NodeSpec& node : spec.nodes) add(node);
  return out;
}

std::set<std::string> installed_packages(std::string_view status) {
  std::set<std::string> out;
  for (const auto& p : paragraphs(status)) {
    auto name = p.find("Package");
    auto st = p.find("Status");
    if (name == p.end() || st == p.end()) continue;
    if (st->second.ends_with(" installed") && st->second.starts_with("install ")) out.insert(name->second);
  }
  return out;
}

std::vector<AptUri> parse_print_uris(std::string_view output) {
  std::vector<AptUri> out;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t end = output.find('\n', pos);
    if (end == std::string_view::npos) end = output.size();
    std::string line(output.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty()) continue;
    // 'URL' FILE SIZE HASH (apt-private/private-download.cc, --print-uris)
    size_t close = line.find('\'', 1);
    AptUri u;
    std::vector<std::string> rest;
    if (line[0] == '\'' && close != std::string::npos) {
      u.url = line.substr(1, close - 1);
      std::string tail = line.substr(close + 1);
      size_t p = 0;
      while (p < tail.size()) {
        size_t s = tail.find_first_not_of(' ', p);
        if (s == std::string::npos) break;
        size_t e = tail.find(' ', s);
        if (e == std::string::npos) e = tail.size();
        rest.push_back(tail.substr(s, e - s));
        p = e;
      }
    }
    if (u.url.empty() || rest.size() < 3 || !parse_u64(rest[1], u.size) || !rest[0].ends_with(".deb")) {
      throw Error("apt-get --print-uris printed a line pibake cannot read: \"" + line + "\"");
    }
    u.file_name = rest[0];
    out.push_back(std::move(u));
  }
  return out;
}

std::vector<PackageRecord> parse_package_records(std::string_view text) {
  std::vector<PackageRecord> out;
  for (const auto& p : paragraphs(text)) {
    auto get = [&](const char* key) {
      auto it = p.find(key);
      return it == p.end() ? std::string() : it->second;
    };
    PackageRecord r;
    r.package = get("Package");
    r.version = get("Version");
    r.architecture = get("Architecture");
    r.filename = get("Filename");
    r.sha256 = get("SHA256");
    std::transform(r.sha256.begin(), r.sha256.end(), r.sha256.begin(), [](unsigned char c) { return std::tolower(c); });
    if (r.package.empty() || r.version.empty() || r.filename.empty() || !parse_u64(get("Size"), r.size) ||
        !is_sha256_hex(r.sha256)) {
      throw Error(
          fmt::format("the archive's index entry for package \"{}\" lacks Package, Version, Filename, Size or "
                      "a SHA256",
                      r.package));
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string LockedPackage::file_name() const { return base_name(url); }

std::string join_requested(const std::vector<std::string>& names) { return fmt::format("{}", fmt::join(names, " ")); }

}  // namespace pibake
