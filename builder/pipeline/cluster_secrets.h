// The PKI stage of the pipeline: the state dir's CAs (made on the first build, reused after), each
// node's credentials for the plan, out/admin.kubeconfig, and the guard that refuses a spec which
// would no longer match the cluster the state dir belongs to.
#pragma once

#include <string>
#include <vector>

#include "pki/state.h"
#include "plan/plan.h"
#include "spec/spec.h"

namespace pibake {

// Refuses (pibake::Error listing every difference) a spec whose cluster name, domain, subnet,
// pod or service range, or any existing node's address or role differs from the one recorded in
// `state_dir`/cluster.yaml by the first build; records it when there is none yet.
void check_cluster_identity(const ClusterSpec& spec, const std::string& state_dir);

// Loads or creates the PKI and fills `inputs` with the bootstrap token and the credentials of
// every node in `plan_nodes`. A worker's kubelet credentials are issued once and kept in
// `state_dir`/nodes/<name>/, so regenerating its image gives it the same identity. Returns the
// PKI, loaded once for the whole build.
pki::PkiState gather_credentials(const ClusterSpec& spec, const std::string& state_dir,
                                 const std::vector<std::string>& plan_nodes, PlanInputs& inputs);

// Writes `out_dir`/admin.kubeconfig (0600), issued once and kept in the state dir, and returns
// the line to print for joining a machine by hand (without the token itself).
std::string write_admin_kubeconfig(const ClusterSpec& spec, const pki::PkiState& pki, const std::string& state_dir,
                                   const std::string& out_dir);

}  // namespace pibake
