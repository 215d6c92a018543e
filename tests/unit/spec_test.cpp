// Unit tests for the cluster spec (builder/spec/spec.h): defaults, loading with locations, every
// validation rule with its exact message, the init template and the to_yaml round trip.
#include "spec/spec.h"

#include <catch2/catch.hpp>
#include <functional>

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
Lines problems_of(const std::string& yaml) {
  LoadResult r = load_spec_text(yaml, "cluster.yaml");
  Lines out;
  for (const Diagnostic& d : r.problems) out.push_back(format_diagnostic(r.spec, d));
  return out;
}

// validate()'s problems after `change` to the defaults, as "field: message".
Lines problems_with(const std::function<void(ClusterSpec&)>& change) {
  ClusterSpec spec = default_spec();
  change(spec);
  Lines out;
  for (const Diagnostic& d : validate(spec)) out.push_back(format_diagnostic(spec, d));
  return out;
}

ClusterSpec load_clean(const std::string& yaml) {
  LoadResult r = load_spec_text(yaml, "cluster.yaml");
  CHECK(r.problems.empty());
  for (const Diagnostic& d : r.problems) FAIL_CHECK(format_diagnostic(r.spec, d));
  return r.spec;
}

// A spec that differs from the defaults everywhere and is valid.
ClusterSpec custom_spec() {
  ClusterSpec s;
  s.cluster = {"lab", "lab.example.org"};
  s.base_image = {"/srv/images/ubuntu-24.04.3-preinstalled-server-arm64+raspi.img",
                  std::string(64, 'a'), "https://example.org/SHA256SUMS"};
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
  s.kubernetes = {
      "v1.33.1",       "10.200.0.0/16",
      "10.32.0.0/16",  {"api.lab.example.org", "*.lab.example.org", "192.168.50.11", "fd00::1"},
      "flannel-vxlan", "mirror.local:5000/k8s"};
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

TEST_CASE("The defaults are four nodes on 10.0.0.0/24 with node-1 the control plane", "[spec]") {
  ClusterSpec s = default_spec();
  REQUIRE(s.nodes.size() == 4);
  CHECK(s.nodes[0] == NodeSpec{"node-1", "10.0.0.1", NodeRole::kControlPlane});
  CHECK(s.nodes[3] == NodeSpec{"node-4", "10.0.0.4", NodeRole::kWorker});
  CHECK(s.node_count == 4);
  CHECK_FALSE(s.nodes_listed);
  CHECK(gateway_name(s) == "node-1");
  CHECK(s.source_path.empty());
}

TEST_CASE("The defaults pass validation, with a warning about the unconfigured Wi-Fi", "[spec]") {
  CHECK(validate(default_spec()).empty());
  std::vector<Diagnostic> warnings = spec_warnings(default_spec());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].field == "network.uplink.wifi");
  CHECK(spec_warnings(custom_spec()).empty());
}

TEST_CASE("An empty cluster.yaml, or one with only comments, is the defaults", "[spec]") {
  for (const char* text : {"", "# nothing here\n", "---\n"}) {
    ClusterSpec s = load_clean(text);
    CHECK(same_settings(s, default_spec()));
    CHECK(s.source_path == "cluster.yaml");
  }
}

TEST_CASE("Loading the init template gives exactly the defaults", "[spec]") {
  ClusterSpec s = load_clean(init_template());
  CHECK(same_settings(s, default_spec()));
  CHECK(s.node_count == 4);
  CHECK_FALSE(s.nodes_listed);
}

TEST_CASE("The init template mentions every key and holds no password", "[spec]") {
  std::string t = init_template();
  for (const char* key : {"cluster:",       "name:",
                          "domain:",        "base_image:",
                          "url:",           "sha256:",
                          "sha256sums:",    "nodes:",
                          "count:",         "ip:",
                          "role:",          "network:",
                          "subnet:",        "gateway:",
                          "uplink:",        "interface:",
                          "wifi:",          "ssid:",
                          "password:",      "country:",
                          "eth1",           "dhcp_range:",
                          "dns:",           "kubernetes:",
                          "version:",       "pod_cidr:",
                          "service_cidr:",  "api_server_sans:",
                          "cni:",           "image_repository:",
                          "containerd:",    "runc:",
                          "cni_plugins:",   "access:",
                          "user:",          "ssh_authorized_keys:",
                          "password_hash:", "mirrors:"}) {
    INFO(key);
    CHECK(t.find(key) != std::string::npos);
  }
  CHECK(t.find("    password: \"...\"") == std::string::npos);  // only commented out
  CHECK(t.find("#   password: \"...\"") != std::string::npos);
  CHECK_FALSE(load_clean(t).network.uplink.wifi);
}

TEST_CASE("to_yaml of the defaults loads back to the defaults", "[spec]") {
  ClusterSpec s = load_clean(to_yaml(default_spec()));
  CHECK(same_settings(s, default_spec()));
  CHECK(s.nodes_listed);  // written as the explicit list
}

TEST_CASE("A spec that changes every key is valid and round-trips through to_yaml", "[spec]") {
  ClusterSpec custom = custom_spec();
  CHECK(problems_with([&](ClusterSpec& s) { s = custom; }) == Lines{});
  ClusterSpec s = load_clean(to_yaml(custom));
  CHECK(same_settings(s, custom));
  CHECK(s.network.uplink.wifi->ssid == "null");
  CHECK(to_yaml(s) == to_yaml(custom));
}

TEST_CASE("to_yaml quotes whatever YAML would read differently", "[spec]") {
  ClusterSpec odd = default_spec();
  odd.cluster.name = "~";
  odd.cluster.domain = "";
  odd.network.uplink.wifi = WifiSpec{" lead", "a: b # c", "'x\"y"};
  odd.network.dns = {"[a]", "x, y", "null"};
  odd.access.ssh_authorized_keys = {"- dash", "line1\nline2", "tab\there"};
  odd.mirrors = {{"https://x/{a}", "*alias"}, {"&anchor", "!tag"}};
  LoadResult r = load_spec_text(to_yaml(odd), "out.yaml");
  CHECK(same_settings(r.spec, odd));
}

TEST_CASE("Two specs differing only in where they came from have the same settings", "[spec]") {
  ClusterSpec a = default_spec();
  ClusterSpec b = default_spec();
  b.source_path = "cluster.yaml";
  b.locations["nodes"] = {3, 1};
  b.nodes_listed = true;
  CHECK(same_settings(a, b));
  b.nodes[2].ip = "10.0.0.9";
  CHECK_FALSE(same_settings(a, b));
}

// ---- Loading ----

TEST_CASE("nodes: {count: N} generates node-1..node-N in the subnet wherever it is in the file",
          "[spec]") {
  ClusterSpec s = load_clean(
      "nodes: {count: 3}\nnetwork: {subnet: 172.16.8.0/22, dhcp_range: 172.16.9.0-172.16.9.255}\n");
  REQUIRE(s.nodes.size() == 3);
  CHECK(s.nodes[2] == NodeSpec{"node-3", "172.16.8.3", NodeRole::kWorker});
  CHECK(s.nodes[0].role == NodeRole::kControlPlane);
  CHECK(s.node_count == 3);
  CHECK_FALSE(s.nodes_listed);
}

TEST_CASE("A node list gets default addresses by position and a default control plane", "[spec]") {
  ClusterSpec s = load_clean(
      "network: {subnet: 10.1.0.0/24, dhcp_range: 10.1.0.100-10.1.0.200}\n"
      "nodes:\n  - {name: alpha}\n  - {name: beta, ip: 10.1.0.20}\n  - {name: gamma}\n");
  CHECK(s.nodes_listed);
  CHECK(s.node_count == 3);
  CHECK(s.nodes == std::vector<NodeSpec>{{"alpha", "10.1.0.1", NodeRole::kControlPlane},
                                         {"beta", "10.1.0.20", NodeRole::kWorker},
                                         {"gamma", "10.1.0.3", NodeRole::kWorker}});
}

TEST_CASE("A control-plane role elsewhere in the list keeps the first node a worker", "[spec]") {
  ClusterSpec s = load_clean("nodes: [{name: a}, {name: b, role: control-plane}]\n");
  CHECK(s.nodes[0].role == NodeRole::kWorker);
  CHECK(s.nodes[1].role == NodeRole::kControlPlane);
}

TEST_CASE("Values are located by 1-based line and column under their field path", "[spec]") {
  ClusterSpec s = load_clean(
      "network:\n"
      "  subnet: 10.0.0.0/24\n"
      "  uplink:\n"
      "    interface: wlan1\n"
      "    wifi:\n"
      "      ssid: \"home net\"\n"
      "      country: GB\n"
      "  dns: [1.1.1.1, 9.9.9.9]\n"
      "nodes:\n"
      "  - name: node-1\n"
      "  - name: node-2\n"
      "    ip: 10.0.0.7\n"
      "mirrors:\n"
      "  \"https://dl.k8s.io\": /srv/k8s\n");
  CHECK(s.locations.at("network") == SourceLoc{2, 3});
  CHECK(s.locations.at("network.subnet") == SourceLoc{2, 11});
  CHECK(s.locations.at("network.uplink.wifi.ssid") == SourceLoc{6, 13});
  CHECK(s.locations.at("network.dns[1]") == SourceLoc{8, 18});
  CHECK(s.locations.at("nodes") == SourceLoc{10, 3});
  CHECK(s.locations.at("nodes[1]") == SourceLoc{11, 5});
  CHECK(s.locations.at("nodes[1].ip") == SourceLoc{12, 9});
  CHECK(s.locations.at("mirrors[\"https://dl.k8s.io\"]") == SourceLoc{14, 24});
  CHECK(s.locations.count("nodes[0].ip") == 0);  // a default has no location
}

TEST_CASE("A problem is printed at its value's line and column", "[spec]") {
  CHECK(problems_of("# cluster.yaml\n"
                    "cluster:\n"
                    "  name: pi\n"
                    "network:\n"
                    "  subnet: 10.0.0.0/24\n"
                    "nodes:\n"
                    "  - name: node-1\n"
                    "    ip: 10.0.0.1\n"
                    "    role: control-plane\n"
                    "  - name: node-2\n"
                    "    ip: 10.0.0.2\n"
                    "  - name: node-3\n"
                    "    role: worker\n"
                    "    ip: 10.0.0.300\n") ==
        Lines{"cluster.yaml:14:9: nodes[2].ip: \"10.0.0.300\" is not an IPv4 address"});
}

TEST_CASE("A problem without a location of its own points at its nearest located parent",
          "[spec]") {
  // nodes[1].ip is a default (10.0.0.2, the gateway's), located at nodes[1]'s entry.
  CHECK(problems_of("nodes:\n  - {name: a, ip: 10.0.0.2}\n  - {name: b}\n") ==
        Lines{"cluster.yaml:3:5: nodes[1].ip: \"10.0.0.2\" is also the address of nodes[0] (a)"});
}

TEST_CASE("A problem nothing in the file locates is printed with the file name only", "[spec]") {
  ClusterSpec s = default_spec();
  s.source_path = "cluster.yaml";
  CHECK(format_diagnostic(s, {"network.dns[0]", "\"x\" is not an IPv4 address"}) ==
        "cluster.yaml: network.dns[0]: \"x\" is not an IPv4 address");
  s.source_path.clear();
  CHECK(format_diagnostic(s, {"network.dns[0]", "\"x\" is not an IPv4 address"}) ==
        "network.dns[0]: \"x\" is not an IPv4 address");
}

TEST_CASE("Unknown keys are problems, with a suggestion when one is close", "[spec]") {
  CHECK(
      problems_of(
          "network:\n  subnett: 10.0.0.0/24\nclustr: {name: x}\naccess: {ssh_keys: []}\n") ==
      Lines{"cluster.yaml:2:3: network.subnett: unknown key \"subnett\" (did you mean \"subnet\"?)",
            "cluster.yaml:3:1: clustr: unknown key \"clustr\" (did you mean \"cluster\"?)",
            "cluster.yaml:4:10: access.ssh_keys: unknown key \"ssh_keys\" (expected one of: user, "
            "ssh_authorized_keys, password_hash)"});
}

TEST_CASE("A key given twice is a problem", "[spec]") {
  CHECK(problems_of("cluster:\n  name: a\n  name: b\n") ==
        Lines{"cluster.yaml:3:3: cluster.name: duplicate key \"name\""});
}

TEST_CASE("Values of the wrong type are problems and keep their defaults", "[spec]") {
  LoadResult r = load_spec_text(
      "cluster: {name: {x: 1}}\nnetwork: {dns: 8.8.8.8, subnet: [10.0.0.0/24]}\n"
      "nodes: {count: four}\nkubernetes: [v1.34.2]\naccess: {ssh_authorized_keys: [[a]]}\n",
      "cluster.yaml");
  Lines lines;
  for (const Diagnostic& d : r.problems) lines.push_back(format_diagnostic(r.spec, d));
  CHECK(lines ==
        Lines{"cluster.yaml:1:17: cluster.name: expected a string, found a map",
              "cluster.yaml:2:16: network.dns: expected a list of strings, found a string",
              "cluster.yaml:2:33: network.subnet: expected a string, found a list",
              "cluster.yaml:3:16: nodes.count: \"four\" is not a whole number",
              "cluster.yaml:4:13: kubernetes: expected a map, found a list",
              "cluster.yaml:5:32: access.ssh_authorized_keys[0]: expected a string, found a "
              "list"});
  CHECK(r.spec.cluster.name == "pi");
  CHECK(r.spec.nodes.size() == 4);
}

TEST_CASE("nodes must be a count or a list of maps", "[spec]") {
  CHECK(problems_of("nodes: 4\n") ==
        Lines{"cluster.yaml:1:8: nodes: expected {count: N} or a list of nodes, found a string"});
  // The bad entry keeps its place (nodes[1] stays the second entry) and is not checked further.
  CHECK(problems_of("nodes: [{name: a}, b, {name: c, ip: 10.0.0.3.}]\n") ==
        Lines{"cluster.yaml:1:20: nodes[1]: expected a map {name, ip, role}, found a string",
              "cluster.yaml:1:37: nodes[2].ip: \"10.0.0.3.\" is not an IPv4 address"});
  CHECK(problems_of("nodes: [{name: a, role: master}]\n") ==
        Lines{"cluster.yaml:1:25: nodes[0].role: \"master\" is not a role: use control-plane or "
              "worker"});
}

TEST_CASE("A YAML syntax error is one located problem", "[spec]") {
  CHECK(problems_of("network:\n  dns: [8.8.8.8,\n  subnet: 10.0.0.0/24\n") ==
        Lines{"cluster.yaml:4:1: YAML syntax error: end of sequence flow not found"});
  CHECK(problems_of("cluster:\n  name: a\n domain: b\n") ==
        Lines{"cluster.yaml:3:2: YAML syntax error: end of map not found"});
}

TEST_CASE("A file that is not a map of settings is one problem", "[spec]") {
  CHECK(problems_of("- a\n- b\n") ==
        Lines{"cluster.yaml:1:1: expected a map of settings (cluster, nodes, network, ...), found "
              "a list"});
}

TEST_CASE("Keys with no value keep their defaults", "[spec]") {
  ClusterSpec s = load_clean("cluster:\n  name:\nnetwork:\n  dns:\naccess:\n");
  CHECK(same_settings(s, default_spec()));
}

TEST_CASE("All problems of a file are reported at once, in file order", "[spec]") {
  CHECK(problems_of("cluster: {name: Pi}\n"
                    "network:\n"
                    "  subnet: 10.0.0.0/33\n"
                    "  dns: [8.8.8]\n"
                    "kubernetes: {version: 1.34, cni: calico}\n"
                    "runc: {version: v1.3.3}\n") ==
        Lines{"cluster.yaml:1:17: cluster.name: \"Pi\" is not a valid name (RFC 1123 label): use 1 "
              "to 63 lowercase letters, digits and '-', not starting or ending with '-'",
              "cluster.yaml:3:11: network.subnet: \"10.0.0.0/33\" is not a CIDR range like "
              "10.0.0.0/24",
              "cluster.yaml:4:9: network.dns[0]: \"8.8.8\" is not an IPv4 address",
              "cluster.yaml:5:23: kubernetes.version: \"1.34\" is not a Kubernetes release like "
              "v1.34.2",
              "cluster.yaml:5:34: kubernetes.cni: \"calico\" is not supported: use flannel-host-gw "
              "or flannel-vxlan",
              "cluster.yaml:6:17: runc.version: \"v1.3.3\" has a leading \"v\": write 1.3.3 (the "
              "release tag without the v)"});
}

TEST_CASE("A base image digest is stored in lower case", "[spec]") {
  ClusterSpec s = load_clean("base_image: {sha256: " + std::string(64, 'A') + "}\n");
  CHECK(s.base_image.sha256 == std::string(64, 'a'));
}

TEST_CASE("apply_node_count replaces a listed node list and forgets its locations", "[spec]") {
  ClusterSpec s = load_clean("nodes: [{name: a}, {name: b}]\n");
  REQUIRE(s.locations.count("nodes[1]") == 1);
  apply_node_count(s, 5);
  CHECK_FALSE(s.nodes_listed);
  CHECK(s.node_count == 5);
  CHECK(s.nodes.back() == NodeSpec{"node-5", "10.0.0.5", NodeRole::kWorker});
  CHECK(s.locations.count("nodes[1]") == 0);
}

TEST_CASE("load_spec reads a file and names it in messages; a missing file throws", "[spec]") {
  CHECK_THROWS_WITH(load_spec("/nonexistent/cluster.yaml"),
                    Catch::Contains("cannot read /nonexistent/cluster.yaml"));
}

// ---- Validation rules: each check fails when its rule is removed ----

TEST_CASE("Node addresses must be IPv4 host addresses inside the subnet", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[2].ip = "10.0.0.300"; }) ==
        Lines{"nodes[2].ip: \"10.0.0.300\" is not an IPv4 address"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip = "10.0.1.2"; }) ==
        Lines{"nodes[1].ip: \"10.0.1.2\" is outside network.subnet 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip = "10.0.0.0"; }) ==
        Lines{"nodes[1].ip: \"10.0.0.0\" is the network address of 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip = "10.0.0.255"; }) ==
        Lines{"nodes[1].ip: \"10.0.0.255\" is the broadcast address of 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip.clear(); }) ==
        Lines{"nodes[1].ip: is missing"});
}

TEST_CASE("Node names and addresses must be unique", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[3].name = "node-2"; }) ==
        Lines{"nodes[3].name: \"node-2\" is also the name of nodes[1]"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[3].ip = "10.0.0.2"; }) ==
        Lines{"nodes[3].ip: \"10.0.0.2\" is also the address of nodes[1] (node-2)"});
}

TEST_CASE("Node names must be RFC 1123 labels", "[spec]") {
  const std::string rule =
      " is not a valid host name (RFC 1123 label): use 1 to 63 lowercase letters, digits and "
      "'-', not starting or ending with '-'";
  for (const std::string& bad :
       Lines{"Node-1", "node_1", "-node", "node-", "node.1", std::string(64, 'n')}) {
    CHECK(problems_with([&](ClusterSpec& s) { s.nodes[1].name = bad; }) ==
          Lines{"nodes[1].name: \"" + bad + "\"" + rule});
  }
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].name = "1st-pi"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].name = std::string(63, 'n'); }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].name = ""; }) ==
        Lines{"nodes[1].name: is missing: every node needs a name"});
}

TEST_CASE("Exactly one node is the control plane", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[0].role = NodeRole::kWorker; }) ==
        Lines{"nodes: no node has role control-plane: exactly one is needed"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[2].role = NodeRole::kControlPlane; }) ==
        Lines{"nodes[2].role: \"node-3\" is a second control-plane node (\"node-1\" is the first): "
              "exactly one is supported, HA control planes are not supported yet"});
  // An explicit worker first node is not silently promoted.
  CHECK(problems_of("nodes: [{name: a, role: worker}, {name: b}]\n") ==
        Lines{"cluster.yaml:1:8: nodes: no node has role control-plane: exactly one is needed"});
}

TEST_CASE("The gateway must be one of the nodes", "[spec]") {
  CHECK(
      problems_with([](ClusterSpec& s) { s.network.gateway = "node-9"; }) ==
      Lines{
          "network.gateway: \"node-9\" is not one of the nodes (node-1, node-2, node-3, node-4)"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.gateway = "node-3"; }) == Lines{});
}

TEST_CASE("The node count must be between 1 and the maximum", "[spec]") {
  for (int count : {0, -1, kMaxNodes + 1}) {
    CHECK(problems_with([&](ClusterSpec& s) { apply_node_count(s, count); }) ==
          Lines{"nodes.count: " + std::to_string(count) + " is out of range: use 1 to 1000"});
  }
  CHECK(problems_of("nodes: []\n") ==
        Lines{"cluster.yaml:1:8: nodes: no nodes are listed: at least one is needed"});
}

TEST_CASE("CIDR values must parse, without host bits", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.network.subnet = "10.0.0.0/33"; }) ==
        Lines{"network.subnet: \"10.0.0.0/33\" is not a CIDR range like 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "10.244.0.0"; }) ==
        Lines{"kubernetes.pod_cidr: \"10.244.0.0\" is not a CIDR range: it needs a /prefix, like "
              "10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.96.0.1/12"; }) ==
        Lines{"kubernetes.service_cidr: \"10.96.0.1/12\" has host bits set: did you mean "
              "10.96.0.0/12?"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = ""; }) ==
        Lines{"kubernetes.service_cidr: is empty"});
}

TEST_CASE("The subnet must have a host address for every node", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.network.subnet = "10.0.0.0/30";
          s.network.dhcp_range = "10.0.0.1-10.0.0.1";
          apply_node_count(s, 4);
        }) == Lines{"network.subnet: \"10.0.0.0/30\" is too small: it has 2 host addresses and 4 "
                    "are needed (one per node)",
                    "network.dhcp_range: \"10.0.0.1-10.0.0.1\" includes the address of node-1 "
                    "(10.0.0.1)"});
  CHECK(problems_with([](ClusterSpec& s) {
          s.network.subnet = "10.0.0.0/29";
          s.network.dhcp_range = "10.0.0.5-10.0.0.6";
        }) == Lines{});
}

TEST_CASE("The subnet, pod CIDR and service CIDR must not overlap", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "10.0.0.0/16"; }) ==
        Lines{"kubernetes.pod_cidr: \"10.0.0.0/16\" overlaps network.subnet 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.0.0.0/20"; }) ==
        Lines{"kubernetes.service_cidr: \"10.0.0.0/20\" overlaps network.subnet 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.244.128.0/20"; }) ==
        Lines{"kubernetes.service_cidr: \"10.244.128.0/20\" overlaps kubernetes.pod_cidr "
              "10.244.0.0/16"});
}

TEST_CASE("The pod CIDR holds a /24 per node and the service CIDR a DNS address", "[spec]") {
  CHECK(
      problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "10.244.0.0/23"; }) ==
      Lines{"kubernetes.pod_cidr: \"10.244.0.0/23\" is too small: every node gets a /24 of it, so "
            "it has room for 2 of the 4 nodes"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "10.244.0.0/22"; }) == Lines{});
  CHECK(
      problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.96.0.0/29"; }) ==
      Lines{"kubernetes.service_cidr: \"10.96.0.0/29\" is too small: kubeadm puts the cluster DNS "
            "at its 10th address, so it must be a /28 or larger"});
}

TEST_CASE("The DHCP pool is a FIRST-LAST range of free host addresses in the subnet", "[spec]") {
  auto with_range = [](const char* range) {
    return problems_with([&](ClusterSpec& s) { s.network.dhcp_range = range; });
  };
  CHECK(with_range("10.0.0.100 - 10.0.0.200") ==
        Lines{"network.dhcp_range: \"10.0.0.100 - 10.0.0.200\" is not a range of IPv4 addresses "
              "like 10.0.0.100-10.0.0.200"});
  CHECK(with_range("10.0.0.200-10.0.0.100") ==
        Lines{"network.dhcp_range: \"10.0.0.200-10.0.0.100\" ends before it starts"});
  CHECK(with_range("10.0.0.100-10.0.1.10") ==
        Lines{"network.dhcp_range: \"10.0.0.100-10.0.1.10\" is not inside network.subnet "
              "10.0.0.0/24"});
  CHECK(with_range("10.0.0.0-10.0.0.0") ==
        Lines{"network.dhcp_range: \"10.0.0.0-10.0.0.0\" includes the network address 10.0.0.0"});
  CHECK(with_range("10.0.0.100-10.0.0.255") ==
        Lines{"network.dhcp_range: \"10.0.0.100-10.0.0.255\" includes the broadcast address "
              "10.0.0.255"});
  CHECK(with_range("10.0.0.4-10.0.0.50") ==
        Lines{"network.dhcp_range: \"10.0.0.4-10.0.0.50\" includes the address of node-4 "
              "(10.0.0.4)"});
  CHECK(with_range("10.0.0.2-10.0.0.50") ==
        Lines{"network.dhcp_range: \"10.0.0.2-10.0.0.50\" includes the addresses of 3 nodes: "
              "node-2 (10.0.0.2), node-3 (10.0.0.3), node-4 (10.0.0.4)"});
  CHECK(problems_with([](ClusterSpec& s) { apply_node_count(s, 150); }) ==
        Lines{"network.dhcp_range: \"10.0.0.100-10.0.0.200\" includes the addresses of 51 nodes: "
              "node-100 (10.0.0.100), node-101 (10.0.0.101), node-102 (10.0.0.102), ..."});
  CHECK(with_range("") ==
        Lines{"network.dhcp_range: is empty: give a pool like 10.0.0.100-10.0.0.200"});
  CHECK(with_range("10.0.0.5-10.0.0.5") == Lines{});
}

TEST_CASE("DNS servers are IPv4 addresses, at least one", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.network.dns = {"1.1.1.1", "dns.google"};
        }) == Lines{"network.dns[1]: \"dns.google\" is not an IPv4 address"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.dns.clear(); }) ==
        Lines{"network.dns: is empty: list at least one DNS server"});
}

TEST_CASE("The cluster name is a label and the domain a DNS name", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.cluster.name = "my_cluster"; }) ==
        Lines{"cluster.name: \"my_cluster\" is not a valid name (RFC 1123 label): use 1 to 63 "
              "lowercase letters, digits and '-', not starting or ending with '-'"});
  CHECK(problems_with([](ClusterSpec& s) { s.cluster.name = ""; }) ==
        Lines{"cluster.name: is empty"});
  for (const char* bad : {"cluster..home", ".home", "home.", "Cluster.Home", "a_b.home"}) {
    CHECK(problems_with([&](ClusterSpec& s) { s.cluster.domain = bad; }) ==
          Lines{std::string("cluster.domain: \"") + bad +
                "\" is not a DNS name: use dot-separated labels of lowercase letters, digits and "
                "'-'"});
  }
  CHECK(problems_with([](ClusterSpec& s) { s.cluster.domain = "home"; }) == Lines{});
}

TEST_CASE("The uplink is a named interface other than eth0", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.network.uplink.interface = "eth0"; }) ==
        Lines{"network.uplink.interface: \"eth0\" is the cluster network: the uplink must be "
              "another interface (wlan0, eth1, ...)"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.uplink.interface = ""; }) ==
        Lines{"network.uplink.interface: is empty"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.uplink.interface = "usb eth"; }) ==
        Lines{"network.uplink.interface: \"usb eth\" is not a network interface name"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.uplink.interface = "enx0123456789abcd"; }) ==
        Lines{"network.uplink.interface: \"enx0123456789abcd\" is not a network interface name"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.uplink.interface = "eth1"; }) == Lines{});
}

TEST_CASE("A Wi-Fi uplink needs an SSID, a country code and a WPA passphrase or none", "[spec]") {
  auto with_wifi = [](WifiSpec wifi) {
    return problems_with([&](ClusterSpec& s) { s.network.uplink.wifi = wifi; });
  };
  CHECK(with_wifi({"home", "correct horse", "GB"}) == Lines{});
  CHECK(with_wifi({"cafe", "", "FR"}) == Lines{});  // an open network
  CHECK(
      with_wifi({"", "correct horse", ""}) ==
      Lines{"network.uplink.wifi.ssid: is missing: the Wi-Fi uplink wlan0 needs the network's "
            "name",
            "network.uplink.wifi.country: is missing: Wi-Fi needs the regulatory domain's country "
            "code, like GB"});
  CHECK(with_wifi({std::string(33, 's'), "correct horse", "GB"}) ==
        Lines{"network.uplink.wifi.ssid: \"" + std::string(33, 's') +
              "\" is 33 bytes long: an SSID has at most 32"});
  CHECK(with_wifi({"home", "correct horse", "gb"}) ==
        Lines{"network.uplink.wifi.country: \"gb\" is not a country code: use two upper-case "
              "letters (ISO 3166-1 alpha-2), like GB"});
  CHECK(with_wifi({"home", "secret", "GB"}) ==
        Lines{"network.uplink.wifi.password: has 6 characters: a WPA passphrase has 8 to 63 (leave "
              "it empty for an open network)"});
  CHECK(
      with_wifi({"home", std::string(64, 'p'), "GB"}) ==
      Lines{"network.uplink.wifi.password: has 64 characters: a WPA passphrase has 8 to 63 (leave "
            "it empty for an open network)"});
}

TEST_CASE("Wi-Fi settings on a wired uplink are a problem", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.network.uplink = {"eth1", WifiSpec{"home", "correct horse", "GB"}};
        }) ==
        Lines{"network.uplink.wifi: is set, but \"eth1\" is not a Wi-Fi interface (their names "
              "start with \"wl\")"});
}

TEST_CASE("Versions are vX.Y.Z for Kubernetes and X.Y.Z for the other components", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.version = "1.34.2"; }) ==
        Lines{"kubernetes.version: \"1.34.2\" is not a Kubernetes version: it needs the leading v "
              "(v1.34.2)"});
  for (const char* bad : {"v1.34", "v1.34.2-rc.1", "latest", "v1.34.x", ""}) {
    CHECK(problems_with([&](ClusterSpec& s) { s.kubernetes.version = bad; }) ==
          Lines{std::string("kubernetes.version: \"") + bad +
                "\" is not a Kubernetes release like v1.34.2"});
  }
  CHECK(problems_with([](ClusterSpec& s) { s.containerd.version = "v2.1.5"; }) ==
        Lines{"containerd.version: \"v2.1.5\" has a leading \"v\": write 2.1.5 (the release tag "
              "without the v)"});
  CHECK(problems_with([](ClusterSpec& s) { s.runc.version = "1.3"; }) ==
        Lines{"runc.version: \"1.3\" is not a version like 1.2.3"});
  CHECK(problems_with([](ClusterSpec& s) { s.cni_plugins.version = "1.8.0.1"; }) ==
        Lines{"cni_plugins.version: \"1.8.0.1\" is not a version like 1.2.3"});
}

TEST_CASE("The CNI is one pibake supports", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.cni = "calico"; }) ==
        Lines{"kubernetes.cni: \"calico\" is not supported: use flannel-host-gw or flannel-vxlan"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.cni = "flannel-vxlan"; }) == Lines{});
}

TEST_CASE("API server SANs are DNS names or IP addresses", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.kubernetes.api_server_sans = {"k8s.home", "*.home",   "10.0.0.1",
                                          "fd00::1",  "bad_name", "https://k8s.home"};
        }) == Lines{"kubernetes.api_server_sans[4]: \"bad_name\" is neither a DNS name nor an IP "
                    "address",
                    "kubernetes.api_server_sans[5]: \"https://k8s.home\" is neither a DNS name nor "
                    "an IP address"});
}

TEST_CASE("The image repository is a registry path without a scheme", "[spec]") {
  CHECK(problems_with(
            [](ClusterSpec& s) { s.kubernetes.image_repository = "https://registry.k8s.io"; }) ==
        Lines{"kubernetes.image_repository: \"https://registry.k8s.io\" must not include a scheme: "
              "write registry.k8s.io"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = ""; }) ==
        Lines{"kubernetes.image_repository: is empty"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = "registry.k8s.io/"; }) ==
        Lines{"kubernetes.image_repository: \"registry.k8s.io/\" is not an image repository like "
              "registry.k8s.io"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = "mirror:5000/k8s"; }) ==
        Lines{});
}

TEST_CASE("The login user is an ordinary Linux user name", "[spec]") {
  CHECK(
      problems_with([](ClusterSpec& s) { s.access.user = "Admin"; }) ==
      Lines{"access.user: \"Admin\" is not a valid Linux user name: use lowercase letters, digits, "
            "'_' and '-', starting with a letter or '_', at most 32 characters"});
  CHECK(problems_with([](ClusterSpec& s) { s.access.user = "root"; }) ==
        Lines{"access.user: \"root\" cannot be the login user: name an ordinary user"});
  CHECK(problems_with([](ClusterSpec& s) { s.access.user = ""; }) ==
        Lines{"access.user: is empty"});
  CHECK(problems_with([](ClusterSpec& s) { s.access.user = "_svc-pi2"; }) == Lines{});
}

TEST_CASE("SSH keys are public key lines of a known type", "[spec]") {
  auto with_key = [](std::string key) {
    return problems_with([&](ClusterSpec& s) { s.access.ssh_authorized_keys = {key}; });
  };
  CHECK(with_key(kEd25519Key) == Lines{});
  CHECK(with_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP me") ==
        Lines{"access.ssh_authorized_keys[0]: \"ssh-dss AAAAB3NzaC1kc3MAAACBAP me\" is not an SSH "
              "public key: unknown key type \"ssh-dss\" (expected one of: ssh-ed25519, ssh-rsa, "
              "ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, "
              "sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com)"});
  CHECK(with_key("ssh-ed25519") ==
        Lines{"access.ssh_authorized_keys[0]: \"ssh-ed25519\" is not an SSH public key: no key "
              "data after the type"});
  CHECK(with_key("ssh-ed25519 not-base64! me") ==
        Lines{"access.ssh_authorized_keys[0]: \"ssh-ed25519 not-base64! me\" is not an SSH public "
              "key: the key data is not base64"});
  // The ed25519 key's data under the rsa type: a copy-paste slip sshd would reject silently.
  std::string swapped = "ssh-rsa" + std::string(kEd25519Key).substr(11);
  CHECK(with_key(swapped) ==
        Lines{"access.ssh_authorized_keys[0]: \"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDv9cpKm\"... is "
              "not an SSH public key: the key data is a \"ssh-ed25519\" key, not \"ssh-rsa\""});
  CHECK(with_key("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n") ==
        Lines{"access.ssh_authorized_keys[0]: is a private key: give the public key (the .pub "
              "file) and keep the private key secret"});
  CHECK(with_key(std::string(kEd25519Key) + "\n" + kRsaKey) ==
        Lines{"access.ssh_authorized_keys[0]: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDv9\"... is "
              "not an SSH public key: it spans several lines: give one key per list item"});
  CHECK(with_key("") == Lines{"access.ssh_authorized_keys[0]: is empty"});
}

TEST_CASE("The password hash is a crypt(3) hash and a plaintext password is never echoed",
          "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.access.password_hash = kHash; }) == Lines{});
  Lines plaintext = problems_with([](ClusterSpec& s) { s.access.password_hash = "hunter22"; });
  CHECK(plaintext ==
        Lines{"access.password_hash: is not a crypt(3) hash (it must start with \"$\", "
              "like the output of \"mkpasswd -m sha-512\"): never put a plaintext "
              "password in the spec"});
  CHECK(plaintext[0].find("hunter22") == std::string::npos);
  CHECK(problems_with([](ClusterSpec& s) { s.access.password_hash = "$6$only-salt"; }) ==
        Lines{"access.password_hash: is not a crypt(3) hash of the form $id$salt$hash (like the "
              "output of \"mkpasswd -m sha-512\")"});
}

TEST_CASE("The base image is an https URL or a path to an .img or .img.xz", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url = "ubuntu.img"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url = "file:///srv/ubuntu.img.xz"; }) ==
        Lines{});
  CHECK(problems_with(
            [](ClusterSpec& s) { s.base_image.url = "http://example.org/ubuntu.img.xz"; }) ==
        Lines{"base_image.url: \"http://example.org/ubuntu.img.xz\" is not an https:// URL or a "
              "local path: downloads must use TLS (a mirror may point elsewhere)"});
  CHECK(
      problems_with([](ClusterSpec& s) { s.base_image.url = "https://example.org/ubuntu.iso"; }) ==
      Lines{"base_image.url: \"https://example.org/ubuntu.iso\" is not an .img or .img.xz file"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url.clear(); }) ==
        Lines{"base_image.url: is empty: give the Ubuntu image's URL or a local path"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.sha256sums = "ftp://example.org/SUMS"; }) ==
        Lines{"base_image.sha256sums: \"ftp://example.org/SUMS\" is not an https:// URL or a local "
              "path: downloads must use TLS (a mirror may point elsewhere)"});
}

TEST_CASE("The base image digest is 64 hexadecimal digits", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.sha256 = std::string(63, 'f'); }) ==
        Lines{"base_image.sha256: \"" + std::string(63, 'f') +
              "\" is not a SHA-256 digest (64 hexadecimal digits)"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.sha256 = std::string(64, 'g'); }) ==
        Lines{"base_image.sha256: \"" + std::string(64, 'g') +
              "\" is not a SHA-256 digest (64 hexadecimal digits)"});
}

TEST_CASE("Mirrors map http(s) URL prefixes to URLs or absolute paths", "[spec]") {
  auto with_mirror = [](const char* prefix, const char* replacement) {
    return problems_with([&](ClusterSpec& s) { s.mirrors = {{prefix, replacement}}; });
  };
  CHECK(with_mirror("https://dl.k8s.io", "http://127.0.0.1:8080/dl.k8s.io") == Lines{});
  CHECK(with_mirror("http://archive.ubuntu.com", "/srv/ubuntu") == Lines{});
  CHECK(with_mirror("https://github.com", "file:///srv/github") == Lines{});
  CHECK(with_mirror("ftp://example.org", "/srv") ==
        Lines{"mirrors[\"ftp://example.org\"]: \"ftp://example.org\" is not an http:// or https:// "
              "URL prefix"});
  CHECK(with_mirror("https://", "/srv") ==
        Lines{"mirrors[\"https://\"]: \"https://\" is not an http:// or https:// URL prefix"});
  CHECK(with_mirror("", "/srv") == Lines{"mirrors[\"\"]: the URL prefix is empty"});
  CHECK(with_mirror("https://dl.k8s.io", "") ==
        Lines{"mirrors[\"https://dl.k8s.io\"]: the replacement is empty"});
  CHECK(with_mirror("https://dl.k8s.io", "mirror/dl.k8s.io") ==
        Lines{"mirrors[\"https://dl.k8s.io\"]: \"mirror/dl.k8s.io\" is not a URL (http://, "
              "https://, file:///) or an absolute path"});
}

TEST_CASE("A mirrors problem is located at its entry, whatever its prefix holds", "[spec]") {
  CHECK(problems_of("mirrors:\n  \"https://a.b/[x].\\\"y\": \"\"\n") ==
        Lines{"cluster.yaml:2:26: mirrors[\"https://a.b/[x].\\\"y\"]: the replacement is empty"});
}

}  // namespace
}  // namespace pibake
