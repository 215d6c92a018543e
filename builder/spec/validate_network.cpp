// Validation of the nodes and the network: addresses, ranges and their overlaps, the gateway, the
// DHCP pool, DNS servers and the uplink. Every rule here is listed in docs/spec.md.
#include <fmt/format.h>

#include <map>

#include "spec/spec_internal.h"

namespace pibake::spec_detail {
namespace {

// kubeadm puts the cluster DNS service at the 10th address of the service CIDR (GetDNSIP).
constexpr int kMaxServicePrefix = 28;

std::string node_names(const ClusterSpec& spec) {
  std::string names;
  size_t shown = 0;
  for (const NodeSpec& node : spec.nodes) {
    if (shown++ == 8) return names + ", ...";
    names += (names.empty() ? "" : ", ") + node.name;
  }
  return names;
}

void check_node_names(const ClusterSpec& spec, Problems& out) {
  std::map<std::string, size_t> first_with_name;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const std::string& name = spec.nodes[i].name;
    std::string field = item_field("nodes", i) + ".name";
    if (name.empty()) {
      out.push_back({field, "is missing: every node needs a name"});
    } else if (!is_dns_label(name)) {
      out.push_back({field, quote(name) + " is not a valid host name (RFC 1123 label): use 1 to 63 lowercase "
                                          "letters, digits and '-', not starting or ending with '-'"});
    } else if (auto [it, fresh] = first_with_name.emplace(name, i); !fresh) {
      out.push_back({field, quote(name) + " is also the name of " + item_field("nodes", it->second)});
    }
  }
}

// An odd number of control planes, at most kMaxControlPlanes: stacked etcd keeps a majority with
// (n-1)/2 members lost, and an even count adds a member without adding a failure it survives.
void check_roles(const ClusterSpec& spec, Problems& out) {
  if (!spec.nodes_listed) {
    const int k = spec.control_plane_count;
    if (k < 1 || k > kMaxControlPlanes || k % 2 == 0) {
      out.push_back({"nodes.control_planes",
                     fmt::format("{} is not a number of control planes pibake builds: use 1, 3, 5 or 7 (an odd "
                                 "number, so that etcd keeps a majority when one fails)",
                                 k)});
      return;
    }
    if (k > spec.node_count) {
      out.push_back({"nodes.control_planes", fmt::format("{} control planes need at least {} nodes, and there are {} "
                                                         "(nodes.count, or --nodes)",
                                                         k, k, spec.node_count)});
      return;
    }
  }
  const std::vector<const NodeSpec*> planes = control_plane_nodes(spec);
  if (planes.empty()) {
    out.push_back({"nodes", "no node has role control-plane: at least one is needed"});
    return;
  }
  if (planes.size() % 2 == 0 || planes.size() > static_cast<size_t>(kMaxControlPlanes)) {
    out.push_back({"nodes", fmt::format("{} nodes have role control-plane ({}): use 1, 3, 5 or 7 (an odd number, so "
                                        "that etcd keeps a majority when one fails)",
                                        planes.size(), control_plane_names(spec))});
  }
}

// The node addresses; `subnet` is nullopt when network.subnet is itself reported.
void check_node_addresses(const ClusterSpec& spec, const std::optional<Cidr>& subnet, Problems& out) {
  bool subnet_fits = subnet && spec.nodes.size() <= subnet->host_count();
  std::map<uint32_t, size_t> first_with_ip;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const std::string& text = spec.nodes[i].ip;
    std::string field = item_field("nodes", i) + ".ip";
    if (text.empty()) {
      // A generated address is missing only when the subnet is bad or too small: reported there.
      if (subnet_fits) out.push_back({field, "is missing"});
      continue;
    }
    std::optional<Ipv4> ip = Ipv4::parse(text);
    if (!ip) {
      out.push_back({field, quote(text) + " is not an IPv4 address"});
      continue;
    }
    if (subnet && !subnet->contains(*ip)) {
      out.push_back({field, quote(text) + " is outside network.subnet " + subnet->str()});
    } else if (subnet && *ip == subnet->base) {
      out.push_back({field, quote(text) + " is the network address of " + subnet->str()});
    } else if (subnet && *ip == subnet->broadcast()) {
      out.push_back({field, quote(text) + " is the broadcast address of " + subnet->str()});
    }
    if (auto [it, fresh] = first_with_ip.emplace(ip->value, i); !fresh) {
      const NodeSpec& other = spec.nodes[it->second];
      out.push_back({field, fmt::format("{} is also the address of {} ({})", quote(text),
                                        item_field("nodes", it->second), other.name)});
    }
  }
}

void check_nodes(const ClusterSpec& spec, const std::optional<Cidr>& subnet, Problems& out) {
  if (!spec.nodes_listed && (spec.node_count < 1 || spec.node_count > kMaxNodes)) {
    out.push_back({"nodes.count", fmt::format("{} is out of range: use 1 to {}", spec.node_count, kMaxNodes)});
    return;
  }
  if (spec.nodes.empty()) {
    out.push_back({"nodes", "no nodes are listed: at least one is needed"});
    return;
  }
  check_node_names(spec, out);
  check_roles(spec, out);
  check_node_addresses(spec, subnet, out);
  if (!spec.network.gateway.empty() && find_node(spec, spec.network.gateway) == nullptr) {
    out.push_back(
        {"network.gateway", quote(spec.network.gateway) + " is not one of the nodes (" + node_names(spec) + ")"});
  }
}

// Parses a CIDR field, reporting it when bad.
std::optional<Cidr> parse_cidr(const std::string& field, const std::string& text, Problems& out) {
  if (std::optional<std::string> why = cidr_problem(text)) {
    out.push_back({field, *why});
    return std::nullopt;
  }
  std::optional<Cidr> cidr = Cidr::parse(text);
  if (std::optional<std::string> block = unusable_block(*cidr)) {
    out.push_back({field, quote(text) + " overlaps " + *block + ": those addresses cannot be used on a network"});
    return std::nullopt;
  }
  return cidr;
}

void check_ranges(const ClusterSpec& spec, const std::optional<Cidr>& subnet, const std::optional<Cidr>& pods,
                  const std::optional<Cidr>& services, Problems& out) {
  const auto& k = spec.kubernetes;
  if (subnet && spec.nodes.size() > subnet->host_count()) {
    out.push_back({"network.subnet", fmt::format("{} is too small: it has {} host addresses and {} are needed (one "
                                                 "per node)",
                                                 quote(spec.network.subnet), subnet->host_count(), spec.nodes.size())});
  }
  if (pods && subnet && pods->overlaps(*subnet)) {
    out.push_back({"kubernetes.pod_cidr", quote(k.pod_cidr) + " overlaps network.subnet " + subnet->str()});
  }
  if (services && subnet && services->overlaps(*subnet)) {
    out.push_back({"kubernetes.service_cidr", quote(k.service_cidr) + " overlaps network.subnet " + subnet->str()});
  }
  if (services && pods && services->overlaps(*pods)) {
    out.push_back({"kubernetes.service_cidr", quote(k.service_cidr) + " overlaps kubernetes.pod_cidr " + pods->str()});
  }
  if (pods) {
    uint64_t per_node = pods->prefix <= kNodePodPrefix ? uint64_t{1} << (kNodePodPrefix - pods->prefix) : 0;
    if (per_node < spec.nodes.size()) {
      out.push_back(
          {"kubernetes.pod_cidr", fmt::format("{} is too small: every node gets a /{} of it, so it has room for "
                                              "{} of the {} nodes",
                                              quote(k.pod_cidr), kNodePodPrefix, per_node, spec.nodes.size())});
    }
  }
  if (services && services->prefix > kMaxServicePrefix) {
    out.push_back(
        {"kubernetes.service_cidr", fmt::format("{} is too small: kubeadm puts the cluster DNS at its 10th address, "
                                                "so it must be a /{} or larger",
                                                quote(k.service_cidr), kMaxServicePrefix)});
  }
}

void check_dhcp_range(const ClusterSpec& spec, const std::optional<Cidr>& subnet, Problems& out) {
  const std::string& text = spec.network.dhcp_range;
  const char* field = "network.dhcp_range";
  if (text.empty()) {
    out.push_back({field, "is empty: give a pool like 10.0.0.100-10.0.0.200"});
    return;
  }
  std::optional<Ipv4Range> range = Ipv4Range::parse(text);
  if (!range) {
    out.push_back({field, quote(text) + " is not a range of IPv4 addresses like "
                                        "10.0.0.100-10.0.0.200"});
    return;
  }
  if (range->last < range->first) {
    out.push_back({field, quote(text) + " ends before it starts"});
    return;
  }
  if (!subnet) return;
  if (!subnet->contains(range->first) || !subnet->contains(range->last)) {
    out.push_back({field, quote(text) + " is not inside network.subnet " + subnet->str()});
    return;
  }
  if (range->contains(subnet->base)) {
    out.push_back({field, quote(text) + " includes the network address " + subnet->base.str()});
  }
  if (range->contains(subnet->broadcast())) {
    out.push_back({field, quote(text) + " includes the broadcast address " + subnet->broadcast().str()});
  }
  // A lease handed out on a node's static address would cut that node off. One problem for all
  // such nodes: a large node count against the default pool would otherwise print dozens.
  std::vector<std::string> clashes;
  for (const NodeSpec& node : spec.nodes) {
    std::optional<Ipv4> ip = Ipv4::parse(node.ip);
    if (ip && range->contains(*ip)) clashes.push_back(fmt::format("{} ({})", node.name, ip->str()));
  }
  if (clashes.size() == 1) {
    out.push_back({field, quote(text) + " includes the address of " + clashes[0]});
  } else if (!clashes.empty()) {
    size_t total = clashes.size();
    if (total > 4) clashes.resize(3);
    out.push_back({field, fmt::format("{} includes the addresses of {} nodes: {}{}", quote(text), total,
                                      fmt::join(clashes, ", "), total > 4 ? ", ..." : "")});
  }
}

// DNS servers reach the nodes through netplan and DHCP: a loopback one would be each node itself
// (systemd-resolved's 127.0.0.53 forwarding to itself), 0.0.0.0 or a broadcast address no server.
void check_dns(const ClusterSpec& spec, const std::optional<Cidr>& subnet, Problems& out) {
  if (spec.network.dns.empty()) {
    out.push_back({"network.dns", "is empty: list at least one DNS server"});
  }
  for (size_t i = 0; i < spec.network.dns.size(); ++i) {
    const std::string& server = spec.network.dns[i];
    std::string field = item_field("network.dns", i);
    std::optional<Ipv4> ip = Ipv4::parse(server);
    if (!ip) {
      out.push_back({field, quote(server) + " is not an IPv4 address"});
    } else if (std::optional<std::string> block = unusable_block(Cidr{*ip, 32})) {
      out.push_back({field, quote(server) + " is in " + *block + ": it cannot be a DNS server for the nodes"});
    } else if (subnet && (*ip == subnet->base || *ip == subnet->broadcast())) {
      out.push_back({field, quote(server) + " is the " + (*ip == subnet->base ? "network" : "broadcast") +
                                " address of network.subnet " + subnet->str()});
    }
  }
}

// The DHCP servers pibake can configure on the gateway (plan/dhcp_server.h).
void check_dhcp_server(const ClusterSpec& spec, Problems& out) {
  const std::string& server = spec.network.dhcp_server;
  if (server != "auto" && server != "isc-dhcp-server" && server != "kea") {
    out.push_back({"network.dhcp_server", quote(server) + " is not a DHCP server pibake configures: use auto, "
                                                          "isc-dhcp-server or kea"});
  }
}

// kubernetes.api_vip: a free host address of the subnet (no node's, not leased by the DHCP
// server, not the gateway's); with several control planes and none given, one must be free.
void check_api_vip(const ClusterSpec& spec, const std::optional<Cidr>& subnet, Problems& out) {
  const char* field = "kubernetes.api_vip";
  const std::string& text = spec.kubernetes.api_vip;
  if (text.empty()) {
    if (subnet && uses_api_vip(spec) && api_vip_address(spec).empty()) {
      out.push_back({field,
                     "no address of network.subnet is free for the API server's virtual IP (every one is a "
                     "node's, a DNS server's or in network.dhcp_range): set kubernetes.api_vip"});
    }
    return;
  }
  std::optional<Ipv4> ip = Ipv4::parse(text);
  if (!ip) {
    out.push_back({field, quote(text) + " is not an IPv4 address"});
    return;
  }
  if (!subnet) return;
  if (!subnet->contains(*ip)) {
    out.push_back({field, quote(text) + " is outside network.subnet " + subnet->str() +
                              ": the control planes hold it on the cluster network"});
    return;
  }
  if (*ip == subnet->base || *ip == subnet->broadcast()) {
    out.push_back({field, quote(text) + " is the network or broadcast address of " + subnet->str()});
    return;
  }
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    if (spec.nodes[i].ip == ip->str()) {
      out.push_back({field, fmt::format("{} is the address of {} ({}): the virtual IP must be an address of its own",
                                        quote(text), item_field("nodes", i), spec.nodes[i].name)});
      return;
    }
  }
  for (size_t i = 0; i < spec.network.dns.size(); ++i) {
    if (spec.network.dns[i] == ip->str()) {
      out.push_back({field, fmt::format("{} is {}, a DNS server: the virtual IP must be an address of its own",
                                        quote(text), item_field("network.dns", i))});
      return;
    }
  }
  std::optional<Ipv4Range> pool = Ipv4Range::parse(spec.network.dhcp_range);
  if (pool && pool->contains(*ip)) {
    out.push_back({field, quote(text) + " is in network.dhcp_range " + pool->str() +
                              ": the DHCP server could lease it to another device"});
  }
}

}  // namespace

void validate_nodes_and_network(const ClusterSpec& spec, Problems& out) {
  std::optional<Cidr> subnet = parse_cidr("network.subnet", spec.network.subnet, out);
  std::optional<Cidr> pods = parse_cidr("kubernetes.pod_cidr", spec.kubernetes.pod_cidr, out);
  std::optional<Cidr> services = parse_cidr("kubernetes.service_cidr", spec.kubernetes.service_cidr, out);
  check_nodes(spec, subnet, out);
  check_ranges(spec, subnet, pods, services, out);
  validate_kubeadm_subnet_limits(pods, services, out);
  check_dhcp_range(spec, subnet, out);
  check_api_vip(spec, subnet, out);
  check_dns(spec, subnet, out);
  check_dhcp_server(spec, out);
}

}  // namespace pibake::spec_detail
