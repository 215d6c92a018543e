// The files a hard-way node runs from (issue 14; plan/hard_way.h, overlays/hard-way,
// overlays/hard-way-control-plane; docs/hard-way.md): each node's pod range and routes, every unit's
// command line against the flags its component documents for the pinned versions (a table here,
// from the reference pages: checked only against documentation), every credential path against the
// files pibake writes, and every configuration read back by a parser (yaml-cpp, nlohmann's JSON).
#include "plan/hard_way.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "hard_way_flags.h"
#include "plan/hard_way_pki.h"
#include "plan/images.h"
#include "plan/template.h"
#include "spec/net.h"
#include "spec/spec.h"
#include "util/error.h"
#include "util/resources.h"

using namespace pibake;
using Catch::Matchers::Contains;
using pibake::test::Component;
using pibake::test::kComponents;
using pibake::test::words;

namespace {

using Files = std::map<std::string, std::string>;  // path on the node -> content
using Flags = std::map<std::string, std::string>;  // "--name" -> value

constexpr const char* kHardWay = "overlays/hard-way";
constexpr const char* kControlPlane = "overlays/hard-way-control-plane";

ClusterSpec spec_of(const std::string& yaml) {
  LoadResult r = load_spec_text(yaml, "cluster.yaml");
  for (const Diagnostic& d : r.problems) FAIL_CHECK(format_diagnostic(r.spec, d));
  REQUIRE(r.problems.empty());
  return r.spec;
}

// The variables node_vars() (plan.cpp) gives that the hard way's templates and the netplan
// templates use, computed the same way, plus hard_way_vars(). A template naming any other variable
// fails to render here, so the list in docs/hard-way.md stays complete.
TemplateVars vars_for(const ClusterSpec& spec, int number) {
  const NodeSpec& node = spec.nodes.at(number - 1);
  const Cidr subnet = *Cidr::parse(spec.network.subnet);
  TemplateVars v;
  v["hostname"] = node.name;
  v["fqdn"] = node.name + "." + spec.cluster.domain;
  v["domain"] = spec.cluster.domain;
  v["cluster_name"] = spec.cluster.name;
  v["node_ip"] = node.ip;
  v["node_cidr"] = node.ip + "/" + std::to_string(subnet.prefix);
  v["gateway_ip"] = find_node(spec, gateway_name(spec))->ip;
  v["dns_servers"] = "8.8.8.8, 8.8.4.4";
  v["uplink_block"] = "    eth1:\n      dhcp4: true\n      optional: true\n";
  v["kubernetes_version"] = spec.kubernetes.version;
  v["image_repository"] = spec.kubernetes.image_repository;
  v["pod_cidr"] = spec.kubernetes.pod_cidr;
  v["service_cidr"] = spec.kubernetes.service_cidr;
  v["cluster_dns"] = Cidr::parse(spec.kubernetes.service_cidr)->at(10).str();
  v["api_server"] = "https://" + api_endpoint_address(spec) + ":6443";
  v["coredns_image"] = coredns_image(spec);
  for (auto& [name, value] : hard_way_vars(spec, node)) v[name] = value;
  return v;
}

// Every file of `tree` rendered for node `number`, by its path on the node ("*.tmpl" loses the
// suffix, as add_tree() in plan.cpp does); the _manifest's text under "_manifest".
Files render_tree(const std::string& tree, const ClusterSpec& spec, int number) {
  const TemplateVars vars = vars_for(spec, number);
  Files out;
  for (const Resource* r : resources_under(tree + "/")) {
    std::string path(r->path + tree.size());
    std::string_view body(r->data, r->size);
    if (path == "/_manifest") {
      out["_manifest"] = std::string(body);
    } else if (path.ends_with(".tmpl")) {
      path.resize(path.size() - 5);
      out[path] = render_template(body, vars, r->path);
    } else {
      out[path] = std::string(body);
    }
  }
  return out;
}

Files node_files(const ClusterSpec& spec, int number, bool control_plane) {
  Files files = render_tree(kHardWay, spec, number);
  files.erase("_manifest");
  if (control_plane) {
    Files cp = render_tree(kControlPlane, spec, number);
    cp.erase("_manifest");
    files.insert(cp.begin(), cp.end());
  }
  return files;
}

// A unit's last non-empty ExecStart= (a drop-in first clears the unit's with an empty one),
// continuation lines joined, split on spaces: the program, then each "--name=value".
std::pair<std::string, Flags> exec_start(const std::string& unit) {
  std::istringstream in(unit);
  std::string line, logical, command;
  while (std::getline(in, line)) {
    if (!logical.empty() || (!line.empty() && line[0] != '#')) logical += line;
    if (!logical.empty() && logical.back() == '\\') {
      logical.pop_back();
      logical += ' ';
      continue;
    }
    if (logical.starts_with("ExecStart=") && logical.size() > 10) command = logical.substr(10);
    logical.clear();
  }
  std::istringstream words(command);
  std::string program, word;
  words >> program;
  Flags flags;
  while (words >> word) {
    INFO(word);
    REQUIRE(word.starts_with("--"));
    const auto eq = word.find('=');
    REQUIRE(eq != std::string::npos);  // always --name=value: no value is taken for a flag's
    CHECK(flags.count(word.substr(0, eq)) == 0);
    flags[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return {program, flags};
}

// The credential and configuration paths the hard way's other half writes (issue 14's brief), for
// node `host`: the only paths under /etc/kubernetes a hard-way file may name besides its own trees'.
std::set<std::string> credential_paths(const std::string& host) {
  std::set<std::string> out;
  const std::string pki = "/etc/kubernetes/pki/";
  for (const char* f : {"ca.crt", "ca.key", "front-proxy-ca.crt", "etcd/ca.crt", "sa.key", "sa.pub"})
    out.insert(pki + f);
  for (const std::string& stem :
       {std::string("apiserver"), std::string("apiserver-kubelet-client"), std::string("apiserver-etcd-client"),
        std::string("front-proxy-client"), "etcd/server-" + host, "etcd/peer-" + host, "kubelet-client-" + host,
        "kubelet-serving-" + host, std::string("kube-proxy")}) {
    out.insert(pki + stem + ".crt");
    out.insert(pki + stem + ".key");
  }
  for (const char* f : {"admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf", "kube-proxy.conf",
                        "encryption-config.yaml"})
    out.insert(std::string("/etc/kubernetes/") + f);
  return out;
}

// Every absolute path under /etc/kubernetes or /var/lib on a line that is not a comment.
std::set<std::string> named_paths(const std::string& text) {
  static const std::regex path(R"((/etc/kubernetes|/var/lib)(/[A-Za-z0-9._-]+)*)");
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(' ') != std::string::npos && line[line.find_first_not_of(' ')] == '#') continue;
    if (line.find("\"comment\":") != std::string::npos) continue;  // the JSON files' header
    for (auto it = std::sregex_iterator(line.begin(), line.end(), path); it != std::sregex_iterator(); ++it)
      out.insert(it->str());
  }
  return out;
}

std::vector<YAML::Node> yaml_docs(const std::string& text) { return YAML::LoadAll(text); }

}  // namespace

// ---- Pod ranges and routes ----

TEST_CASE("a node's pod range is the /24 its address numbers", "[hard-way-files]") {
  ClusterSpec spec = default_spec();
  CHECK(node_pod_cidr(spec, spec.nodes[0]) == "10.244.1.0/24");
  CHECK(node_pod_cidr(spec, spec.nodes[1]) == "10.244.2.0/24");
  CHECK(node_pod_cidr(spec, spec.nodes[3]) == "10.244.4.0/24");
  NodeSpec far{"far", "10.0.0.254", NodeRole::kWorker};
  CHECK(node_pod_cidr(spec, far) == "10.244.254.0/24");
  spec.kubernetes.pod_cidr = "172.16.8.0/21";
  CHECK(node_pod_cidr(spec, spec.nodes[2]) == "172.16.11.0/24");
  spec = spec_of("nodes: [{name: a, ip: 10.0.0.7, role: control-plane}, {name: b, ip: 10.0.0.3}]\n"
                 "kubernetes: {pod_cidr: 10.200.0.0/20}\n");
  CHECK(node_pod_cidr(spec, spec.nodes[0]) == "10.200.7.0/24");
  CHECK(node_pod_cidr(spec, spec.nodes[1]) == "10.200.3.0/24");
}

TEST_CASE("every node's pod range lies in the pod CIDR and no two overlap", "[hard-way-files]") {
  ClusterSpec spec = spec_of(
      "nodes: {count: 40}\nnetwork: {dhcp_range: 10.0.0.100-10.0.0.200}\n"
      "kubernetes: {pod_cidr: 10.96.0.0/16, service_cidr: 10.32.0.0/16}\n");
  const Cidr pods = *Cidr::parse(spec.kubernetes.pod_cidr);
  std::vector<Cidr> ranges;
  for (const NodeSpec& n : spec.nodes) {
    const std::optional<Cidr> r = Cidr::parse(node_pod_cidr(spec, n));
    REQUIRE(r);
    CHECK(r->prefix == 24);
    CHECK(pods.contains(r->base));
    CHECK(pods.contains(r->broadcast()));
    for (const Cidr& other : ranges) CHECK_FALSE(r->overlaps(other));
    ranges.push_back(*r);
  }
  CHECK(ranges.size() == 40);
}

TEST_CASE("a pod CIDR that does not parse or is narrower than /24 or too small is an error", "[hard-way-files]") {
  ClusterSpec spec = default_spec();
  spec.kubernetes.pod_cidr = "10.244.0.0/25";
  CHECK_THROWS_WITH(node_pod_cidr(spec, spec.nodes[0]), Contains("narrower than /24"));
  spec.kubernetes.pod_cidr = "10.244.0.0/22";
  CHECK(node_pod_cidr(spec, spec.nodes[2]) == "10.244.3.0/24");
  CHECK_THROWS_WITH(node_pod_cidr(spec, spec.nodes[3]),
                    "kubernetes.pod_cidr 10.244.0.0/22 holds 4 /24 ranges, none for node-4 (10.0.0.4 in 10.0.0.0/24)");
  spec.kubernetes.pod_cidr = "10.244.0.0/24";
  CHECK_THROWS_WITH(node_pod_cidr(spec, spec.nodes[0]), Contains("holds 1 /24 range,"));
  spec.kubernetes.pod_cidr = "10.244.0.1/16";  // host bits set
  CHECK_THROWS_WITH(node_pod_cidr(spec, spec.nodes[0]), Contains("is not an IPv4 CIDR range"));
  CHECK_THROWS_AS(hard_way_vars(spec, spec.nodes[0]), Error);
}

TEST_CASE("a node routes every other node's pod range via that node and never its own", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();  // node-1 (the gateway) .. node-4
  for (int k = 1; k <= 4; ++k) {
    INFO("node-" << k);
    const bool gateway = k == 1;
    const std::string netplan = gateway ? "netplan/gateway/boot/firmware/network-config.tmpl"
                                        : "netplan/non-gateway/boot/firmware/network-config.tmpl";
    TemplateVars vars = vars_for(spec, k);
    const std::string hard = render_template(resource(netplan), vars, netplan);
    const YAML::Node routes = YAML::Load(hard)["network"]["ethernets"]["eth0"]["routes"];
    REQUIRE(routes.IsSequence());
    std::map<std::string, std::string> via;
    for (const YAML::Node& r : routes) via[r["to"].as<std::string>()] = r["via"].as<std::string>();
    CHECK(via.size() == routes.size());
    CHECK(via.size() == (gateway ? 3u : 4u));  // the others' ranges, and the default route off the gateway
    if (!gateway) CHECK(via["default"] == "10.0.0.1");
    for (int j = 1; j <= 4; ++j) {
      const std::string range = "10.244." + std::to_string(j) + ".0/24";
      if (j == k) {
        CHECK(via.count(range) == 0);
      } else {
        CHECK(via[range] == "10.0.0." + std::to_string(j));
      }
    }
    // kubeadm mode renders {{pod_routes}} empty: the file is the hard-way one without the routes.
    vars["pod_routes"] = "";
    const std::string kubeadm = render_template(resource(netplan), vars, netplan);
    const std::string routes_text = pod_routes_netplan(spec, spec.nodes[k - 1]);
    CHECK(routes_text == hard_way_vars(spec, spec.nodes[k - 1]).at("pod_routes"));
    const std::string anchor = gateway ? "      addresses: [10.0.0.1/24]" : "          via: 10.0.0.1";
    const auto at = kubeadm.find(anchor);
    REQUIRE(at != std::string::npos);
    CHECK(kubeadm.substr(0, at + anchor.size()) + routes_text + kubeadm.substr(at + anchor.size()) == hard);
    CHECK((kubeadm.find("routes:") == std::string::npos) == gateway);
  }
}

TEST_CASE("a cluster of one node has no pod routes", "[hard-way-files]") {
  ClusterSpec spec = spec_of("nodes: {count: 1}\n");
  CHECK(pod_routes_netplan(spec, spec.nodes[0]).empty());
  CHECK(hard_way_vars(spec, spec.nodes[0]).at("node_pod_cidr") == "10.244.1.0/24");
}

TEST_CASE("the hard way's variables name the control planes and the service addresses", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();
  TemplateVars v = hard_way_vars(spec, spec.nodes[2]);
  CHECK(v.at("node_pod_cidr") == "10.244.3.0/24");
  CHECK(v.at("etcd_initial_cluster") == "node-1=https://10.0.0.1:2380");
  ClusterSpec three = spec_of("nodes: {count: 5, control_planes: 3}\nkubernetes: {image_repository: mirror.lan/k8s}\n");
  v = hard_way_vars(three, three.nodes[4]);
  CHECK(v.at("etcd_initial_cluster") ==
        "node-1=https://10.0.0.1:2380,node-2=https://10.0.0.2:2380,node-3=https://10.0.0.3:2380");
}

// ---- Units ----

TEST_CASE("every unit passes only documented flags and every flag the issue requires", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();
  const Files files = node_files(spec, 1, true);
  for (const Component& c : kComponents) {
    INFO(c.unit << " (flags: " << c.reference << ")");
    REQUIRE(files.count(c.unit) == 1);
    const auto [program, flags] = exec_start(files.at(c.unit));
    CHECK(program == c.program);
    for (const auto& [flag, value] : flags) {
      INFO(flag << "=" << value);
      CHECK(words(c.documented).count(flag) == 1);
      CHECK(words(c.refused).count(flag) == 0);
      CHECK_FALSE(flag.starts_with("--experimental-"));
      CHECK_FALSE(value.empty());
    }
    for (const std::string& flag : words(c.required)) {
      INFO("required: " << flag);
      CHECK(flags.count(flag) == 1);
    }
  }
}

TEST_CASE("the units carry the values the cluster needs", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();
  const Files files = node_files(spec, 1, true);
  auto flags_of = [&](const std::string& unit) { return exec_start(files.at(unit)).second; };
  const Flags etcd = flags_of("/etc/systemd/system/etcd.service");
  CHECK(etcd.at("--name") == "node-1");
  CHECK(etcd.at("--data-dir") == "/var/lib/etcd");
  CHECK(etcd.at("--listen-client-urls") == "https://10.0.0.1:2379,https://127.0.0.1:2379");
  CHECK(etcd.at("--advertise-client-urls") == "https://10.0.0.1:2379");
  CHECK(etcd.at("--listen-peer-urls") == "https://10.0.0.1:2380");
  CHECK(etcd.at("--initial-advertise-peer-urls") == "https://10.0.0.1:2380");
  CHECK(etcd.at("--initial-cluster") == "node-1=https://10.0.0.1:2380");
  CHECK(etcd.at("--initial-cluster-state") == "new");
  CHECK(etcd.at("--client-cert-auth") == "true");
  CHECK(etcd.at("--peer-client-cert-auth") == "true");
  CHECK(etcd.at("--trusted-ca-file") == "/etc/kubernetes/pki/etcd/ca.crt");
  CHECK(etcd.at("--peer-trusted-ca-file") == "/etc/kubernetes/pki/etcd/ca.crt");
  const Flags api = flags_of("/etc/systemd/system/kube-apiserver.service");
  CHECK(api.at("--advertise-address") == "10.0.0.1");
  CHECK(api.at("--etcd-servers") == "https://127.0.0.1:2379");
  CHECK(api.at("--service-cluster-ip-range") == "10.96.0.0/12");
  CHECK(api.at("--authorization-mode") == "Node,RBAC");
  CHECK(api.at("--enable-admission-plugins") == "NodeRestriction");
  CHECK(api.at("--service-account-issuer") == "https://kubernetes.default.svc.cluster.local");
  CHECK(api.at("--service-account-key-file") == "/etc/kubernetes/pki/sa.pub");
  CHECK(api.at("--service-account-signing-key-file") == "/etc/kubernetes/pki/sa.key");
  CHECK(api.at("--requestheader-client-ca-file") == "/etc/kubernetes/pki/front-proxy-ca.crt");
  CHECK(api.at("--requestheader-allowed-names") == "front-proxy-client");
  CHECK(api.at("--enable-aggregator-routing") == "true");
  CHECK(api.at("--allow-privileged") == "true");
  const Flags cm = flags_of("/etc/systemd/system/kube-controller-manager.service");
  CHECK(cm.at("--cluster-cidr") == "10.244.0.0/16");
  CHECK(cm.at("--allocate-node-cidrs") == "false");
  CHECK(cm.at("--cluster-signing-key-file") == "/etc/kubernetes/pki/ca.key");
  CHECK(cm.at("--service-account-private-key-file") == "/etc/kubernetes/pki/sa.key");
  CHECK(cm.at("--use-service-account-credentials") == "true");
  CHECK(cm.at("--bind-address") == "127.0.0.1");
  CHECK(flags_of("/etc/systemd/system/kube-scheduler.service").at("--config") == "/etc/kubernetes/kube-scheduler.yaml");
  const Flags kubelet = flags_of("/etc/systemd/system/kubelet.service.d/10-pibake-hard-way.conf");
  CHECK(kubelet.at("--config") == "/var/lib/kubelet/config.yaml");
  CHECK(kubelet.at("--kubeconfig") == "/etc/kubernetes/kubelet.conf");
  CHECK(kubelet.at("--node-ip") == "10.0.0.1");
  // The drop-in clears the unit's ExecStart first (systemd.service(5): a second ExecStart= adds).
  CHECK_THAT(files.at("/etc/systemd/system/kubelet.service.d/10-pibake-hard-way.conf"),
             Contains("\nExecStart=\nExecStart=/usr/local/bin/kubelet "));
  CHECK(flags_of("/etc/systemd/system/kube-proxy.service").at("--config") ==
        "/var/lib/kube-proxy/kube-proxy-config.yaml");
}

TEST_CASE("every unit restarts on failure starts at boot and the API server waits for etcd", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();
  const Files files = node_files(spec, 1, true);
  std::set<std::string> units;
  for (const auto& [path, text] : files) {
    if (!path.ends_with(".service") || path.find(".service.d/") != std::string::npos) continue;
    INFO(path);
    units.insert(path);
    CHECK_THAT(text, Contains("\nRestart=on-failure\n"));
    CHECK_THAT(text, Contains("\n[Install]\nWantedBy=multi-user.target\n"));
    CHECK(text.starts_with("# Written by pibake: "));
  }
  CHECK(units.size() == 5);
  CHECK_THAT(files.at("/etc/systemd/system/kube-apiserver.service"),
             Contains("\nAfter=network-online.target etcd.service\n"));
  // Each tree's _manifest links every unit of its tree into multi-user.target.wants.
  std::set<std::string> linked;
  for (const char* tree : {kHardWay, kControlPlane}) {
    std::istringstream in(render_tree(tree, spec, 1).at("_manifest"));
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string verb, path, target;
      words >> verb >> path >> target;
      if (verb.empty() || verb[0] == '#') continue;
      INFO(line);
      REQUIRE(verb == "link");
      CHECK(path == "/etc/systemd/system/multi-user.target.wants/" + target.substr(target.rfind('/') + 1));
      CHECK(files.count(target) == 1);
      linked.insert(target);
    }
  }
  CHECK(linked == units);
}

// ---- Paths ----

TEST_CASE("every path a hard-way file names is a credential pibake writes or a file of its trees", "[hard-way-files]") {
  const ClusterSpec spec = spec_of("nodes: {count: 3}\n");
  const std::vector<HardWayCert> certs = hard_way_certs(spec);
  for (int k = 1; k <= 3; ++k) {
    const std::string host = spec.nodes[k - 1].name;
    const bool control_plane = k == 1;
    const Files files = node_files(spec, k, control_plane);
    std::set<std::string> allowed = credential_paths(host);
    for (const auto& [path, text] : files) allowed.insert(path);
    allowed.insert("/var/lib/etcd");              // etcd's data directory (the unit's StateDirectory=)
    allowed.insert("/etc/kubernetes/manifests");  // staticPodPath: the plan creates it
    for (const auto& [file, text] : files) {
      for (const std::string& path : named_paths(text)) {
        INFO(host << ": " << file << " names " << path);
        CHECK(allowed.count(path) == 1);
        // A certificate or key of the table must be one this node's card holds.
        if (path.starts_with("/etc/kubernetes/pki/") && !path.ends_with("ca.crt") && !path.ends_with("ca.key") &&
            !path.ends_with("/sa.key") && !path.ends_with("/sa.pub")) {
          const std::string stem = path.substr(20, path.size() - 24);
          bool held = false;
          for (const HardWayCert& c : certs)
            if (c.name == stem) held = std::find(c.nodes.begin(), c.nodes.end(), host) != c.nodes.end();
          CHECK(held);
        }
      }
    }
    // A worker names no control-plane credential: no CA key, no API server or etcd certificate.
    if (!control_plane) {
      for (const auto& [file, text] : files) {
        for (const std::string& path : named_paths(text)) {
          INFO(host << ": " << file << " names " << path);
          CHECK(path.find("apiserver") == std::string::npos);
          CHECK(path.find("/etcd/") == std::string::npos);
          const bool own_key = path.ends_with(host + ".key") || path.ends_with("/kube-proxy.key");
          CHECK((own_key || !path.ends_with(".key")));
        }
      }
    }
  }
}

// ---- Configuration files ----

TEST_CASE("the YAML files parse and carry their API version and kind", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();
  const Files files = node_files(spec, 2, true);
  const std::map<std::string, std::vector<std::pair<std::string, std::string>>> want = {
      {"/var/lib/kubelet/config.yaml", {{"kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"}}},
      {"/var/lib/kube-proxy/kube-proxy-config.yaml", {{"kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"}}},
      {"/etc/kubernetes/kube-scheduler.yaml", {{"kubescheduler.config.k8s.io/v1", "KubeSchedulerConfiguration"}}},
      {"/etc/kubernetes/pibake/rbac-apiserver-to-kubelet.yaml",
       {{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding"}}},
      {"/etc/kubernetes/pibake/rbac-cluster-admins.yaml", {{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding"}}},
      {"/etc/kubernetes/pibake/coredns.yaml",
       {{"v1", "ServiceAccount"},
        {"rbac.authorization.k8s.io/v1", "ClusterRole"},
        {"rbac.authorization.k8s.io/v1", "ClusterRoleBinding"},
        {"v1", "ConfigMap"},
        {"apps/v1", "Deployment"},
        {"v1", "Service"}}},
  };
  size_t yaml_files = 0;
  for (const auto& [path, text] : files) yaml_files += path.ends_with(".yaml");
  CHECK(yaml_files == want.size());
  for (const auto& [path, kinds] : want) {
    INFO(path);
    REQUIRE(files.count(path) == 1);
    const std::vector<YAML::Node> docs = yaml_docs(files.at(path));
    REQUIRE(docs.size() == kinds.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      CHECK(docs[i]["apiVersion"].as<std::string>() == kinds[i].first);
      CHECK(docs[i]["kind"].as<std::string>() == kinds[i].second);
    }
  }
  const YAML::Node kubelet = YAML::Load(files.at("/var/lib/kubelet/config.yaml"));
  CHECK(kubelet["podCIDR"].as<std::string>() == "10.244.2.0/24");
  CHECK(kubelet["tlsCertFile"].as<std::string>() == "/etc/kubernetes/pki/kubelet-serving-node-2.crt");
  CHECK(kubelet["tlsPrivateKeyFile"].as<std::string>() == "/etc/kubernetes/pki/kubelet-serving-node-2.key");
  CHECK(kubelet["authentication"]["x509"]["clientCAFile"].as<std::string>() == "/etc/kubernetes/pki/ca.crt");
  CHECK(kubelet["authentication"]["webhook"]["enabled"].as<bool>());
  CHECK_FALSE(kubelet["authentication"]["anonymous"]["enabled"].as<bool>());
  CHECK(kubelet["authorization"]["mode"].as<std::string>() == "Webhook");
  CHECK(kubelet["clusterDNS"][0].as<std::string>() == "10.96.0.10");
  CHECK(kubelet["clusterDomain"].as<std::string>() == "cluster.local");
  CHECK(kubelet["cgroupDriver"].as<std::string>() == "systemd");
  CHECK(kubelet["containerRuntimeEndpoint"].as<std::string>() == "unix:///run/containerd/containerd.sock");
  CHECK(kubelet["staticPodPath"].as<std::string>() == "/etc/kubernetes/manifests");
  CHECK(kubelet["resolvConf"].as<std::string>() == "/run/systemd/resolve/resolv.conf");
  CHECK_FALSE(kubelet["rotateCertificates"].as<bool>());
  const YAML::Node proxy = YAML::Load(files.at("/var/lib/kube-proxy/kube-proxy-config.yaml"));
  CHECK(proxy["mode"].as<std::string>() == "iptables");
  CHECK(proxy["clusterCIDR"].as<std::string>() == "10.244.0.0/16");
  CHECK(proxy["clientConnection"]["kubeconfig"].as<std::string>() == "/etc/kubernetes/kube-proxy.conf");
  const YAML::Node scheduler = YAML::Load(files.at("/etc/kubernetes/kube-scheduler.yaml"));
  CHECK(scheduler["clientConnection"]["kubeconfig"].as<std::string>() == "/etc/kubernetes/scheduler.conf");
  CHECK(scheduler["leaderElection"]["leaderElect"].as<bool>());
  // The binding names the user of the API server's kubelet client certificate (hard_way_pki.cpp).
  const YAML::Node binding = YAML::Load(files.at("/etc/kubernetes/pibake/rbac-apiserver-to-kubelet.yaml"));
  std::string kubelet_client_cn;
  for (const HardWayCert& c : hard_way_certs(spec))
    if (c.name == "apiserver-kubelet-client") kubelet_client_cn = c.leaf.common_name;
  CHECK(binding["subjects"][0]["kind"].as<std::string>() == "User");
  CHECK(binding["subjects"][0]["name"].as<std::string>() == kubelet_client_cn);
  CHECK(binding["roleRef"]["kind"].as<std::string>() == "ClusterRole");
  CHECK(binding["roleRef"]["name"].as<std::string>() == "system:kubelet-api-admin");
}

TEST_CASE("CoreDNS runs two replicas of the carried image behind the cluster DNS address", "[hard-way-files]") {
  ClusterSpec spec = default_spec();
  spec.kubernetes.service_cidr = "10.32.0.0/16";
  const Files files = node_files(spec, 1, true);
  const std::vector<YAML::Node> docs = yaml_docs(files.at("/etc/kubernetes/pibake/coredns.yaml"));
  REQUIRE(docs.size() == 6);
  const YAML::Node corefile = docs[3]["data"]["Corefile"];
  CHECK_THAT(corefile.as<std::string>(), Contains("kubernetes cluster.local in-addr.arpa ip6.arpa {"));
  CHECK_THAT(corefile.as<std::string>(), Contains("forward . /etc/resolv.conf"));
  const YAML::Node deployment = docs[4];
  CHECK(deployment["spec"]["replicas"].as<int>() == 2);
  const YAML::Node pod = deployment["spec"]["template"]["spec"];
  CHECK(pod["serviceAccountName"].as<std::string>() == "coredns");
  CHECK(pod["containers"][0]["image"].as<std::string>() == coredns_image(spec));
  CHECK(pod["dnsPolicy"].as<std::string>() == "Default");
  const YAML::Node service = docs[5];
  CHECK(service["metadata"]["name"].as<std::string>() == "kube-dns");
  CHECK(service["metadata"]["namespace"].as<std::string>() == "kube-system");
  CHECK(service["spec"]["clusterIP"].as<std::string>() == "10.32.0.10");
  CHECK(service["spec"]["selector"]["k8s-app"].as<std::string>() ==
        deployment["spec"]["template"]["metadata"]["labels"]["k8s-app"].as<std::string>());
}

TEST_CASE("the CNI configurations are JSON with a bridge on the node's pod range and portmap", "[hard-way-files]") {
  const ClusterSpec spec = default_spec();
  const Files files = node_files(spec, 3, false);
  const nlohmann::json list = nlohmann::json::parse(files.at("/etc/cni/net.d/10-bridge.conflist"));
  CHECK(list.at("cniVersion") == "1.0.0");
  CHECK(list.at("name") == "bridge");
  CHECK_THAT(list.at("comment").get<std::string>(), Catch::Matchers::StartsWith("Written by pibake: "));
  const nlohmann::json& plugins = list.at("plugins");
  REQUIRE(plugins.size() == 2);
  const nlohmann::json& bridge = plugins[0];
  CHECK(bridge.at("type") == "bridge");
  CHECK(bridge.at("bridge") == "cni0");
  CHECK(bridge.at("isGateway") == true);
  CHECK(bridge.at("ipMasq") == true);
  CHECK(bridge.at("ipam").at("type") == "host-local");
  CHECK(bridge.at("ipam").at("ranges") == nlohmann::json::parse(R"([[{"subnet": "10.244.3.0/24"}]])"));
  CHECK(bridge.at("ipam").at("routes") == nlohmann::json::parse(R"([{"dst": "0.0.0.0/0"}])"));
  CHECK(plugins[1].at("type") == "portmap");
  CHECK(plugins[1].at("capabilities") == nlohmann::json::parse(R"({"portMappings": true})"));
  const nlohmann::json loopback = nlohmann::json::parse(files.at("/etc/cni/net.d/99-loopback.conf"));
  CHECK(loopback.at("type") == "loopback");
  CHECK(loopback.at("cniVersion") == "1.0.0");
  // The bridge's range is the kubelet's podCIDR.
  CHECK(YAML::Load(files.at("/var/lib/kubelet/config.yaml"))["podCIDR"].as<std::string>() == "10.244.3.0/24");
}

TEST_CASE("every hard-way file says pibake wrote it", "[hard-way-files]") {
  const Files files = node_files(default_spec(), 1, true);
  CHECK(files.size() == 14);
  for (const auto& [path, text] : files) {
    INFO(path);
    const bool json = path.starts_with("/etc/cni/");
    const std::string header = json ? "{\n  \"comment\": \"Written by pibake: " : "# Written by pibake: ";
    CHECK(text.starts_with(header));
    CHECK(text.find("{{") == std::string::npos);
  }
}
