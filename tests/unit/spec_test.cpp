// Unit tests for the cluster spec (builder/spec/spec.h): defaults, loading with locations, the
// init template and the to_yaml round trip. Validation rules: spec_validate_test.cpp.
#include "spec_test_support.h"
#include "test_support.h"

namespace pibake {
namespace {
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
                          "count:",         "control_planes:",
                          "api_vip:",       "ip:",
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

TEST_CASE("nodes: {count: N} generates node-1..node-N in the subnet wherever it is in the file", "[spec]") {
  ClusterSpec s =
      load_clean("nodes: {count: 3}\nnetwork: {subnet: 172.16.8.0/22, dhcp_range: 172.16.9.0-172.16.9.255}\n");
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

TEST_CASE("A problem without a location of its own points at its nearest located parent", "[spec]") {
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
  CHECK(problems_of("network:\n  subnett: 10.0.0.0/24\nclustr: {name: x}\naccess: {ssh_keys: []}\n") ==
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
  CHECK(lines == Lines{"cluster.yaml:1:17: cluster.name: expected a string, found a map",
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
              "v1.37.1, nor a channel (stable, stable-1.37)",
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

TEST_CASE("load_spec reads a file and names it in messages, and a missing file throws", "[spec]") {
  test::ScratchDir dir;
  const std::string path = dir / "my-cluster.yaml";
  test::write_text(path, "cluster: {name: lab}\nnodes:\n  count: many\n");
  LoadResult r = load_spec(path);
  CHECK(r.spec.source_path == path);
  CHECK(r.spec.cluster.name == "lab");
  REQUIRE(r.problems.size() == 1);
  // Located at the value: line 3, column 10, under the file's own name.
  CHECK_THAT(format_diagnostic(r.spec, r.problems[0]), Catch::StartsWith(path + ":3:10: nodes.count: "));
  CHECK_THROWS_WITH(load_spec("/nonexistent/cluster.yaml"), Catch::Contains("cannot read /nonexistent/cluster.yaml"));
}

// ---- Validation rules: each check fails when its rule is removed ----

}  // namespace
}  // namespace pibake
