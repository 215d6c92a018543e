// Helpers shared by the spec unit tests: test keys, and problems_of/problems_with.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "spec/spec.h"

namespace pibake {
namespace {
using Lines = std::vector<std::string>;

// Public keys made with ssh-keygen for these tests; no private key exists for them anywhere.
const char* const kEd25519Key =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDv9cpKmuW8uU/xpDuVUU9kqQekxlHd7uGl4fYQauyK4 me@laptop";
const char* const kRsaKey =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCqb1sqXkFLg0/QcJyPQGTngYw9mPpBQbkJeS5wMIpbd/23ObrWBKAjTn"
    "odTd99qBTS6Ow/xS1761o4IG9Vo5uAMRw2Qp338S25TA8twwf+Z71eB3YjYBrxRjteygDp5IMK+KNUdWtcLJTX7IXchfVL"
    "LvCAjHuXKtpFuKc54wecZQ== rsa@x";
const char* const kEcdsaKey =
    "ecdsa-sha2-nistp256 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA5qTyH9gdrrj85ygHMlpGW9"
    "tHFun6Nbz13HOQNzXPMomsGk4i+/ugbxokTE30KvCzixOXd0rQc5GINqOURHRwY=";
// openssl passwd -6 -salt pibakesalt notapassword
const char* const kHash =
    "$6$pibakesalt$iKgIiRRMAL5AcAvWD0XJBHwGF/"
    "k9JEXFIRsVAugPSjbxdQXjFolKlainr6Um7AkRkBT00X2Rz5WWtHS9e6rPS1";

// Every problem of a cluster.yaml, formatted as the CLI prints them.
inline Lines problems_of(const std::string& yaml) {
  LoadResult r = load_spec_text(yaml, "cluster.yaml");
  Lines out;
  for (const Diagnostic& d : r.problems) out.push_back(format_diagnostic(r.spec, d));
  return out;
}

// validate()'s problems after `change` to the defaults, as "field: message".
inline Lines problems_with(const std::function<void(ClusterSpec&)>& change) {
  ClusterSpec spec = default_spec();
  change(spec);
  Lines out;
  for (const Diagnostic& d : validate(spec)) out.push_back(format_diagnostic(spec, d));
  return out;
}

inline ClusterSpec load_clean(const std::string& yaml) {
  LoadResult r = load_spec_text(yaml, "cluster.yaml");
  CHECK(r.problems.empty());
  for (const Diagnostic& d : r.problems) FAIL_CHECK(format_diagnostic(r.spec, d));
  return r.spec;
}

// A spec that differs from the defaults everywhere and is valid.
inline ClusterSpec custom_spec() {
  ClusterSpec s;
  s.cluster = {"lab", "lab.example.org"};
  s.base_image = {"/srv/images/ubuntu-24.04.3-preinstalled-server-arm64+raspi.img", std::string(64, 'a'),
                  "https://example.org/SHA256SUMS"};
  s.nodes_listed = true;
  s.nodes = {{"edge", "192.168.50.10", NodeRole::kWorker},
             {"brain", "192.168.50.11", NodeRole::kControlPlane},
             {"muscle", "192.168.50.12", NodeRole::kWorker}};
  s.node_count = 3;
  s.network.subnet = "192.168.50.0/24";
  s.network.gateway = "edge";
  s.network.uplink = {"wlan1", WifiSpec{"null", "p@ss: #word!", "DE"}};
  s.network.dhcp_range = "192.168.50.200-192.168.50.250";
  s.network.dns = {"1.1.1.1"};
  s.kubernetes = {"v1.35.9",       "10.200.0.0/16",
                  "10.32.0.0/16",  {"api.lab.example.org", "*.lab.example.org", "192.168.50.11", "fd00::1"},
                  "flannel-vxlan", "mirror.local:5000/k8s"};
  s.kubernetes.api_vip = "192.168.50.5";
  s.containerd = {"1.7.28"};
  s.runc = {"1.2.6"};
  s.cni_plugins = {"1.7.1"};
  s.access = {"pi", {kEd25519Key, kRsaKey, kEcdsaKey}, kHash};
  s.mirrors = {{"https://dl.k8s.io", "http://127.0.0.1:8080/dl.k8s.io"},
               {"https://github.com", "/srv/mirror/github.com"},
               {"https://cdimage.ubuntu.com", "file:///srv/cdimage"}};
  return s;
}

// ---- Defaults, template, round trip ----

}  // namespace
}  // namespace pibake
