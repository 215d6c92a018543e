// The PKI stage of the pipeline: the state dir's CAs (made on the first build, reused after), each
// node's credentials for the plan, and out/admin.kubeconfig.
#pragma once

#include <ctime>
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

// Writes `out_dir`/admin.kubeconfig (0600), issued once and kept in the state dir, and returns
// the line to print for joining a machine by hand (without the token itself).
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
