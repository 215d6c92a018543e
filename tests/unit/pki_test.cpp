// The PKI module, checked with the independent openssl CLI (and kubectl when installed): CAs and
// leaves, the discovery hash against kubeadm's documented pipeline, tokens, kubeconfigs, the state
// dir's permissions, reuse and refusals, and which files each kind of node gets.
#include <sys/stat.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <set>

#include "pki/pki.h"
#include "pki/state.h"
#include "test_support.h"
#include "util/error.h"

using namespace pibake;
using namespace pibake::pki;
using Catch::Matchers::Contains;
using pibake::test::must_run;
using pibake::test::read_text;
using pibake::test::ScratchDir;
using pibake::test::write_text;

namespace {

constexpr std::time_t kNow = 1767225600;  // 2026-01-01T00:00:00Z
const std::string kAtTime = std::to_string(kNow + 3600);

// Repeats a fixed byte pattern: pins serial numbers and tokens.
class PatternRandom final : public RandomSource {
 public:
  explicit PatternRandom(std::vector<unsigned char> pattern) : pattern_(std::move(pattern)) {}
  void fill(unsigned char* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) out[i] = pattern_[next_++ % pattern_.size()];
  }

 private:
  std::vector<unsigned char> pattern_;
  std::size_t next_ = 0;
};

std::string text_of(const std::string& cert_path) {
  return must_run({"openssl", "x509", "-noout", "-text", "-in", cert_path});
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// A CA every test can share: RSA keygen is the slow part.
const CertKeyPair& test_ca() {
  static CertKeyPair ca = create_ca(kClusterCaName, kNow, system_random());
  return ca;
}

std::string base64_decode(const std::string& b64) { return must_run({"openssl", "base64", "-d", "-A"}, b64); }

}  // namespace

TEST_CASE("a CA is a self-signed RSA-2048 certificate valid for ten years", "[pki]") {
  ScratchDir dir;
  write_text(dir / "ca.crt", test_ca().cert_pem);
  write_text(dir / "ca.key", test_ca().key_pem);
  std::string text = text_of(dir / "ca.crt");
  CHECK_THAT(text, Contains("Subject: CN = kubernetes\n"));
  CHECK_THAT(text, Contains("Issuer: CN = kubernetes\n"));
  CHECK_THAT(text, Contains("Public-Key: (2048 bit)"));
  CHECK_THAT(text, Contains("Signature Algorithm: sha256WithRSAEncryption"));
  CHECK_THAT(text, Contains("X509v3 Basic Constraints: critical\n                CA:TRUE"));
  CHECK_THAT(text,
             Contains("X509v3 Key Usage: critical\n                Digital Signature, Certificate Sign, CRL Sign"));
  CHECK_THAT(text, Contains("X509v3 Subject Key Identifier"));
  CHECK_THAT(text, Contains("X509v3 Authority Key Identifier"));
  // kubeadm's 5-minute backdate, and caCertificateValidityPeriod 87600h = 3650 days.
  CHECK(must_run({"openssl", "x509", "-noout", "-dates", "-in", dir / "ca.crt"}) ==
        "notBefore=Dec 31 23:55:00 2025 GMT\nnotAfter=Dec 30 00:00:00 2035 GMT\n");
  CHECK_THAT(must_run({"openssl", "verify", "-attime", kAtTime, "-CAfile", dir / "ca.crt", dir / "ca.crt"}),
             Contains(": OK"));
  CHECK_THAT(must_run({"openssl", "rsa", "-check", "-noout", "-in", dir / "ca.key"}), Contains("RSA key ok"));
  CHECK(test_ca().key_pem.rfind("-----BEGIN RSA PRIVATE KEY-----\n", 0) == 0);  // PKCS#1, as kubeadm
  CHECK_NOTHROW(check_ca_pair(test_ca(), "ca"));
}

TEST_CASE("serial numbers are 128 bits from the injected random source", "[pki]") {
  ScratchDir dir;
  PatternRandom pattern(
      {0x81, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10});
  write_text(dir / "ca.crt", create_ca(kEtcdCaName, kNow, pattern).cert_pem);
  CHECK(must_run({"openssl", "x509", "-noout", "-serial", "-in", dir / "ca.crt"}) ==
        "serial=8102030405060708090A0B0C0D0E0F10\n");
  CHECK_THAT(text_of(dir / "ca.crt"), Contains("Subject: CN = etcd-ca"));

  write_text(dir / "a.crt", issue_cert(test_ca(), kubelet_client_spec("a"), kNow, system_random()).cert_pem);
  write_text(dir / "b.crt", issue_cert(test_ca(), kubelet_client_spec("a"), kNow, system_random()).cert_pem);
  CHECK(must_run({"openssl", "x509", "-noout", "-serial", "-in", dir / "a.crt"}) !=
        must_run({"openssl", "x509", "-noout", "-serial", "-in", dir / "b.crt"}));
}

TEST_CASE("a leaf verifies against its CA and carries the requested names and usages", "[pki]") {
  ScratchDir dir;
  LeafSpec spec;
  spec.common_name = "kube-apiserver";
  spec.usages = {ExtKeyUsage::kServerAuth, ExtKeyUsage::kClientAuth};
  spec.dns_names = {"kubernetes", "kubernetes.cluster.home"};
  spec.ip_addresses = {"10.96.0.1", "10.0.0.1", "fd00::1"};
  CertKeyPair leaf = issue_cert(test_ca(), spec, kNow, system_random());
  write_text(dir / "ca.crt", test_ca().cert_pem);
  write_text(dir / "leaf.crt", leaf.cert_pem);
  write_text(dir / "leaf.key", leaf.key_pem);

  CHECK_THAT(must_run({"openssl", "verify", "-attime", kAtTime, "-purpose", "sslserver", "-CAfile", dir / "ca.crt",
                       dir / "leaf.crt"}),
             Contains("leaf.crt: OK"));
  CHECK_THAT(must_run({"openssl", "verify", "-attime", kAtTime, "-purpose", "sslclient", "-CAfile", dir / "ca.crt",
                       dir / "leaf.crt"}),
             Contains("leaf.crt: OK"));
  std::string text = text_of(dir / "leaf.crt");
  CHECK_THAT(text, Contains("DNS:kubernetes, DNS:kubernetes.cluster.home, IP Address:10.96.0.1, "
                            "IP Address:10.0.0.1, IP Address:FD00:0:0:0:0:0:0:1"));
  CHECK_THAT(text, Contains("X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment"));
  CHECK_THAT(text, Contains("TLS Web Server Authentication, TLS Web Client Authentication"));
  CHECK_THAT(text, Contains("X509v3 Basic Constraints: critical\n                CA:FALSE"));
  CHECK_THAT(text, Contains("Public-Key: (2048 bit)"));
  CHECK(must_run({"openssl", "x509", "-noout", "-dates", "-in", dir / "leaf.crt"}) ==
        "notBefore=Dec 31 23:55:00 2025 GMT\nnotAfter=Jan  1 00:00:00 2027 GMT\n");  // 8760h
  CHECK_THAT(must_run({"openssl", "rsa", "-check", "-noout", "-in", dir / "leaf.key"}), Contains("RSA key ok"));

  // The same leaf does not verify against another CA.
  write_text(dir / "other.crt", create_ca(kClusterCaName, kNow, system_random()).cert_pem);
  auto r = test::run_tool({"openssl", "verify", "-attime", kAtTime, "-CAfile", dir / "other.crt", dir / "leaf.crt"});
  CHECK(r.exit_code != 0);
}

TEST_CASE("client certificates name the user in CN and the groups in O", "[pki]") {
  ScratchDir dir;
  write_text(dir / "ca.crt", test_ca().cert_pem);
  write_text(dir / "kubelet.crt", issue_cert(test_ca(), kubelet_client_spec("node-2"), kNow, system_random()).cert_pem);
  write_text(dir / "admin.crt", issue_cert(test_ca(), admin_client_spec("v1.34.2"), kNow, system_random()).cert_pem);

  std::string kubelet = text_of(dir / "kubelet.crt");
  CHECK_THAT(kubelet, Contains("Subject: O = system:nodes, CN = system:node:node-2\n"));
  CHECK_THAT(kubelet, Contains("TLS Web Client Authentication"));
  CHECK_THAT(must_run({"openssl", "verify", "-attime", kAtTime, "-purpose", "sslclient", "-CAfile", dir / "ca.crt",
                       dir / "kubelet.crt"}),
             Contains(": OK"));
  // A worker may be flashed long after the build: its kubelet certificate ends with the CA.
  CHECK(cert_not_after(read_text(dir / "kubelet.crt")) == cert_not_after(test_ca().cert_pem));
  CHECK_THAT(text_of(dir / "admin.crt"), Contains("Subject: O = kubeadm:cluster-admins, CN = kubernetes-admin\n"));

  CHECK(admin_group("v1.28.15") == "system:masters");
  CHECK(admin_group("v1.29.0") == "kubeadm:cluster-admins");
  CHECK(admin_group("v1.34.2") == "kubeadm:cluster-admins");
  CHECK(admin_group("1.30") == "kubeadm:cluster-admins");
}

TEST_CASE("leaf issuance refuses bad names and missing usages and an expired CA", "[pki]") {
  LeafSpec spec = kubelet_client_spec("node-2");
  spec.dns_names = {"bad name,DNS:evil"};
  CHECK_THROWS_WITH(issue_cert(test_ca(), spec, kNow, system_random()),
                    "certificate system:node:node-2: bad DNS name \"bad name,DNS:evil\"");
  spec = kubelet_client_spec("node-2");
  spec.ip_addresses = {"10.0.0.300"};
  CHECK_THROWS_WITH(issue_cert(test_ca(), spec, kNow, system_random()),
                    "certificate system:node:node-2: bad IP address \"10.0.0.300\"");
  spec = kubelet_client_spec("node-2");
  spec.usages.clear();
  CHECK_THROWS_WITH(issue_cert(test_ca(), spec, kNow, system_random()),
                    "certificate system:node:node-2: no extended key usage");
  CHECK_THROWS_WITH(issue_cert(test_ca(), kubelet_client_spec("n"), kNow + kCaValidity + 1, system_random()),
                    "certificate system:node:n: the CA has expired");
  CertKeyPair mismatched{test_ca().cert_pem, private_key_pem(generate_rsa_key().get())};
  CHECK_THROWS_WITH(issue_cert(mismatched, kubelet_client_spec("n"), kNow, system_random()),
                    Contains("the CA key does not match"));
}

TEST_CASE("the discovery hash equals kubeadm's documented openssl pipeline", "[pki]") {
  ScratchDir dir;
  write_text(dir / "ca.crt", test_ca().cert_pem);
  // openssl x509 -pubkey -in ca.crt | openssl rsa -pubin -outform der | openssl dgst -sha256 -hex
  write_text(dir / "pub.pem", must_run({"openssl", "x509", "-noout", "-pubkey", "-in", dir / "ca.crt"}));
  must_run({"openssl", "rsa", "-pubin", "-in", dir / "pub.pem", "-outform", "der", "-out", dir / "pub.der"});
  std::string dgst = must_run({"openssl", "dgst", "-sha256", "-hex", dir / "pub.der"});
  std::string hex = dgst.substr(dgst.rfind(' ') + 1);
  hex.erase(hex.find_last_not_of('\n') + 1);
  REQUIRE(hex.size() == 64);
  CHECK(discovery_hash(test_ca().cert_pem) == "sha256:" + hex);
}

TEST_CASE("bootstrap tokens have kubeadm's format and are uniform and unique", "[pki]") {
  const std::regex kFormat("[a-z0-9]{6}\\.[a-z0-9]{16}");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string t = generate_bootstrap_token(system_random());
    CHECK(std::regex_match(t, kFormat));
    CHECK(is_bootstrap_token(t));
    seen.insert(t);
  }
  CHECK(seen.size() == 1000);
  // Bytes 252..255 are rejected, not folded onto '0'..'3' (no modulo bias).
  PatternRandom high({0xff, 0xfc, 0xfe, 0x07});
  CHECK(generate_bootstrap_token(high) == "777777.7777777777777777");
  CHECK_FALSE(is_bootstrap_token("abcdef.0123456789abcdeF"));
  CHECK_FALSE(is_bootstrap_token("abcde.0123456789abcdef0"));
  CHECK_FALSE(is_bootstrap_token("abcdef0123456789abcdef0"));
}

TEST_CASE("kubeconfigs parse as YAML and kubectl accepts them", "[pki]") {
  ScratchDir dir;
  ScratchDir state;
  PkiState pki = load_or_create(state / "s", kNow, system_random());
  write_text(dir / "ca.crt", pki.cluster_ca.cert_pem);
  write_text(dir / "admin.kubeconfig", admin_kubeconfig(pki, "pi", "10.0.0.1", "v1.34.2", kNow, system_random()));
  auto workers = worker_files(pki, "node-3", "pi", "10.0.0.1", kNow, system_random());
  REQUIRE(workers.size() == 2);
  write_text(dir / "kubelet.conf", workers[1].content);
  // The embedded client certificate's dates, read back (what the clock floor and renewal use).
  CHECK(kubeconfig_client_cert_not_before(workers[1].content) == kNow - kBackdate);
  CHECK(kubeconfig_client_cert_not_after(workers[1].content) > kNow);
  CHECK(kubeconfig_client_cert_not_before("apiVersion: v1\nkind: Config\n") == 0);
  CHECK(kubeconfig_client_cert_not_before("users: [{user: {client-certificate-data: bm90IGEgY2VydA==}}]\n") == 0);

  struct Expect {
    std::string file, user;
  };
  for (const Expect& e :
       {Expect{"admin.kubeconfig", "kubernetes-admin"}, Expect{"kubelet.conf", "system:node:node-3"}}) {
    INFO(e.file);
    YAML::Node y = YAML::LoadFile(dir / e.file);
    CHECK(y["apiVersion"].as<std::string>() == "v1");
    CHECK(y["kind"].as<std::string>() == "Config");
    CHECK(y["clusters"][0]["name"].as<std::string>() == "pi");
    CHECK(y["clusters"][0]["cluster"]["server"].as<std::string>() == "https://10.0.0.1:6443");
    CHECK(base64_decode(y["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>()) ==
          pki.cluster_ca.cert_pem);
    CHECK(y["current-context"].as<std::string>() == e.user + "@pi");
    CHECK(y["contexts"][0]["context"]["user"].as<std::string>() == e.user);
    CHECK(y["users"][0]["name"].as<std::string>() == e.user);
    write_text(dir / "client.crt", base64_decode(y["users"][0]["user"]["client-certificate-data"].as<std::string>()));
    write_text(dir / "client.key", base64_decode(y["users"][0]["user"]["client-key-data"].as<std::string>()));
    CHECK_THAT(must_run({"openssl", "verify", "-attime", kAtTime, "-CAfile", dir / "ca.crt", dir / "client.crt"}),
               Contains(": OK"));
    CHECK_THAT(text_of(dir / "client.crt"), Contains("CN = " + e.user + "\n"));
    // The key in the file is the certificate's key.
    CHECK(must_run({"openssl", "pkey", "-pubout", "-in", dir / "client.key"}) ==
          must_run({"openssl", "x509", "-noout", "-pubkey", "-in", dir / "client.crt"}));
    if (test::tool_or_skip("kubectl", "kubernetes-client")) {
      std::string view = must_run({"kubectl", "config", "view", "--raw", "--kubeconfig", dir / e.file});
      CHECK_THAT(view, Contains("current-context: " + e.user + "@pi"));
      CHECK_THAT(view, Contains("client-key-data: "));
    }
  }
  CHECK(api_server_url("fd00::1") == "https://[fd00::1]:6443");
}

TEST_CASE("the state dir is created 0700 with 0600 keys and reused on later runs", "[pki]") {
  ScratchDir scratch;
  const std::string state = scratch / "state";
  PkiState first = load_or_create(state, kNow, system_random());
  CHECK(first.created);
  CHECK(first.dir == state + "/pki");
  CHECK(mode_of(state) == 0700);
  CHECK(mode_of(state + "/pki") == 0700);
  CHECK(mode_of(state + "/pki/etcd") == 0700);
  for (const char* key : {"ca.key", "front-proxy-ca.key", "etcd/ca.key", "sa.key", "bootstrap-token"}) {
    INFO(key);
    CHECK(mode_of(state + "/pki/" + key) == 0600);
  }
  for (const char* pub : {"ca.crt", "front-proxy-ca.crt", "etcd/ca.crt", "sa.pub"}) {
    INFO(pub);
    CHECK(mode_of(state + "/pki/" + pub) == 0644);
  }
  CHECK_FALSE(std::filesystem::exists(state + "/.pki.tmp"));
  CHECK_THAT(text_of(state + "/pki/front-proxy-ca.crt"), Contains("Subject: CN = front-proxy-ca"));
  CHECK_THAT(text_of(state + "/pki/etcd/ca.crt"), Contains("Subject: CN = etcd-ca"));
  CHECK(read_text(state + "/pki/ca.crt") == first.cluster_ca.cert_pem);
  CHECK(read_text(state + "/pki/bootstrap-token") == first.bootstrap_token + "\n");

  // sa.key/sa.pub: an RSA pair, the public key as "PUBLIC KEY".
  CHECK_THAT(must_run({"openssl", "rsa", "-check", "-noout", "-in", state + "/pki/sa.key"}), Contains("RSA key ok"));
  CHECK(must_run({"openssl", "pkey", "-pubout", "-in", state + "/pki/sa.key"}) == read_text(state + "/pki/sa.pub"));
  CHECK(first.sa_pub_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);

  PkiState second = load_or_create(state, kNow + 86400, system_random());
  CHECK_FALSE(second.created);
  CHECK(second.cluster_ca.cert_pem == first.cluster_ca.cert_pem);
  CHECK(second.cluster_ca.key_pem == first.cluster_ca.key_pem);
  CHECK(second.front_proxy_ca.cert_pem == first.front_proxy_ca.cert_pem);
  CHECK(second.etcd_ca.key_pem == first.etcd_ca.key_pem);
  CHECK(second.sa_key_pem == first.sa_key_pem);
  CHECK(second.bootstrap_token == first.bootstrap_token);
  CHECK(kubeadm_join_command(second, "10.0.0.1") == "kubeadm join 10.0.0.1:6443 --token " + first.bootstrap_token +
                                                        " --discovery-token-ca-cert-hash " +
                                                        discovery_hash(first.cluster_ca.cert_pem));
}

TEST_CASE("a state dir open to group or others or owned by someone else is refused", "[pki]") {
  ScratchDir scratch;
  const std::string state = scratch / "state";
  load_or_create(state, kNow, system_random());
  const std::string ca_before = read_text(state + "/pki/ca.crt");

  chmod(state.c_str(), 0755);
  CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()),
                    "state dir " + state +
                        " has mode 0755; it holds the cluster's CA keys and must be 0700 (run: chmod 700 " + state +
                        ")");
  chmod(state.c_str(), 0700);
  chmod((state + "/pki/etcd").c_str(), 0750);
  CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()), Contains("pki/etcd has mode 0750"));
  chmod((state + "/pki/etcd").c_str(), 0700);
  chmod((state + "/pki/ca.key").c_str(), 0640);
  CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()),
                    state + "/pki/ca.key has mode 0640; it must be 0600 (run: chmod 600 " + state + "/pki/ca.key)");
  chmod((state + "/pki/ca.key").c_str(), 0600);
  CHECK_NOTHROW(load_or_create(state, kNow, system_random()));

  if (geteuid() == 0) {
    REQUIRE(chown(state.c_str(), 65534, 65534) == 0);
    CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()), Contains("belongs to uid 65534"));
    REQUIRE(chown(state.c_str(), 0, 0) == 0);
  } else {
    WARN("not root: the foreign-owner refusal is not exercised");
  }
  CHECK(read_text(state + "/pki/ca.crt") == ca_before);
}

TEST_CASE("a partial or inconsistent PKI is refused and left untouched", "[pki]") {
  ScratchDir scratch;
  const std::string state = scratch / "state";
  PkiState pki = load_or_create(state, kNow, system_random());

  SECTION("ca.crt without ca.key") {
    std::filesystem::remove(state + "/pki/ca.key");
    CHECK_THROWS_WITH(
        load_or_create(state, kNow, system_random()),
        Contains(state + "/pki is incomplete (missing: ca.key)") && Contains("move " + state + "/pki away"));
    CHECK_FALSE(std::filesystem::exists(state + "/pki/ca.key"));
    CHECK(read_text(state + "/pki/ca.crt") == pki.cluster_ca.cert_pem);
  }
  SECTION("a hand-made pki/ holding only ca.crt") {
    ScratchDir other;
    std::filesystem::create_directories(other / "s/pki");
    chmod((other / "s").c_str(), 0700);
    chmod((other / "s/pki").c_str(), 0700);
    write_text(other / "s/pki/ca.crt", pki.cluster_ca.cert_pem);
    CHECK_THROWS_WITH(load_or_create(other / "s", kNow, system_random()),
                      Contains("missing: ca.key, front-proxy-ca.crt"));
    CHECK(std::filesystem::directory_iterator(other / "s/pki")->path().filename() == "ca.crt");
  }
  SECTION("a key that does not belong to its certificate") {
    write_text(state + "/pki/ca.key", pki.front_proxy_ca.key_pem);
    CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()),
                      state + "/pki/ca.key does not belong to " + state + "/pki/ca.crt");
  }
  SECTION("a corrupt certificate") {
    write_text(state + "/pki/etcd/ca.crt", "-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n");
    CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()),
                      Contains(state + "/pki/etcd/ca.crt: not a PEM certificate"));
  }
  SECTION("sa.pub from another key") {
    write_text(state + "/pki/sa.pub", public_key_pem(generate_rsa_key().get()));
    CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()), Contains("sa.pub is not the public key of"));
  }
  SECTION("a malformed token, which the message does not repeat") {
    write_text(state + "/pki/bootstrap-token", "SECRET.value\n");
    chmod((state + "/pki/bootstrap-token").c_str(), 0600);
    try {
      load_or_create(state, kNow, system_random());
      FAIL("no error");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Contains("bootstrap-token does not hold a token"));
      CHECK_THAT(e.what(), !Contains("SECRET"));
    }
  }
  SECTION("a symlinked key") {
    std::filesystem::rename(state + "/pki/sa.key", scratch / "sa.key");
    std::filesystem::create_symlink(scratch / "sa.key", state + "/pki/sa.key");
    CHECK_THROWS_WITH(load_or_create(state, kNow, system_random()), Contains("sa.key is a symbolic link"));
  }
}

TEST_CASE("an interrupted first run leaves no PKI behind and the next run starts over", "[pki]") {
  ScratchDir scratch;
  const std::string state = scratch / "state";
  std::filesystem::create_directories(state + "/.pki.tmp/etcd");
  chmod(state.c_str(), 0700);
  write_text(state + "/.pki.tmp/ca.crt", "half-written");
  PkiState pki = load_or_create(state, kNow, system_random());
  CHECK(pki.created);
  CHECK_FALSE(std::filesystem::exists(state + "/.pki.tmp"));
  CHECK_NOTHROW(check_ca_pair(pki.cluster_ca, "ca"));
}

TEST_CASE("node-1 gets the CAs and the SA key pair while workers get no cluster key", "[pki]") {
  ScratchDir scratch;
  PkiState pki = load_or_create(scratch / "state", kNow, system_random());

  std::vector<NodeFile> cp = control_plane_files(pki);
  std::vector<std::pair<std::string, mode_t>> got;
  for (const NodeFile& f : cp) got.emplace_back(f.path, f.mode);
  CHECK(got == std::vector<std::pair<std::string, mode_t>>{{"/etc/kubernetes/pki/ca.crt", 0644},
                                                           {"/etc/kubernetes/pki/ca.key", 0600},
                                                           {"/etc/kubernetes/pki/front-proxy-ca.crt", 0644},
                                                           {"/etc/kubernetes/pki/front-proxy-ca.key", 0600},
                                                           {"/etc/kubernetes/pki/etcd/ca.crt", 0644},
                                                           {"/etc/kubernetes/pki/etcd/ca.key", 0600},
                                                           {"/etc/kubernetes/pki/sa.key", 0600},
                                                           {"/etc/kubernetes/pki/sa.pub", 0644}});
  CHECK(cp[1].content == pki.cluster_ca.key_pem);
  CHECK(cp[6].content == pki.sa_key_pem);

  std::vector<NodeFile> worker = worker_files(pki, "node-2", "pi", "10.0.0.1", kNow, system_random());
  REQUIRE(worker.size() == 2);
  CHECK(worker[0].path == "/etc/kubernetes/pki/ca.crt");
  CHECK(worker[0].content == pki.cluster_ca.cert_pem);
  CHECK(worker[0].mode == 0644);
  CHECK(worker[1].path == "/etc/kubernetes/kubelet.conf");
  CHECK(worker[1].mode == 0600);
  for (const NodeFile& f : worker) {
    INFO(f.path);
    CHECK(f.path.find(".key") == std::string::npos);
    for (const std::string* secret :
         {&pki.cluster_ca.key_pem, &pki.front_proxy_ca.key_pem, &pki.etcd_ca.key_pem, &pki.sa_key_pem}) {
      CHECK(f.content.find(*secret) == std::string::npos);
      CHECK(f.content.find(base64_encode(*secret)) == std::string::npos);
    }
  }
  // Two workers get different keys.
  std::vector<NodeFile> other = worker_files(pki, "node-3", "pi", "10.0.0.1", kNow, system_random());
  CHECK(other[1].content != worker[1].content);
}
