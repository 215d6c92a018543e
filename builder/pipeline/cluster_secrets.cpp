// The PKI stage (see cluster_secrets.h).
#include "pipeline/cluster_secrets.h"

#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <optional>

#include "pki/state.h"
#include "util/atomic_file.h"
#include "util/build_time.h"
#include "util/error.h"

namespace pibake {
FileOp credential_op(const std::string& path, const std::string& content, uint32_t mode) {
  FileOp op;
  op.fs = Fs::kRoot;
  op.path = path;
  op.content = content;
  op.mode = mode;
  op.source = "pki";
  return op;
}

int64_t credential_not_before(const FileOp& op) {
  if (op.path.ends_with(".crt")) return static_cast<int64_t>(pki::cert_not_before(op.content));
  if (op.content.find("client-certificate-data") != std::string::npos) {
    return static_cast<int64_t>(pki::kubeconfig_client_cert_not_before(op.content));
  }
  return 0;
}

int64_t credentials_clock_floor(const std::map<std::string, std::vector<FileOp>>& credentials, int64_t ca_not_before) {
  int64_t floor = std::max(build_timestamp(), ca_not_before);
  for (const auto& [name, ops] : credentials) {
    for (const FileOp& op : ops) floor = std::max(floor, credential_not_before(op));
  }
  return floor;
}

pki::PkiState gather_credentials(const ClusterSpec& spec, const StateDir& state,
                                 const std::vector<std::string>& plan_nodes, PlanInputs& inputs) {
  // The hard way has no kubeadm join, so no bootstrap token (issue 14 item 1).
  pki::PkiState pki = pki::load_or_create(state.path(), /*with_bootstrap_token=*/!is_hard_way(spec));
  if (pki.created) fmt::print("created the cluster's certificate authorities in {}\n", state.pki_dir());
  inputs.bootstrap_token = pki.bootstrap_token;
  inputs.ca_not_before = static_cast<int64_t>(pki::cert_not_before(pki.cluster_ca.cert_pem));
  if (is_hard_way(spec)) {
    gather_hard_way_credentials(spec, state, pki, plan_nodes, inputs);
    return pki;
  }
  const std::string endpoint = api_endpoint_address(spec);
  // A node's kubelet credentials (pki::worker_files), issued once and then reused from the state
  // dir, so a rebuilt card keeps the node's identity.
  auto kubelet_files = [&](const std::string& name) {
    std::vector<pki::NodeFile> files;
    if (std::optional<std::string> kept_conf = state.kubelet_kubeconfig(name)) {
      files.push_back(
          {std::string(pki::kNodePkiDir) + "/" + std::string(pki::kCaCert), pki.cluster_ca.cert_pem, pki::kPublicMode});
      files.push_back({std::string(pki::kKubeletKubeconfig), *kept_conf, pki::kSecretMode});
    } else {
      files = pki::worker_files(pki, name, spec.cluster.name, endpoint, time(nullptr), pki::system_random());
      for (const pki::NodeFile& f : files) {
        if (f.path == pki::kKubeletKubeconfig) state.keep_kubelet_kubeconfig(name, f.content);
      }
    }
    return files;
  };
  for (const std::string& name : plan_nodes) {
    const NodeSpec* node = find_node(spec, name);
    if (node == nullptr) continue;
    std::vector<FileOp>& ops = inputs.credentials[name];
    if (node->role == NodeRole::kControlPlane) {
      for (const pki::NodeFile& f : pki::control_plane_files(pki)) {
        ops.push_back(credential_op(f.path, f.content, f.mode));
        // A copy kubeadm never touches: the bootstrap restores it if an interrupted init must be reset.
        std::string rel = f.path.substr(std::string(pki::kNodePkiDir).size());
        ops.push_back(credential_op("/etc/kubernetes/pibake/pki" + rel, f.content, 0600));
      }
      // A control plane that may join (several of them): kubeadm join's discovery file, holding
      // the node's own kubelet client certificate (docs/cluster.md, "Several control planes").
      if (uses_api_vip(spec)) {
        for (const pki::NodeFile& f : kubelet_files(name)) {
          if (f.path == pki::kKubeletKubeconfig) ops.push_back(credential_op(kDiscoveryKubeconfig, f.content, f.mode));
        }
      }
      continue;
    }
    for (const pki::NodeFile& f : kubelet_files(name)) ops.push_back(credential_op(f.path, f.content, f.mode));
  }
  // The clock floor (docs/cluster.md, "The clock without a network"): one time for every node,
  // at or after every certificate's notBefore, so that no node rejects another's certificate as
  // "not yet valid". Derived from the certificates this build places and every node's kubelet
  // credentials kept in the state dir (and SOURCE_DATE_EPOCH), never from the clock: the same
  // state dir gives the same images, whichever nodes a run builds (--node).
  inputs.clock_floor = credentials_clock_floor(inputs.credentials, inputs.ca_not_before);
  for (const NodeSpec& node : spec.nodes) {
    if (std::optional<std::string> kept = state.kubelet_kubeconfig(node.name)) {
      inputs.clock_floor =
          std::max(inputs.clock_floor, static_cast<int64_t>(pki::kubeconfig_client_cert_not_before(*kept)));
    }
  }
  return pki;
}

namespace {

// A new kubernetes-admin kubeconfig (1-year certificate from the cluster CA), also kept in the
// state dir so later builds hand out the same one.
std::string issue_and_keep_admin_kubeconfig(const ClusterSpec& spec, const pki::PkiState& pki, const StateDir& state) {
  std::string conf = pki::admin_kubeconfig(pki, spec.cluster.name, api_endpoint_address(spec), spec.kubernetes.version,
                                           time(nullptr), pki::system_random());
  state.keep_admin_kubeconfig(conf);
  return conf;
}

}  // namespace

std::string write_admin_kubeconfig(const ClusterSpec& spec, const pki::PkiState& pki, const StateDir& state,
                                   const std::string& out_dir) {
  const std::string endpoint = api_endpoint_address(spec);
  // The admin certificate lives a year (kubeadm's leaf validity): issue a new one within 30 days
  // of its end, so out/admin.kubeconfig keeps working for a cluster that lives on.
  constexpr std::time_t kRenewBefore = 30 * 24 * 3600;
  std::optional<std::string> conf = state.admin_kubeconfig();
  if (!conf || pki::kubeconfig_client_cert_not_after(*conf) <= time(nullptr) + kRenewBefore) {
    conf = issue_and_keep_admin_kubeconfig(spec, pki, state);
  }
  write_file_atomic(out_dir + "/admin.kubeconfig", *conf, 0600);
  if (is_hard_way(spec)) return "";
  return fmt::format("kubeadm join {}:6443 --token \"$(cat {}/{})\" --discovery-token-ca-cert-hash {}", endpoint,
                     state.pki_dir(), pki::kBootstrapTokenFile, pki::discovery_hash(pki.cluster_ca.cert_pem));
}

AdminKubeconfig issue_admin_kubeconfig(const StateDir& state) {
  struct stat st {};
  if (stat(state.pki_dir().c_str(), &st) != 0) {
    throw Error("no cluster in " + state.path() + " (it has no pki/): run `pibake build` first, or pass -c with " +
                "the spec the cluster was built from");
  }
  std::optional<ClusterSpec> recorded = state.identity();
  if (!recorded) {
    throw Error(state.path() + "/cluster.yaml (the spec the cluster was built from) is missing: run `pibake build` " +
                "once to record it");
  }
  // pki/ exists: loaded and checked, never changed.
  pki::PkiState pki = pki::load_or_create(state.path(), /*with_bootstrap_token=*/!is_hard_way(*recorded));
  AdminKubeconfig out;
  out.text = issue_and_keep_admin_kubeconfig(*recorded, pki, state);
  out.not_after = pki::kubeconfig_client_cert_not_after(out.text);
  out.server_ip = api_endpoint_address(*recorded);
  return out;
}

}  // namespace pibake
