// The hard way's certificate table (hard_way_pki.h). Subjects, usages and names follow
// Kubernetes' "PKI certificates and requirements" (kubernetes.io/docs/setup/best-practices/
// certificates: the tables "All certificates" and "Configure certificates for user accounts") and
// the bootstrap RBAC roles the API server creates (system:kube-controller-manager,
// system:kube-scheduler, system:node-proxier bound to user system:kube-proxy); docs/pki.md cites each.
#include "plan/hard_way_pki.h"

#include "plan/plan.h"
#include "spec/net.h"
#include "util/error.h"

namespace pibake {
namespace {

using pki::ExtKeyUsage;
using pki::LeafSpec;

const std::string kPkiDoc = "kubernetes.io/docs/setup/best-practices/certificates";

LeafSpec leaf(std::string cn, std::vector<std::string> orgs, std::vector<ExtKeyUsage> usages,
              std::vector<std::string> dns = {}, std::vector<std::string> ips = {}) {
  LeafSpec l;
  l.common_name = std::move(cn);
  l.organizations = std::move(orgs);
  l.usages = std::move(usages);
  l.dns_names = std::move(dns);
  l.ip_addresses = std::move(ips);
  // Nothing on a hard-way node renews a certificate (there is no kubeadm), so each lives as long
  // as its CA, as Kubernetes the hard way issues them (-days 3653). pibake keeps each in the state
  // dir and puts the same one on a rebuilt card; only a new CA (a new state dir) revokes them
  // (docs/hard-way.md, "A lost card").
  l.validity = pki::kCaValidity;
  return l;
}

bool is_ip(const std::string& text) { return Ipv4::parse(text).has_value(); }

// Splits names into the DNS and IP lists of a subjectAltName, dropping repeats.
void add_san(LeafSpec& l, const std::string& name) {
  std::vector<std::string>& list = is_ip(name) ? l.ip_addresses : l.dns_names;
  for (const std::string& have : list)
    if (have == name) return;
  list.push_back(name);
}

}  // namespace

std::string api_server_cluster_ip(const std::string& service_cidr) {
  std::optional<Cidr> cidr = Cidr::parse(service_cidr);
  if (!cidr || cidr->size() < 4) throw Error("service CIDR '" + service_cidr + "' has no first host address");
  return cidr->at(1).str();
}

std::vector<HardWayCert> hard_way_certs(const ClusterSpec& spec) {
  std::vector<std::string> control_planes, all_nodes;
  for (const NodeSpec* cp : control_plane_nodes(spec)) control_planes.push_back(cp->name);
  for (const NodeSpec& n : spec.nodes) all_nodes.push_back(n.name);
  const std::string fqdn_suffix = "." + spec.cluster.domain;
  std::vector<HardWayCert> out;
  auto add = [&](std::string name, HardWayCa ca, LeafSpec l, std::vector<std::string> nodes, std::string source) {
    out.push_back({std::move(name), ca, std::move(l), std::move(nodes), std::move(source)});
  };

  // The API server's serving certificate: every name a client may use to reach it. The in-cluster
  // names of the `kubernetes` Service and its ClusterIP, the endpoint (the VIP with several control
  // planes, else node-1), kubeadm's certSANs (api_server_sans: each control plane's address, name
  // and FQDN, the spec's extras) and loopback (the components on the same node).
  LeafSpec apiserver = leaf("kube-apiserver", {}, {ExtKeyUsage::kServerAuth});
  for (const char* n : {"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster",
                        "kubernetes.default.svc.cluster.local"}) {
    add_san(apiserver, n);
  }
  add_san(apiserver, api_server_cluster_ip(spec.kubernetes.service_cidr));
  add_san(apiserver, api_endpoint_address(spec));
  for (const std::string& n : api_server_sans(spec)) add_san(apiserver, n);
  add_san(apiserver, "127.0.0.1");
  add_san(apiserver, "localhost");
  add("apiserver", HardWayCa::kCluster, apiserver, control_planes, kPkiDoc);

  // Its client certificates. To kubelets: a user the first boot binds to the system:kubelet-api-admin
  // ClusterRole (/etc/kubernetes/pibake/rbac-apiserver-to-kubelet.yaml), not system:masters (bypasses RBAC).
  add("apiserver-kubelet-client", HardWayCa::kCluster,
      leaf("kube-apiserver-kubelet-client", {}, {ExtKeyUsage::kClientAuth}), control_planes, kPkiDoc);
  add("apiserver-etcd-client", HardWayCa::kEtcd, leaf("kube-apiserver-etcd-client", {}, {ExtKeyUsage::kClientAuth}),
      control_planes, kPkiDoc);
  // The aggregation layer (metrics-server): --proxy-client-cert-file, checked by extension API
  // servers against --requestheader-client-ca-file (the front proxy CA) and allowed names.
  add("front-proxy-client", HardWayCa::kFrontProxy, leaf("front-proxy-client", {}, {ExtKeyUsage::kClientAuth}),
      control_planes, kPkiDoc + ", kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer");
  // The controllers' and the scheduler's users, which the API server's bootstrap RBAC binds.
  add("controller-manager", HardWayCa::kCluster, leaf("system:kube-controller-manager", {}, {ExtKeyUsage::kClientAuth}),
      control_planes, kPkiDoc + " (user accounts)");
  add("scheduler", HardWayCa::kCluster, leaf("system:kube-scheduler", {}, {ExtKeyUsage::kClientAuth}), control_planes,
      kPkiDoc + " (user accounts)");

  // etcd, one member per control plane: its serving and peer certificates name the node, its
  // address and loopback, and are both server and client (a member dials its peers).
  for (const NodeSpec* cp : control_plane_nodes(spec)) {
    for (const char* kind : {"server", "peer"}) {
      LeafSpec l = leaf(cp->name, {}, {ExtKeyUsage::kServerAuth, ExtKeyUsage::kClientAuth});
      for (const std::string& n :
           {cp->name, cp->name + fqdn_suffix, cp->ip, std::string("localhost"), std::string("127.0.0.1")}) {
        add_san(l, n);
      }
      add(std::string("etcd/") + kind + "-" + cp->name, HardWayCa::kEtcd, l, {cp->name},
          kPkiDoc + " (kube-etcd, kube-etcd-peer)");
    }
  }

  // Every node is a node: its kubelet's client identity (the Node authorizer's), its kubelet's
  // serving certificate (the API server checks it with --kubelet-certificate-authority), and
  // kube-proxy's client, one shared user bound to system:node-proxier.
  for (const NodeSpec& n : spec.nodes) {
    LeafSpec client = leaf("system:node:" + n.name, {std::string(pki::kNodesGroup)}, {ExtKeyUsage::kClientAuth});
    add("kubelet-client-" + n.name, HardWayCa::kCluster, client, {n.name}, kPkiDoc + " (user accounts)");
    LeafSpec serving = leaf("system:node:" + n.name, {std::string(pki::kNodesGroup)}, {ExtKeyUsage::kServerAuth});
    for (const std::string& name : {n.name, n.name + fqdn_suffix, n.ip}) add_san(serving, name);
    add("kubelet-serving-" + n.name, HardWayCa::kCluster, serving, {n.name},
        "kubernetes.io/docs/reference/access-authn-authz/kubelet-tls-bootstrapping (serving certificates)");
  }
  add("kube-proxy", HardWayCa::kCluster, leaf("system:kube-proxy", {}, {ExtKeyUsage::kClientAuth}), all_nodes,
      "kubernetes.io/docs/reference/access-authn-authz/rbac (system:node-proxier)");
  return out;
}

}  // namespace pibake
