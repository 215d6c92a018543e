// The certificates of a cluster built the hard way (issue 14, item 2: no kubeadm; seeds 000 and
// 002): which certificate each component presents, signed by which CA, with which subject, usages
// and names, and which nodes carry it. A table only: pipeline/hard_way_secrets.cpp issues from it
// (pki::issue_cert) for `kubernetes.mode: hard-way`, and docs/pki.md ("The hard way's
// certificates") cites the source of each row.
#pragma once

#include <string>
#include <vector>

#include "pki/pki.h"
#include "spec/spec.h"

namespace pibake {

// The CA that signs a certificate: the cluster CA (ca.crt), etcd's (etcd/ca.crt) or the
// front proxy's (front-proxy-ca.crt), as kubeadm lays them out.
enum class HardWayCa { kCluster, kEtcd, kFrontProxy };

// One certificate and its key.
struct HardWayCert {
  // The file stem under /etc/kubernetes/pki: kubeadm's name where kubeadm has the same certificate
  // ("apiserver", "etcd/server"), with the node's name for a per-node one
  // ("kubelet-client-node-2", "etcd/peer-node-1").
  std::string name;
  HardWayCa ca = HardWayCa::kCluster;
  pki::LeafSpec leaf;
  std::vector<std::string> nodes;  // the nodes whose card holds it (node names, spec order)
  std::string source;              // the documentation its subject and usages follow
};

// Every certificate of the hard way's PKI for `spec`, in a fixed order: the control planes'
// (API server serving, its clients for kubelets, etcd and the front proxy, controller-manager,
// scheduler), each control plane's etcd server and peer, then each node's kubelet client and
// serving certificates and the shared kube-proxy client. The admin clients are not listed: the
// hard way's credentials step issues kubernetes-admin (pki::admin_client_spec) for node-1's
// admin.conf and super-admin for its first boot, and out/admin.kubeconfig has its own. Workers hold no CA-signed credential
// but their own kubelet's and kube-proxy's. Throws pibake::Error when spec's service CIDR does not
// parse (the spec validator refuses that first).
std::vector<HardWayCert> hard_way_certs(const ClusterSpec& spec);

// The API server's ClusterIP: the first host address of the service CIDR ("10.96.0.0/12" ->
// "10.96.0.1"), the `kubernetes` Service's address every pod uses, so it must be in the serving
// certificate (Kubernetes' "PKI certificates and requirements"; kubeadm GetAPIServerVirtualIP).
// Throws pibake::Error when the CIDR does not parse.
std::string api_server_cluster_ip(const std::string& service_cidr);

}  // namespace pibake
