// The hard way's certificate table (issue 14, item 2; plan/hard_way_pki.h): every row issued with
// pibake's PKI and read back with the openssl CLI, which shares no code with it: the chain to the
// CA the row names (openssl verify), the subject, the extended key usages and the names, and which
// nodes carry what (workers: only their own kubelet's and kube-proxy's).
#include "plan/hard_way_pki.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "spec/spec.h"
#include "test_support.h"
#include "util/error.h"

using namespace pibake;
using Catch::Matchers::Contains;
using pibake::test::must_run;
using pibake::test::ScratchDir;
using pibake::test::write_text;

namespace {

constexpr std::time_t kNow = 1767225600;  // 2026-01-01T00:00:00Z

ClusterSpec spec_of(const std::string& yaml) {
  LoadResult r = load_spec_text(yaml, "cluster.yaml");
  REQUIRE(r.problems.empty());
  return r.spec;
}

const HardWayCert& find(const std::vector<HardWayCert>& certs, const std::string& name) {
  for (const HardWayCert& c : certs)
    if (c.name == name) return c;
  FAIL("no certificate named " << name);
  throw Error("unreachable");
}

// What openssl reads back from a certificate issued for `c`: "subject", "eku", "san" lines.
std::map<std::string, std::string> issued_and_read(const HardWayCert& c,
                                                   const std::map<HardWayCa, pki::CertKeyPair>& cas,
                                                   const ScratchDir& dir) {
  const pki::CertKeyPair& ca = cas.at(c.ca);
  pki::CertKeyPair pair = pki::issue_cert(ca, c.leaf, kNow, pki::system_random());
  std::string stem = c.name;
  for (char& ch : stem)
    if (ch == '/') ch = '_';
  const std::string crt = dir / (stem + ".crt"), ca_crt = dir / (stem + "-ca.crt");
  write_text(crt, pair.cert_pem);
  write_text(ca_crt, ca.cert_pem);
  std::map<std::string, std::string> out;
  out["verify"] = must_run(
      {"openssl", "verify", "-attime", std::to_string(kNow + 3600), "-CAfile", ca_crt, "-purpose", "any", crt});
  out["subject"] = must_run({"openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", crt});
  out["text"] = must_run({"openssl", "x509", "-noout", "-text", "-in", crt});
  return out;
}

}  // namespace

TEST_CASE("the API server's ClusterIP is the service range's first host address", "[hard-way]") {
  CHECK(api_server_cluster_ip("10.96.0.0/12") == "10.96.0.1");
  CHECK(api_server_cluster_ip("172.20.0.0/16") == "172.20.0.1");
  CHECK_THROWS_WITH(api_server_cluster_ip("10.96.0.0/31"), Contains("no first host address"));
  CHECK_THROWS_WITH(api_server_cluster_ip("nonsense"), Contains("nonsense"));
}

TEST_CASE("hard-way certificates chain to their CA with Kubernetes' subjects, usages and names", "[hard-way]") {
  const ClusterSpec spec = spec_of("nodes: {count: 4, control_planes: 3}\n");
  const std::vector<HardWayCert> certs = hard_way_certs(spec);
  std::map<HardWayCa, pki::CertKeyPair> cas = {
      {HardWayCa::kCluster, pki::create_ca(pki::kClusterCaName, kNow, pki::system_random())},
      {HardWayCa::kEtcd, pki::create_ca(pki::kEtcdCaName, kNow, pki::system_random())},
      {HardWayCa::kFrontProxy, pki::create_ca(pki::kFrontProxyCaName, kNow, pki::system_random())},
  };
  ScratchDir dir;

  // Names are unique: each is a file stem under /etc/kubernetes/pki.
  std::set<std::string> names;
  for (const HardWayCert& c : certs) CHECK(names.insert(c.name).second);
  CHECK(certs.size() == 6 + 3 * 2 + 4 * 2 + 1);

  // Each row's subject and usages as openssl reads them (the "PKI certificates and requirements" tables).
  struct Want {
    std::string name, subject, eku;
    HardWayCa ca;
  };
  const std::vector<Want> wants = {
      {"apiserver", "subject=CN=kube-apiserver", "TLS Web Server Authentication\n", HardWayCa::kCluster},
      {"apiserver-kubelet-client", "subject=CN=kube-apiserver-kubelet-client", "TLS Web Client Authentication\n",
       HardWayCa::kCluster},
      {"apiserver-etcd-client", "subject=CN=kube-apiserver-etcd-client", "TLS Web Client Authentication\n",
       HardWayCa::kEtcd},
      {"front-proxy-client", "subject=CN=front-proxy-client", "TLS Web Client Authentication\n",
       HardWayCa::kFrontProxy},
      {"controller-manager", "subject=CN=system:kube-controller-manager", "TLS Web Client Authentication\n",
       HardWayCa::kCluster},
      {"scheduler", "subject=CN=system:kube-scheduler", "TLS Web Client Authentication\n", HardWayCa::kCluster},
      {"etcd/server-node-2", "subject=CN=node-2", "TLS Web Server Authentication, TLS Web Client Authentication\n",
       HardWayCa::kEtcd},
      {"etcd/peer-node-3", "subject=CN=node-3", "TLS Web Server Authentication, TLS Web Client Authentication\n",
       HardWayCa::kEtcd},
      {"kubelet-client-node-4", "subject=CN=system:node:node-4,O=system:nodes", "TLS Web Client Authentication\n",
       HardWayCa::kCluster},
      {"kubelet-serving-node-4", "subject=CN=system:node:node-4,O=system:nodes", "TLS Web Server Authentication\n",
       HardWayCa::kCluster},
      {"kube-proxy", "subject=CN=system:kube-proxy", "TLS Web Client Authentication\n", HardWayCa::kCluster},
  };
  for (const Want& w : wants) {
    INFO(w.name);
    const HardWayCert& c = find(certs, w.name);
    CHECK(c.ca == w.ca);
    CHECK_FALSE(c.source.empty());
    std::map<std::string, std::string> got = issued_and_read(c, cas, dir);
    CHECK_THAT(got["verify"], Contains(": OK"));
    CHECK(got["subject"] == w.subject + "\n");
    const std::string& text = got["text"];
    const size_t eku = text.find("X509v3 Extended Key Usage:");
    REQUIRE(eku != std::string::npos);
    const size_t line = text.find_first_not_of(' ', text.find('\n', eku) + 1);
    CHECK(text.substr(line, text.find('\n', line) + 1 - line) == w.eku);  // exactly these usages
    // A leaf, never a CA; lives as long as its CA (nothing renews it on a hard-way node).
    CHECK_THAT(text, Contains("CA:FALSE"));
    CHECK(pki::cert_not_after(pki::issue_cert(cas.at(c.ca), c.leaf, kNow, pki::system_random()).cert_pem) ==
          pki::cert_not_after(cas.at(c.ca).cert_pem));
  }

  // The API server answers to every name a client uses: the kubernetes Service's names and
  // ClusterIP, the VIP, each control plane's address, name and FQDN, loopback, the spec's extras.
  const std::string apiserver = issued_and_read(find(certs, "apiserver"), cas, dir)["text"];
  for (const char* san :
       {"DNS:kubernetes.default.svc.cluster.local", "DNS:kubernetes.default", "IP Address:10.96.0.1",
        "IP Address:10.0.0.254", "IP Address:10.0.0.1", "IP Address:10.0.0.3", "DNS:node-2.cluster.home",
        "IP Address:127.0.0.1", "DNS:localhost", "DNS:kubernetes.cluster.home"}) {
    CHECK_THAT(apiserver, Contains(san));
  }
  CHECK_THAT(apiserver, !Contains("IP Address:10.0.0.4"));  // a worker is no API server
  const std::string etcd = issued_and_read(find(certs, "etcd/peer-node-3"), cas, dir)["text"];
  for (const char* san : {"DNS:node-3", "DNS:node-3.cluster.home", "IP Address:10.0.0.3", "IP Address:127.0.0.1"})
    CHECK_THAT(etcd, Contains(san));
  const std::string serving = issued_and_read(find(certs, "kubelet-serving-node-4"), cas, dir)["text"];
  for (const char* san : {"DNS:node-4", "DNS:node-4.cluster.home", "IP Address:10.0.0.4"})
    CHECK_THAT(serving, Contains(san));
}

TEST_CASE("hard-way certificates: each node holds only what it runs", "[hard-way]") {
  const ClusterSpec spec = spec_of("nodes: {count: 4, control_planes: 3}\n");
  std::map<std::string, std::set<std::string>> held;  // node -> certificate names
  for (const HardWayCert& c : hard_way_certs(spec))
    for (const std::string& n : c.nodes) held[n].insert(c.name);
  // The worker: its own kubelet's two and kube-proxy's, nothing of another node or of the control plane.
  CHECK(held["node-4"] == std::set<std::string>{"kubelet-client-node-4", "kubelet-serving-node-4", "kube-proxy"});
  // A control plane: the control plane's, its own etcd member's and its own kubelet's.
  CHECK(held["node-2"] == std::set<std::string>{"apiserver", "apiserver-kubelet-client", "apiserver-etcd-client",
                                                "front-proxy-client", "controller-manager", "scheduler",
                                                "etcd/server-node-2", "etcd/peer-node-2", "kubelet-client-node-2",
                                                "kubelet-serving-node-2", "kube-proxy"});

  // One control plane: no VIP, the endpoint is node-1's address.
  const ClusterSpec one = spec_of("nodes: {count: 2}\n");
  const std::vector<HardWayCert> certs = hard_way_certs(one);
  const HardWayCert& apiserver = find(certs, "apiserver");
  CHECK(apiserver.nodes == std::vector<std::string>{"node-1"});
  CHECK(apiserver.leaf.ip_addresses == std::vector<std::string>{"10.96.0.1", "10.0.0.1", "127.0.0.1"});
  for (const HardWayCert& c : certs) {
    const bool per_node = c.name.find("node-2") != std::string::npos;
    CHECK((!per_node || c.nodes == std::vector<std::string>{"node-2"}));
  }
}
