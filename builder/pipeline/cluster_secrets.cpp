// The PKI stage (see cluster_secrets.h).
#include "pipeline/cluster_secrets.h"

#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include "pki/state.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {
namespace {

void make_private_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error("cannot create " + dir + ": " + std::strerror(errno));
}

FileOp secret_op(const std::string& path, const std::string& content, uint32_t mode) {
  FileOp op;
  op.fs = Fs::kRoot;
  op.path = path;
  op.data = content;
  op.mode = mode;
  op.source = "pki";
  return op;
}

// notAfter of the client certificate embedded in a kubeconfig; 0 when it cannot be read.
std::time_t admin_cert_not_after(const std::string& kubeconfig) {
  try {
    YAML::Node root = YAML::Load(kubeconfig);
    std::string b64 = root["users"][0]["user"]["client-certificate-data"].as<std::string>();
    std::string pem(b64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(pem.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    if (n <= 0) return 0;
    pem.resize(static_cast<size_t>(n));
    return pki::cert_not_after(pem);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

void check_cluster_identity(const ClusterSpec& spec, const std::string& state_dir) {
  const std::string path = state_dir + "/cluster.yaml";
  std::string text;
  if (!read_file_if_exists(path, text)) {
    write_file_atomic(path, to_yaml(spec), 0600);
    return;
  }
  LoadResult recorded = load_spec_text(text, path);
  if (!recorded.problems.empty()) {
    throw Error(path + " (the spec the cluster was built from) no longer loads: " +
                format_diagnostic(recorded.spec, recorded.problems.front()));
  }
  const ClusterSpec& was = recorded.spec;
  std::vector<std::string> changes;
  auto compare = [&](const char* field, const std::string& before, const std::string& now) {
    if (before != now) changes.push_back(fmt::format("{} was \"{}\", now \"{}\"", field, before, now));
  };
  compare("cluster.name", was.cluster.name, spec.cluster.name);
  compare("cluster.domain", was.cluster.domain, spec.cluster.domain);
  compare("network.subnet", was.network.subnet, spec.network.subnet);
  compare("kubernetes.pod_cidr", was.kubernetes.pod_cidr, spec.kubernetes.pod_cidr);
  compare("kubernetes.service_cidr", was.kubernetes.service_cidr, spec.kubernetes.service_cidr);
  compare("the control plane", control_plane_node(was).name, control_plane_node(spec).name);
  for (const NodeSpec& old : was.nodes) {
    const NodeSpec* now = find_node(spec, old.name);
    if (now == nullptr) continue;  // a node left out of this spec is not rebuilt: no conflict
    compare(("node " + old.name + "'s address").c_str(), old.ip, now->ip);
    compare(("node " + old.name + "'s role").c_str(), to_string(old.role), to_string(now->role));
  }
  if (changes.empty()) {
    // Nodes may be added; nodes left out of this spec stay in the record, so one that comes back
    // later with another address or role is still caught.
    ClusterSpec merged = spec;
    for (const NodeSpec& old : was.nodes) {
      bool ip_reused =
          std::any_of(merged.nodes.begin(), merged.nodes.end(), [&](const NodeSpec& n) { return n.ip == old.ip; });
      if (find_node(merged, old.name) == nullptr && !ip_reused) merged.nodes.push_back(old);
    }
    merged.nodes_listed = true;
    write_file_atomic(path, to_yaml(merged), 0600);
    return;
  }
  std::string list;
  for (const std::string& c : changes) list += "\n  " + c;
  throw Error(
      fmt::format("this spec does not match the cluster whose keys are in {} (recorded in {}):{}\n"
                  "Images built from it could not join the running cluster. Undo those changes, or move {} away "
                  "to build a new cluster with new keys.",
                  state_dir, path, list, state_dir));
}

pki::PkiState gather_credentials(const ClusterSpec& spec, const std::string& state_dir,
                                 const std::vector<std::string>& plan_nodes, PlanInputs& inputs) {
  pki::PkiState pki = pki::load_or_create(state_dir);
  if (pki.created) fmt::print("created the cluster's certificate authorities in {}/pki\n", state_dir);
  inputs.bootstrap_token = pki.bootstrap_token;
  inputs.ca_not_before = static_cast<int64_t>(pki::cert_not_before(pki.cluster_ca.cert_pem));
  const NodeSpec& cp = control_plane_node(spec);
  make_private_dir(state_dir + "/nodes");
  for (const std::string& name : plan_nodes) {
    const NodeSpec* node = find_node(spec, name);
    if (node == nullptr) continue;
    std::vector<FileOp>& ops = inputs.credentials[name];
    if (node->role == NodeRole::kControlPlane) {
      for (const pki::NodeFile& f : pki::control_plane_files(pki)) {
        ops.push_back(secret_op(f.path, f.content, f.mode));
        // A copy kubeadm never touches: the bootstrap restores it if an interrupted init must be reset.
        std::string rel = f.path.substr(std::string(pki::kNodePkiDir).size());
        ops.push_back(secret_op("/etc/kubernetes/pibake/pki" + rel, f.content, 0600));
      }
      continue;
    }
    // A worker: its kubelet credentials, issued once and then reused from the state dir.
    std::string dir = state_dir + "/nodes/" + name;
    std::string kept_conf;
    std::vector<pki::NodeFile> files;
    if (read_file_if_exists(dir + "/kubelet.conf", kept_conf)) {
      files.push_back(
          {std::string(pki::kNodePkiDir) + "/" + std::string(pki::kCaCert), pki.cluster_ca.cert_pem, pki::kPublicMode});
      files.push_back({std::string(pki::kKubeletKubeconfig), kept_conf, pki::kSecretMode});
    } else {
      files = pki::worker_files(pki, name, spec.cluster.name, cp.ip, time(nullptr), pki::system_random());
      make_private_dir(dir);
      for (const pki::NodeFile& f : files) {
        if (f.path == pki::kKubeletKubeconfig) write_file_atomic(dir + "/kubelet.conf", f.content, 0600);
      }
    }
    for (const pki::NodeFile& f : files) ops.push_back(secret_op(f.path, f.content, f.mode));
  }
  return pki;
}

std::string write_admin_kubeconfig(const ClusterSpec& spec, const pki::PkiState& pki, const std::string& state_dir,
                                   const std::string& out_dir) {
  const NodeSpec& cp = control_plane_node(spec);
  std::string kept = state_dir + "/admin.kubeconfig";
  std::string conf;
  // The admin certificate lives a year (kubeadm's leaf validity): issue a new one within 30 days
  // of its end, so out/admin.kubeconfig keeps working for a cluster that lives on.
  constexpr std::time_t kRenewBefore = 30 * 24 * 3600;
  bool fresh = read_file_if_exists(kept, conf) && admin_cert_not_after(conf) > time(nullptr) + kRenewBefore;
  if (!fresh) {
    conf = pki::admin_kubeconfig(pki, spec.cluster.name, cp.ip, spec.kubernetes.version, time(nullptr),
                                 pki::system_random());
    write_file_atomic(kept, conf, 0600);
  }
  write_file_atomic(out_dir + "/admin.kubeconfig", conf, 0600);
  return fmt::format("kubeadm join {}:6443 --token \"$(cat {}/pki/{})\" --discovery-token-ca-cert-hash {}", cp.ip,
                     state_dir, pki::kBootstrapTokenFile, pki::discovery_hash(pki.cluster_ca.cert_pem));
}

}  // namespace pibake
