// The files a node of a cluster built the hard way runs from (issue 14, items 3 and 4: no kubeadm;
// seeds 000, 002 and 003, after "Kubernetes the hard way", github.com/kelseyhightower/
// kubernetes-the-hard-way): each node's fixed pod range and the static routes to every other
// node's, and the template variables of overlays/hard-way and overlays/hard-way-control-plane
// beyond node_vars()'s (plan.cpp). docs/hard-way.md describes every file and the source it follows.
#pragma once

#include <string>

#include "plan/template.h"
#include "spec/spec.h"

namespace pibake {

// The pod range of `node`: hard_way_pod_range() (spec.h), the /24 of spec.kubernetes.pod_cidr
// numbered by the node's host number in network.subnet, as "A.B.C.0/24" (10.0.0.2 in 10.0.0.0/24,
// pods in 10.244.0.0/16: "10.244.2.0/24"), the way Kubernetes the hard way gives node-k
// 10.200.k.0/24 and the bridge CNI's host-local IPAM takes it. The address is fixed by the state
// dir's record, so rebuilding one card (`pibake build --node`) gives it the range it had, whatever
// the order of the node list. Throws pibake::Error (validate() reports the same first) when the
// pod CIDR does not parse, is narrower than /24 (a /25 holds no /24), or holds no /24 of the
// node's number (a /22 has four, 0 to 3).
std::string node_pod_cidr(const ClusterSpec& spec, const NodeSpec& node);

// The netplan routes from `node` to every other node's pod range (node_pod_cidr) via that node's
// address, in spec order, none to its own range: the static routes of seeds 000 and 002, which
// Kubernetes the hard way adds with `ip route add <range> via <node>` ("Provisioning Pod Network
// Routes"). The text is what replaces {{pod_routes}} in the node's netplan template
// (netplan/*/boot/firmware/network-config.tmpl), each route starting with "\n":
//   - a node that is not the gateway: routes in the style of the default route the template already
//     has under eth0's `routes:` ("\n        - to: 10.244.1.0/24\n          via: 10.0.0.2"), the
//     placeholder right after that route's `via:` line;
//   - the gateway (network.gateway, else the first node), whose eth0 has no `routes:` block (its
//     default route comes from the uplink's DHCP): the same routes after a "\n      routes:" line,
//     the placeholder right after eth0's `addresses:` line.
// "" for a cluster of one node: with {{pod_routes}} empty (kubeadm mode) both templates render
// byte for byte as before. Throws what node_pod_cidr throws.
std::string pod_routes_netplan(const ClusterSpec& spec, const NodeSpec& node);

// The variables the hard way's templates use beyond node_vars() (plan.cpp), for node `node`:
//   node_pod_cidr         this node's pod range, "10.244.1.0/24" (node_pod_cidr): the kubelet's
//                         podCIDR and the bridge CNI's host-local subnet
//   pod_routes            pod_routes_netplan(spec, node): the netplan templates' {{pod_routes}}
//   etcd_initial_cluster  etcd's --initial-cluster: every control plane as NAME=https://IP:2380,
//                         joined by ",", in spec order ("node-1=https://10.0.0.1:2380")
// Throws pibake::Error as node_pod_cidr does.
TemplateVars hard_way_vars(const ClusterSpec& spec, const NodeSpec& node);

}  // namespace pibake
