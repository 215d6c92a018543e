// The hard way's pod ranges, pod routes and template variables (hard_way.h; docs/hard-way.md).
#include "plan/hard_way.h"

#include <fmt/format.h>

#include "spec/net.h"
#include "util/error.h"

namespace pibake {
namespace {

constexpr int kNodePrefix = 24;  // each node's pod range is a /24 (Kubernetes the hard way's)

}  // namespace

std::string node_pod_cidr(const ClusterSpec& spec, const NodeSpec& node) {
  const std::string& text = spec.kubernetes.pod_cidr;
  const std::optional<Cidr> pods = Cidr::parse(text);
  if (!pods) throw Error(fmt::format("kubernetes.pod_cidr \"{}\" is not an IPv4 CIDR range", text));
  if (pods->prefix > kNodePrefix) {
    throw Error(fmt::format("kubernetes.pod_cidr {} is narrower than /{}: the hard way gives each node a /{} of it",
                            text, kNodePrefix, kNodePrefix));
  }
  const std::optional<Cidr> range = hard_way_pod_range(spec, node);
  if (!range) {
    const uint64_t ranges = uint64_t{1} << (kNodePrefix - pods->prefix);
    throw Error(fmt::format("kubernetes.pod_cidr {} holds {} /{} range{}, none for {} ({} in {})", text, ranges,
                            kNodePrefix, ranges == 1 ? "" : "s", node.name, node.ip, spec.network.subnet));
  }
  return range->str();
}

std::string pod_routes_netplan(const ClusterSpec& spec, const NodeSpec& node) {
  std::string routes;
  for (const NodeSpec& other : spec.nodes) {
    if (other.name == node.name) continue;
    routes += fmt::format("\n        - to: {}\n          via: {}", node_pod_cidr(spec, other), other.ip);
  }
  if (routes.empty() || node.name != gateway_name(spec)) return routes;
  return "\n      routes:" + routes;
}

TemplateVars hard_way_vars(const ClusterSpec& spec, const NodeSpec& node) {
  TemplateVars v;
  v["node_pod_cidr"] = node_pod_cidr(spec, node);
  v["pod_routes"] = pod_routes_netplan(spec, node);
  std::string members;
  for (const NodeSpec* cp : control_plane_nodes(spec)) {
    members += fmt::format("{}{}=https://{}:2380", members.empty() ? "" : ",", cp->name, cp->ip);
  }
  v["etcd_initial_cluster"] = members;
  return v;
}

}  // namespace pibake
