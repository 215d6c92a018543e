// The PKI stage of the pipeline: the state dir's CAs (made on the first build, reused after), each
// node's credentials for the plan, and out/admin.kubeconfig.
#pragma once

#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "pki/state.h"
#include "plan/plan.h"
#include "spec/spec.h"
#include "state/state_dir.h"

namespace pibake {

// Loads or creates the PKI and fills `inputs` with the bootstrap token and the credentials of
// every node in `plan_nodes`: a control plane's CA material (pki::control_plane_files, and a copy
// the bootstrap restores after kubeadm reset), with several control planes also kDiscoveryKubeconfig;
// a worker's kubelet.conf. Kubelet credentials (a worker's, a control plane's discovery file) are
// issued once and kept in the state dir, so regenerating an image gives the node the same
// identity. Returns the PKI, loaded once for the whole build.
pki::PkiState gather_credentials(const ClusterSpec& spec, const StateDir& state,
                                 const std::vector<std::string>& plan_nodes, PlanInputs& inputs);

// kubernetes.mode: hard-way (docs/hard-way.md, called by gather_credentials): every certificate
// of hard_way_certs() with its key, issued from `pki`'s CAs once and kept in the state dir
// (StateDir::hard_way_secret; issued again when what it must say changed); each node of
// `plan_nodes` gets under /etc/kubernetes/pki the cluster CA certificate and the certificates its
// row lists it for, and its kubelet.conf and kube-proxy.conf; the control plane also the cluster
// CA key (the controller-manager signs CSRs), the etcd and front-proxy CA certificates, sa.key and
// sa.pub, controller-manager.conf, scheduler.conf, admin.conf, super-admin.conf (all over
// 127.0.0.1) and encryption-config.yaml. Keys and kubeconfigs 0600. Sets inputs.clock_floor from
// every node's certificates. Throws pibake::Error when a certificate cannot be issued or kept.
void gather_hard_way_credentials(const ClusterSpec& spec, const StateDir& state, const pki::PkiState& pki,
                                 const std::vector<std::string>& plan_nodes, PlanInputs& inputs);

// A credential for a node's root filesystem: a kWrite op of `content` at `path` (absolute, in the
// image), mode `mode`, owner root, its source "pki" (what --dry-run and node.json show; a 0600
// file's content never appears in either).
FileOp credential_op(const std::string& path, const std::string& content, uint32_t mode);

// notBefore of the certificate a credential file holds (a PEM certificate, "*.crt", or a
// kubeconfig with an embedded client certificate), Unix seconds; 0 for keys and anything else.
int64_t credential_not_before(const FileOp& op);

// The clock floor a first boot sets the clock to (docs/pki.md): the latest of the build's
// timestamp (SOURCE_DATE_EPOCH or now), `ca_not_before` and every credential's notBefore
// (credential_not_before), Unix seconds. `credentials` maps node names to their credential ops.
int64_t credentials_clock_floor(const std::map<std::string, std::vector<FileOp>>& credentials, int64_t ca_not_before);

// Writes `out_dir`/admin.kubeconfig (0600), issued once and kept in the state dir, and returns
// the line to print for joining a machine by hand (without the token itself); "" in hard-way
// mode, which has no token to join with.
std::string write_admin_kubeconfig(const ClusterSpec& spec, const pki::PkiState& pki, const StateDir& state,
                                   const std::string& out_dir);

// `pibake kubeconfig`: a fresh kubernetes-admin kubeconfig (new key, certificate valid 1 year, see
// docs/pki.md) from the state dir alone: its CA and the spec the cluster was built from
// (its identity record, cluster.yaml), at any time, whatever the admin kubeconfigs handed out
// before. Also kept in the state dir (StateDir::keep_admin_kubeconfig). Throws pibake::Error when the state dir holds
// no cluster or fails its checks (pki::load_or_create); never creates a CA.
struct AdminKubeconfig {
  std::string text;         // the kubeconfig (holds the private key: write it 0600)
  std::time_t not_after{};  // the certificate's end, Unix seconds
  std::string server_ip;    // the API server it points at (api_endpoint_address)
};
AdminKubeconfig issue_admin_kubeconfig(const StateDir& state);

}  // namespace pibake
