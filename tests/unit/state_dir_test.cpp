// The state dir's layout and modes (state/state_dir.h), checked with stat(2) and the files' text.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "pki/pki.h"
#include "state/state_dir.h"
#include "test_support.h"
#include "util/error.h"

using namespace pibake;
using Catch::Matchers::Contains;
using pibake::test::read_text;
using pibake::test::ScratchDir;

namespace {
unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}
}  // namespace

TEST_CASE("the state dir sits next to the spec file and keeps each record under its own name and mode", "[state]") {
  ClusterSpec spec = default_spec();
  CHECK(StateDir::path_for(spec) == "./pibake-state");
  spec.source_path = "/home/me/cluster/cluster.yaml";
  CHECK(StateDir::path_for(spec) == "/home/me/cluster/pibake-state");

  ScratchDir scratch;
  const std::string path = scratch / "pibake-state";
  const StateDir state(path);
  CHECK(mode_of(path) == 0700);
  CHECK(state.pki_dir() == path + "/pki");

  CHECK(state.load_lock().artifacts.empty());
  LockFile lock;
  lock.artifacts.push_back({"runc", "1.2.3", "https://example.org/runc.arm64", std::string(64, 'a')});
  state.save_lock(lock);
  CHECK(state.lock_path() == path + "/lock.yaml");
  CHECK(mode_of(state.lock_path()) == 0644);
  CHECK(render_lock(state.load_lock()) == render_lock(lock));

  CHECK_FALSE(state.kubelet_kubeconfig("node-2"));
  state.keep_kubelet_kubeconfig("node-2", "kubelet of node-2\n");
  CHECK(*state.kubelet_kubeconfig("node-2") == "kubelet of node-2\n");
  CHECK(mode_of(path + "/nodes") == 0700);
  CHECK(mode_of(path + "/nodes/node-2") == 0700);
  CHECK(mode_of(path + "/nodes/node-2/kubelet.conf") == 0600);

  CHECK_FALSE(state.admin_kubeconfig());
  state.keep_admin_kubeconfig("admin\n");
  CHECK(*state.admin_kubeconfig() == "admin\n");
  CHECK(mode_of(path + "/admin.kubeconfig") == 0600);

  CHECK_FALSE(state.check_identity(default_spec()));  // the first record
  CHECK(mode_of(path + "/cluster.yaml") == 0600);
  CHECK_NOTHROW(state.check_identity(default_spec()));
  CHECK(state.check_identity(default_spec()));  // recorded before
  ClusterSpec renamed = default_spec();
  renamed.cluster.name = "other";
  CHECK_THROWS_WITH(state.check_identity(renamed), Contains("cluster.name was \"pi\", now \"other\""));
}

TEST_CASE("a state dir open to others is refused before anything is read from it", "[state]") {
  ScratchDir scratch;
  const std::string path = scratch / "pibake-state";
  { StateDir created(path); }
  chmod(path.c_str(), 0750);
  CHECK_THROWS_WITH(StateDir(path), "state dir " + path +
                                        " has mode 0750; it holds the cluster's CA keys and must be 0700 (run: "
                                        "chmod 700 " +
                                        path + ")");
  CHECK_THROWS_AS(StateDir(scratch / "missing-parent/pibake-state"), Error);
}

TEST_CASE("the PKI reads the expiry of a kubeconfig's client certificate", "[pki]") {
  pki::CertKeyPair ca = pki::create_ca("kubernetes", 1767225600, pki::system_random());
  pki::KubeconfigSpec k{"pi", "https://10.0.0.1:6443", ca.cert_pem, "kubernetes-admin",
                        pki::issue_cert(ca, pki::admin_client_spec("v1.31.0"), 1767225600, pki::system_random())};
  CHECK(pki::kubeconfig_client_cert_not_after(pki::render_kubeconfig(k)) == 1767225600 + pki::kLeafValidity);
  CHECK(pki::kubeconfig_client_cert_not_after("not: [a kubeconfig") == 0);
  CHECK(pki::kubeconfig_client_cert_not_after("users: []\n") == 0);
}
