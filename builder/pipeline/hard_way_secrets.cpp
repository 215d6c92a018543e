// kubernetes.mode: hard-way's credentials (see cluster_secrets.h, gather_hard_way_credentials): the
// certificates of plan/hard_way_pki.h issued from the state dir's CAs, kept in the state dir, and
// written with the kubeconfigs and the Secrets encryption configuration onto the nodes that run
// what uses them (docs/hard-way.md, "Certificates on each node").
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "pipeline/cluster_secrets.h"
#include "pki/state.h"
#include "plan/hard_way_pki.h"
#include "util/error.h"
#include "util/sha256.h"

namespace pibake {
namespace {

constexpr const char* kRecordPrefix = "# pibake hard-way credential: ";
constexpr const char* kCertEnd = "-----END CERTIFICATE-----\n";

std::string pki_path(const std::string& name) { return std::string(pki::kNodePkiDir) + "/" + name; }

const pki::CertKeyPair& ca_of(const pki::PkiState& pki, HardWayCa ca) {
  switch (ca) {
    case HardWayCa::kEtcd:
      return pki.etcd_ca;
    case HardWayCa::kFrontProxy:
      return pki.front_proxy_ca;
    case HardWayCa::kCluster:
      break;
  }
  return pki.cluster_ca;
}

// True for 44 characters of standard base64 ending in one '=': 32 bytes (RFC 4648).
bool is_base64_key_32(const std::string& text) {
  if (text.size() != 44 || text[43] != '=' || text[42] == '=') return false;
  return std::all_of(text.begin(), text.end() - 1,
                      [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'; });
}

// What a certificate was issued for, in one line: its CA (by the certificate's digest), subject,
// usages and names. A kept certificate whose record differs (a new api_server_sans entry, say) is
// issued again; one whose record matches is reused, so the same state dir gives the same images.
std::string record_of(const pki::CertKeyPair& ca, const pki::LeafSpec& l) {
  std::string usages;
  for (pki::ExtKeyUsage u : l.usages) usages += u == pki::ExtKeyUsage::kServerAuth ? "serverAuth," : "clientAuth,";
  return fmt::format("ca={} cn={} o={} usages={} dns={} ip={} validity={}", sha256_hex(ca.cert_pem).substr(0, 16),
                     l.common_name, fmt::join(l.organizations, ","), usages, fmt::join(l.dns_names, ","),
                     fmt::join(l.ip_addresses, ","), l.validity);
}

// The certificate and key kept as `name` in the state dir when they were issued for `leaf` by `ca`
// (the record) and are still valid for a day; else a new pair from `ca`, kept for the next build,
// and a line saying why. A kept file that is damaged (no record line, a certificate or key that does
// not parse, a key that is not the certificate's, a certificate the CA did not sign) is refused:
// pibake never replaces a node's credentials behind the user's back.
pki::CertKeyPair kept_or_issued(const StateDir& state, const std::string& name, const pki::CertKeyPair& ca,
                                const pki::LeafSpec& leaf) {
  const std::string record = record_of(ca, leaf);
  const std::string where = state.path() + "/hard-way/" + name + " (kept by an earlier build)";
  std::string why = "issued";
  if (std::optional<std::string> kept = state.hard_way_secret(name)) {
    const size_t eol = kept->find('\n');
    const size_t cert_end = kept->find(kCertEnd);
    if (!kept->starts_with(kRecordPrefix) || eol == std::string::npos || cert_end == std::string::npos) {
      throw Error(where + " is damaged: it does not hold pibake's record line and a certificate; move it away and "
                  "build again to issue a new one");
    }
    const size_t cert_begin = eol + 1;
    const size_t key_begin = cert_end + std::string(kCertEnd).size();
    pki::CertKeyPair pair{kept->substr(cert_begin, key_begin - cert_begin), kept->substr(key_begin)};
    pki::check_leaf_pair(pair, ca, where);
    if (kept->substr(std::string(kRecordPrefix).size(), eol - std::string(kRecordPrefix).size()) != record) {
      why = "issued again (what it must say changed)";
    } else if (pki::cert_not_after(pair.cert_pem) < std::time(nullptr) + 24 * 3600) {
      why = "issued again (it expires within a day)";
    } else {
      return pair;
    }
  }
  pki::CertKeyPair pair = pki::issue_cert(ca, leaf, std::time(nullptr), pki::system_random());
  state.keep_hard_way_secret(name, kRecordPrefix + record + "\n" + pair.cert_pem + pair.key_pem);
  fmt::print("hard way: {} certificate {} ({})\n", why, name, leaf.common_name);
  return pair;
}

// EncryptionConfiguration (apiserver.config.k8s.io/v1) for --encryption-provider-config: Secrets
// are written with secretbox (XSalsa20-Poly1305, the provider Kubernetes' "Encrypting
// Confidential Data at Rest" rates strong and fast) under a 32-byte key kept in the state dir;
// identity last, so Secrets written before encryption was on can still be read.
std::string encryption_config(const StateDir& state) {
  std::optional<std::string> key = state.hard_way_secret("encryption-key");
  if (!key) {
    unsigned char raw[32];
    pki::system_random().fill(raw, sizeof raw);
    key = pki::base64_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
    state.keep_hard_way_secret("encryption-key", *key + "\n");
    fmt::print("hard way: made the Secrets encryption key (pibake-state/hard-way/encryption-key)\n");
  }
  while (!key->empty() && key->back() == '\n') key->pop_back();
  // Every Secret in etcd is readable only with this key: a damaged one is refused, never replaced.
  if (!is_base64_key_32(*key)) {
    throw Error(state.path() + "/hard-way/encryption-key is damaged: it must be one line of base64 holding 32 "
                "bytes (secretbox's key). It encrypts the cluster's Secrets in etcd: restore it from a backup");
  }
  return fmt::format(
      "# Written by pibake: Secrets are encrypted at rest (kubernetes.io/docs/tasks/administer-cluster/"
      "encrypt-data).\n"
      "apiVersion: apiserver.config.k8s.io/v1\n"
      "kind: EncryptionConfiguration\n"
      "resources:\n"
      "  - resources:\n"
      "      - secrets\n"
      "    providers:\n"
      "      - secretbox:\n"
      "          keys:\n"
      "            - name: key1\n"
      "              secret: {}\n"
      "      - identity: {{}}\n",
      *key);
}

}  // namespace

void gather_hard_way_credentials(const ClusterSpec& spec, const StateDir& state, const pki::PkiState& pki,
                                 const std::vector<std::string>& plan_nodes, PlanInputs& inputs) {
  const NodeSpec& control_plane = control_plane_node(spec);
  const std::string server = pki::api_server_url(control_plane.ip);
  const std::string local_server = pki::api_server_url("127.0.0.1");
  // Every node's credentials, whether this run builds it or not: the clock floor must come out the
  // same whichever nodes a run builds (gather_credentials).
  std::map<std::string, std::vector<FileOp>> all;
  std::map<std::string, pki::CertKeyPair> issued;
  for (const HardWayCert& c : hard_way_certs(spec)) {
    const pki::CertKeyPair pair = kept_or_issued(state, c.name, ca_of(pki, c.ca), c.leaf);
    issued[c.name] = pair;
    for (const std::string& node : c.nodes) {
      all[node].push_back(credential_op(pki_path(c.name + ".crt"), pair.cert_pem, pki::kPublicMode));
      all[node].push_back(credential_op(pki_path(c.name + ".key"), pair.key_pem, pki::kSecretMode));
    }
  }
  auto kubeconfig = [&](const std::string& user, const pki::CertKeyPair& client, const std::string& at) {
    return pki::render_kubeconfig({spec.cluster.name, at, pki.cluster_ca.cert_pem, user, client});
  };
  for (const NodeSpec& n : spec.nodes) {
    std::vector<FileOp>& ops = all[n.name];
    // Every node: the cluster CA its kubelet checks clients against, and the kubeconfigs of its
    // kubelet (its own system:node identity) and of kube-proxy.
    ops.push_back(credential_op(pki_path(std::string(pki::kCaCert)), pki.cluster_ca.cert_pem, pki::kPublicMode));
    ops.push_back(credential_op(std::string(pki::kKubeletKubeconfig),
                                kubeconfig("system:node:" + n.name, issued.at("kubelet-client-" + n.name), server),
                                pki::kSecretMode));
    ops.push_back(credential_op("/etc/kubernetes/kube-proxy.conf",
                                kubeconfig("system:kube-proxy", issued.at("kube-proxy"), server), pki::kSecretMode));
    if (n.role != NodeRole::kControlPlane) continue;
    // The control plane: the CA key the controller-manager signs CSRs with, the other CAs'
    // certificates (never their keys: nothing on the node issues etcd or front-proxy
    // certificates), the service-account key pair, the components' kubeconfigs (over loopback),
    // the encryption configuration, and two admin kubeconfigs for the first boot.
    ops.push_back(credential_op(pki_path(std::string(pki::kCaKey)), pki.cluster_ca.key_pem, pki::kSecretMode));
    ops.push_back(credential_op(pki_path(std::string(pki::kFrontProxyCaCert)), pki.front_proxy_ca.cert_pem,
                                pki::kPublicMode));
    ops.push_back(
        credential_op(pki_path(std::string(pki::kEtcdCaCert)), pki.etcd_ca.cert_pem, pki::kPublicMode));
    ops.push_back(credential_op(pki_path(std::string(pki::kSaKey)), pki.sa_key_pem, pki::kSecretMode));
    ops.push_back(credential_op(pki_path(std::string(pki::kSaPub)), pki.sa_pub_pem, pki::kPublicMode));
    ops.push_back(credential_op(
        "/etc/kubernetes/controller-manager.conf",
        kubeconfig("system:kube-controller-manager", issued.at("controller-manager"), local_server), pki::kSecretMode));
    ops.push_back(credential_op("/etc/kubernetes/scheduler.conf",
                                kubeconfig("system:kube-scheduler", issued.at("scheduler"), local_server),
                                pki::kSecretMode));
    // admin.conf: kubernetes-admin in kubeadm:cluster-admins, as kubeadm writes it; the group is
    // bound to cluster-admin by the first boot, which applies that binding (and the rest of the
    // cluster's RBAC) as super-admin (system:masters, kubeadm's super-admin.conf), the one
    // identity that needs no binding. Both stay on node-1 only, root-only.
    pki::LeafSpec admin = pki::admin_client_spec(spec.kubernetes.version);
    admin.validity = pki::kCaValidity;
    ops.push_back(credential_op(
        "/etc/kubernetes/admin.conf",
        kubeconfig(std::string(pki::kAdminUser), kept_or_issued(state, "admin", pki.cluster_ca, admin), local_server),
        pki::kSecretMode));
    pki::LeafSpec super_admin;
    super_admin.common_name = "kubernetes-super-admin";
    super_admin.organizations = {"system:masters"};
    super_admin.usages = {pki::ExtKeyUsage::kClientAuth};
    super_admin.validity = pki::kCaValidity;
    ops.push_back(credential_op(
        "/etc/kubernetes/super-admin.conf",
        kubeconfig("kubernetes-super-admin", kept_or_issued(state, "super-admin", pki.cluster_ca, super_admin),
                   local_server),
        pki::kSecretMode));
    ops.push_back(credential_op("/etc/kubernetes/encryption-config.yaml", encryption_config(state), pki::kSecretMode));
  }
  inputs.clock_floor = credentials_clock_floor(all, inputs.ca_not_before);
  for (const std::string& name : plan_nodes) inputs.credentials[name] = all[name];
}

}  // namespace pibake
