// The spec model's behaviour: defaults, generated node lists, comparison, field paths and the
// located diagnostics that every spec problem is printed with.
#include "spec/spec.h"
#include "util/yaml_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "spec/compat.h"
#include "spec/spec_internal.h"

namespace pibake {

const char* to_string(NodeRole role) { return role == NodeRole::kControlPlane ? "control-plane" : "worker"; }

ClusterSpec default_spec() {
  ClusterSpec spec;
  apply_node_count(spec, spec.node_count);
  return spec;
}

void apply_node_count(ClusterSpec& spec, int count) {
  spec.node_count = count;
  spec.nodes_listed = false;
  spec.nodes.clear();
  // The old list's locations would point at lines that no longer describe these nodes.
  for (auto it = spec.locations.begin(); it != spec.locations.end();) {
    bool stale = spec_detail::starts_with(it->first, "nodes[") || it->first == "nodes.count";
    it = stale ? spec.locations.erase(it) : std::next(it);
  }
  if (count < 1 || count > kMaxNodes) return;
  std::optional<Cidr> subnet = Cidr::parse(spec.network.subnet);
  for (int k = 1; k <= count; ++k) {
    NodeSpec node;
    node.name = fmt::format("node-{}", k);
    // node-k is the subnet's k-th address; past the last host address there is none to give.
    if (subnet && static_cast<uint64_t>(k) <= subnet->host_count()) {
      node.ip = subnet->at(static_cast<uint32_t>(k)).str();
    }
    node.role = k <= std::max(spec.control_plane_count, 1) ? NodeRole::kControlPlane : NodeRole::kWorker;
    spec.nodes.push_back(std::move(node));
  }
}

bool same_settings(const ClusterSpec& a, const ClusterSpec& b) {
  return a.cluster == b.cluster && a.base_image == b.base_image && a.nodes == b.nodes && a.network == b.network &&
         a.kubernetes == b.kubernetes && a.containerd == b.containerd && a.runc == b.runc &&
         a.cni_plugins == b.cni_plugins && a.etcd == b.etcd && a.access == b.access && a.packages == b.packages &&
         a.mirrors == b.mirrors;
}

const NodeSpec* find_node(const ClusterSpec& spec, std::string_view name) {
  for (const NodeSpec& node : spec.nodes) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

std::string gateway_name(const ClusterSpec& spec) {
  if (!spec.network.gateway.empty()) return spec.network.gateway;
  return spec.nodes.empty() ? std::string() : spec.nodes.front().name;
}

const NodeSpec& control_plane_node(const ClusterSpec& spec) {
  for (const NodeSpec& n : spec.nodes)
    if (n.role == NodeRole::kControlPlane) return n;
  return spec.nodes.front();
}

std::vector<const NodeSpec*> control_plane_nodes(const ClusterSpec& spec) {
  std::vector<const NodeSpec*> out;
  for (const NodeSpec& n : spec.nodes)
    if (n.role == NodeRole::kControlPlane) out.push_back(&n);
  return out;
}

std::string control_plane_names(const ClusterSpec& spec) {
  std::string names;
  for (const NodeSpec* n : control_plane_nodes(spec)) names += (names.empty() ? "" : ", ") + n->name;
  return names;
}

bool uses_api_vip(const ClusterSpec& spec) {
  return !spec.kubernetes.api_vip.empty() || control_plane_nodes(spec).size() > 1;
}

bool holds_api_vip(const ClusterSpec& spec, const NodeSpec& node) {
  return node.role == NodeRole::kControlPlane && uses_api_vip(spec);
}

std::string api_vip_address(const ClusterSpec& spec) {
  if (!uses_api_vip(spec)) return "";
  if (!spec.kubernetes.api_vip.empty()) return spec.kubernetes.api_vip;
  std::optional<Cidr> subnet = Cidr::parse(spec.network.subnet);
  if (!subnet || subnet->host_count() == 0) return "";
  std::optional<Ipv4Range> pool = Ipv4Range::parse(spec.network.dhcp_range);
  // From the top down: node-k sits at .k and the DHCP pool usually in the middle, so the highest
  // free address is the one least likely to be wanted by a node added later.
  for (uint64_t k = subnet->host_count(); k >= 1; --k) {
    Ipv4 ip = subnet->at(static_cast<uint32_t>(k));
    if (pool && pool->contains(ip)) continue;
    auto is_ip = [&](const std::string& text) {
      std::optional<Ipv4> a = Ipv4::parse(text);
      return a && *a == ip;
    };
    bool taken = std::any_of(spec.nodes.begin(), spec.nodes.end(), [&](const NodeSpec& n) { return is_ip(n.ip); }) ||
                 std::any_of(spec.network.dns.begin(), spec.network.dns.end(), is_ip);
    if (!taken) return ip.str();
  }
  return "";
}

std::string api_endpoint_address(const ClusterSpec& spec) {
  return uses_api_vip(spec) ? api_vip_address(spec) : control_plane_node(spec).ip;
}

bool is_hard_way(const ClusterSpec& spec) { return spec.kubernetes.mode == kModeHardWay; }

std::optional<Cidr> hard_way_pod_range(const ClusterSpec& spec, const NodeSpec& node) {
  std::optional<Cidr> subnet = Cidr::parse(spec.network.subnet);
  std::optional<Cidr> pods = Cidr::parse(spec.kubernetes.pod_cidr);
  std::optional<Ipv4> ip = Ipv4::parse(node.ip);
  if (!subnet || !pods || !ip || !subnet->contains(*ip) || pods->prefix > 24) return std::nullopt;
  const uint64_t number = ip->value - subnet->base.value;
  if (number >= (uint64_t{1} << (24 - pods->prefix))) return std::nullopt;
  return Cidr{pods->at(static_cast<uint32_t>(number << 8)), 24};
}

std::string etcd_version(const ClusterSpec& spec) {
  if (!spec.etcd.version.empty()) return spec.etcd.version;
  std::optional<int> minor = kubernetes_minor_of(spec.kubernetes.version);
  if (!minor || *minor < kKubernetesMinors.front().minor) return "";
  std::string tag(kubernetes_minor_settings(*minor).etcd);  // "3.6.6-0": kubeadm's image tag
  return tag.substr(0, tag.find('-'));
}

SourceLoc diagnostic_location(const ClusterSpec& spec, const Diagnostic& d) {
  if (d.location.known()) return d.location;
  // The nearest located ancestor: a defaulted nodes[2].ip still points at nodes[2]'s entry.
  for (std::string field = d.field;; field = spec_detail::parent_field(field)) {
    auto it = spec.locations.find(field);
    if (it != spec.locations.end()) return it->second;
    if (field.empty()) return {};
  }
}

namespace {

// `message` with control characters written as \xNN, so a message stays one line whatever it
// carries: yaml-cpp ends some with the offending character itself ("unknown escape character: "
// and a raw newline), and a value a check forgot to quote() must not break the line either.
std::string printable(std::string_view message) {
  std::string out;
  for (char c : message) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string format_diagnostic(const ClusterSpec& spec, const Diagnostic& d) {
  std::string what = d.field.empty() ? d.message : d.field + ": " + d.message;
  if (spec.source_path.empty()) return printable(what);
  SourceLoc loc = diagnostic_location(spec, d);
  if (!loc.known()) return printable(fmt::format("{}: {}", spec.source_path, what));
  return printable(fmt::format("{}:{}:{}: {}", spec.source_path, loc.line, loc.column, what));
}

namespace spec_detail {

std::string item_field(std::string_view list, size_t index) { return fmt::format("{}[{}]", list, index); }

// The key in full (a field path must tell two prefixes apart); yaml_quote keeps it on one line.
std::string mirror_field(std::string_view prefix) { return "mirrors[" + yaml_quote(prefix) + "]"; }

std::string parent_field(std::string_view field) {
  // Scan forward so that '.' and '[' inside a quoted key are not taken for separators.
  size_t last_start = 0;
  bool in_quotes = false;
  for (size_t i = 0; i < field.size(); ++i) {
    char c = field[i];
    if (in_quotes) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == '.' || c == '[') {
      last_start = i;
    }
  }
  return std::string(field.substr(0, last_start));
}

std::string quote(std::string_view value) { return quote_short(value, kMaxQuoted); }

std::string quote_short(std::string_view value, size_t max) {
  // A private key pasted by mistake is not echoed at all, whatever field it landed in.
  if (value.find("PRIVATE KEY") != std::string_view::npos) return "(private key material, not shown)";
  size_t cut = std::min(value.find('\n'), max);
  if (cut >= value.size()) return yaml_quote(value);
  // Back off to the start of a UTF-8 sequence so that the shown part stays valid text.
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xc0) == 0x80) --cut;
  return yaml_quote(value.substr(0, cut)) + "...";
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace spec_detail
}  // namespace pibake
