// The PKI files each node's image gets (see state.h), and the admin kubeconfig and join command.
#include <algorithm>

#include "pki/state.h"
#include "util/error.h"

namespace pibake::pki {
namespace {

std::string node_path(std::string_view name) { return std::string(kNodePkiDir) + "/" + std::string(name); }

// Defence in depth for the security model ("workers carry no CA or SA key"): whatever changes in
// worker_files, an image must not receive a CA key or sa.key.
void check_no_cluster_secrets(const PkiState& pki, const std::vector<NodeFile>& files) {
  const std::string* secrets[] = {&pki.cluster_ca.key_pem, &pki.front_proxy_ca.key_pem, &pki.etcd_ca.key_pem,
                                  &pki.sa_key_pem};
  for (const NodeFile& f : files) {
    bool leaks = std::any_of(std::begin(secrets), std::end(secrets), [&](const std::string* s) {
      return !s->empty() && f.content.find(*s) != std::string::npos;
    });
    if (leaks) throw Error("internal error: " + f.path + " for a worker would carry a cluster key");
  }
}

}  // namespace

std::vector<NodeFile> control_plane_files(const PkiState& pki) {
  // kubeadm init's certs phase keeps any CA cert/key pair and sa.key it finds in
  // /etc/kubernetes/pki ("[certs] Using the existing ..."), and issues every leaf from them.
  return {
      {node_path(kCaCert), pki.cluster_ca.cert_pem, kPublicMode},
      {node_path(kCaKey), pki.cluster_ca.key_pem, kSecretMode},
      {node_path(kFrontProxyCaCert), pki.front_proxy_ca.cert_pem, kPublicMode},
      {node_path(kFrontProxyCaKey), pki.front_proxy_ca.key_pem, kSecretMode},
      {node_path(kEtcdCaCert), pki.etcd_ca.cert_pem, kPublicMode},
      {node_path(kEtcdCaKey), pki.etcd_ca.key_pem, kSecretMode},
      {node_path(kSaKey), pki.sa_key_pem, kSecretMode},
      {node_path(kSaPub), pki.sa_pub_pem, kPublicMode},
  };
}

std::vector<NodeFile> worker_files(const PkiState& pki, std::string_view node_name, std::string_view cluster_name,
                                   std::string_view api_server_ip, std::time_t now, RandomSource& random) {
  if (node_name.empty()) throw Error("worker credentials: empty node name");
  KubeconfigSpec kc;
  kc.cluster_name = std::string(cluster_name);
  kc.server = api_server_url(api_server_ip);
  kc.ca_cert_pem = pki.cluster_ca.cert_pem;
  kc.user = "system:node:" + std::string(node_name);
  kc.client = issue_cert(pki.cluster_ca, kubelet_client_spec(node_name), now, random);
  // The client certificate and key stay embedded in kubelet.conf, one copy of the secret: with
  // rotateCertificates the kubelet seeds its store (/var/lib/kubelet/pki) from the kubeconfig's
  // data and renews from there (cmd/kubelet/app/server.go, buildKubeletClientConfig, rule 1).
  std::vector<NodeFile> files = {
      {node_path(kCaCert), pki.cluster_ca.cert_pem, kPublicMode},
      {std::string(kKubeletKubeconfig), render_kubeconfig(kc), kSecretMode},
  };
  check_no_cluster_secrets(pki, files);
  return files;
}

std::string admin_kubeconfig(const PkiState& pki, std::string_view cluster_name, std::string_view api_server_ip,
                             std::string_view kubernetes_version, std::time_t now, RandomSource& random) {
  KubeconfigSpec kc;
  kc.cluster_name = std::string(cluster_name);
  kc.server = api_server_url(api_server_ip);
  kc.ca_cert_pem = pki.cluster_ca.cert_pem;
  kc.user = std::string(kAdminUser);
  kc.client = issue_cert(pki.cluster_ca, admin_client_spec(kubernetes_version), now, random);
  return render_kubeconfig(kc);
}

std::string kubeadm_join_command(const PkiState& pki, std::string_view api_server_ip) {
  std::string host(api_server_ip);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "kubeadm join " + host + ":" + std::to_string(kApiServerPort) + " --token " + pki.bootstrap_token +
         " --discovery-token-ca-cert-hash " + discovery_hash(pki.cluster_ca.cert_pem);
}

}  // namespace pibake::pki
