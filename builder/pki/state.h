// The cluster's PKI in the state dir: created once, reused by every later build, never overwritten;
// and the certificate files each node's image gets, as plain data for the build plan.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "pki/pki.h"

namespace pibake::pki {

// Layout under <state_dir>/pki (StateDir::pki_dir(), state/state_dir.h), mirroring /etc/kubernetes/pki on the control
// plane so that `kubeadm init` finds and reuses every CA and the service-account key.
inline constexpr std::string_view kCaCert = "ca.crt";
inline constexpr std::string_view kCaKey = "ca.key";
inline constexpr std::string_view kFrontProxyCaCert = "front-proxy-ca.crt";
inline constexpr std::string_view kFrontProxyCaKey = "front-proxy-ca.key";
inline constexpr std::string_view kEtcdCaCert = "etcd/ca.crt";
inline constexpr std::string_view kEtcdCaKey = "etcd/ca.key";
inline constexpr std::string_view kSaKey = "sa.key";
inline constexpr std::string_view kSaPub = "sa.pub";
inline constexpr std::string_view kBootstrapTokenFile = "bootstrap-token";  // pibake's own

// Where the files go inside a node's root filesystem (kubeadm's defaults).
inline constexpr std::string_view kNodePkiDir = "/etc/kubernetes/pki";
inline constexpr std::string_view kKubeletKubeconfig = "/etc/kubernetes/kubelet.conf";

inline constexpr mode_t kSecretMode = 0600;  // keys, tokens, kubeconfigs with a key
inline constexpr mode_t kPublicMode = 0644;  // certificates and public keys

struct PkiState {
  std::string dir;              // <state_dir>/pki
  CertKeyPair cluster_ca;       // CN "kubernetes": API server, kubelets, admin
  CertKeyPair front_proxy_ca;   // CN "front-proxy-ca": the aggregation layer
  CertKeyPair etcd_ca;          // CN "etcd-ca": etcd peers and clients
  std::string sa_key_pem;       // signs service-account tokens (secret)
  std::string sa_pub_pem;       // verifies them
  std::string bootstrap_token;  // for manual `kubeadm join` (secret)
  bool created = false;         // true when this call generated the material
};

// Opens the PKI in `state_dir`, creating it when <state_dir>/pki does not exist yet.
// - state_dir is opened as StateDir does: created 0700 when missing (its parent must exist).
// - Creation writes everything into <state_dir>/.pki.tmp (files via write_file_atomic, keys 0600)
//   and renames it to pki/ as the last step, so an interrupted run leaves no partial PKI.
// - An existing pki/ is loaded and checked, never modified: every file present, regular, owned by
//   the caller and without group/other write access (keys and token without any group/other
//   access); every CA a CA whose key matches; sa.pub the public half of sa.key; a well-formed token.
// - Refuses (pibake::Error naming the path and the fix) when state_dir, pki/ or pki/etcd grant
//   group/other access or belong to another user, or when anything above fails. No message ever
//   contains key or token material.
// - `with_bootstrap_token` false (kubernetes.mode: hard-way, where nothing joins with a token):
//   no bootstrap-token is created, and none is required or read; bootstrap_token stays empty.
PkiState load_or_create(const std::string& state_dir, std::time_t now, RandomSource& random,
                        bool with_bootstrap_token = true);
// now = time(nullptr), system_random()
PkiState load_or_create(const std::string& state_dir, bool with_bootstrap_token = true);

// One file for a node's root filesystem.
struct NodeFile {
  std::string path;  // absolute, inside the image
  std::string content;
  mode_t mode = kPublicMode;  // owner root:root
};

// What every control plane gets under /etc/kubernetes/pki: the three CAs with their keys and
// sa.key/sa.pub, so `kubeadm init` uses them instead of generating its own, and `kubeadm join
// --control-plane` finds the shared certificates it needs without a certificate key.
std::vector<NodeFile> control_plane_files(const PkiState& pki);

// What a worker gets: /etc/kubernetes/pki/ca.crt (the kubelet's clientCAFile) and
// /etc/kubernetes/kubelet.conf (0600) holding a fresh system:node:<name> client certificate and
// key, pointing at the API server. Never a CA key or sa.key (checked; throws if violated).
std::vector<NodeFile> worker_files(const PkiState& pki, std::string_view node_name, std::string_view cluster_name,
                                   std::string_view api_server_ip, std::time_t now, RandomSource& random);

// out/admin.kubeconfig: a fresh kubernetes-admin client certificate (see admin_group()).
std::string admin_kubeconfig(const PkiState& pki, std::string_view cluster_name, std::string_view api_server_ip,
                             std::string_view kubernetes_version, std::time_t now, RandomSource& random);

// "kubeadm join <ip>:6443 --token <token> --discovery-token-ca-cert-hash sha256:<hex>" for
// joining a machine by hand. Contains the token: print it to the user, never log it.
std::string kubeadm_join_command(const PkiState& pki, std::string_view api_server_ip);

}  // namespace pibake::pki
