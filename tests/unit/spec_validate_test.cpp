// Unit tests for every validation rule of the cluster spec, with its exact message.
#include "spec_test_support.h"

namespace pibake {
namespace {

TEST_CASE("Node addresses must be IPv4 host addresses inside the subnet", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[2].ip = "10.0.0.300"; }) ==
        Lines{"nodes[2].ip: \"10.0.0.300\" is not an IPv4 address"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip = "10.0.1.2"; }) ==
        Lines{"nodes[1].ip: \"10.0.1.2\" is outside network.subnet 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip = "10.0.0.0"; }) ==
        Lines{"nodes[1].ip: \"10.0.0.0\" is the network address of 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip = "10.0.0.255"; }) ==
        Lines{"nodes[1].ip: \"10.0.0.255\" is the broadcast address of 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].ip.clear(); }) == Lines{"nodes[1].ip: is missing"});
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
  for (const std::string& bad : Lines{"Node-1", "node_1", "-node", "node-", "node.1", std::string(64, 'n')}) {
    CHECK(problems_with([&](ClusterSpec& s) { s.nodes[1].name = bad; }) ==
          Lines{"nodes[1].name: \"" + bad + "\"" + rule});
  }
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].name = "1st-pi"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].name = std::string(63, 'n'); }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[1].name = ""; }) ==
        Lines{"nodes[1].name: is missing: every node needs a name"});
}

TEST_CASE("An odd number of nodes are control planes", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[0].role = NodeRole::kWorker; }) ==
        Lines{"nodes: no node has role control-plane: at least one is needed"});
  CHECK(problems_with([](ClusterSpec& s) { s.nodes[2].role = NodeRole::kControlPlane; }) ==
        Lines{"nodes: 2 nodes have role control-plane (node-1, node-3): use 1, 3, 5 or 7 (an odd number, so that "
              "etcd keeps a majority when one fails)"});
  CHECK(problems_with([](ClusterSpec& s) {
          for (int i : {1, 2}) s.nodes[i].role = NodeRole::kControlPlane;
        }) == Lines{});
  // An explicit worker first node is not silently promoted.
  CHECK(problems_of("nodes: [{name: a, role: worker}, {name: b}]\n") ==
        Lines{"cluster.yaml:1:8: nodes: no node has role control-plane: at least one is needed"});
  CHECK(problems_of("nodes: [{name: a, role: control-plane}, {name: b, role: control-plane}, {name: c, role: "
                    "control-plane}]\n") == Lines{});
}

TEST_CASE("nodes.control_planes picks node-1 to node-K, an odd K within the count", "[spec]") {
  LoadResult r = load_spec_text("nodes: {count: 5, control_planes: 3}\n", "cluster.yaml");
  CHECK(r.problems.empty());
  REQUIRE(r.spec.nodes.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(r.spec.nodes[i].role == (i < 3 ? NodeRole::kControlPlane : NodeRole::kWorker));
  }
  CHECK(problems_of("nodes: {count: 4, control_planes: 2}\n") ==
        Lines{"cluster.yaml:1:35: nodes.control_planes: 2 is not a number of control planes pibake builds: use 1, 3, "
              "5 or 7 (an odd number, so that etcd keeps a majority when one fails)"});
  CHECK(problems_of("nodes: {count: 2, control_planes: 3}\n") ==
        Lines{"cluster.yaml:1:35: nodes.control_planes: 3 control planes need at least 3 nodes, and there are 2 "
              "(nodes.count, or --nodes)"});
  CHECK(problems_of("nodes: {count: 9, control_planes: 9}\n").size() == 1);
  CHECK(problems_of("nodes: {count: 4, control_planes: three}\n") ==
        Lines{"cluster.yaml:1:35: nodes.control_planes: \"three\" is not a whole number"});
}

TEST_CASE("The API server's virtual IP is a free address of the subnet", "[spec]") {
  // One control plane: no VIP unless asked; its endpoint is its own address.
  ClusterSpec one = default_spec();
  CHECK_FALSE(uses_api_vip(one));
  CHECK(api_vip_address(one).empty());
  CHECK(api_endpoint_address(one) == "10.0.0.1");
  // Three: the highest address that is neither a node's nor in the DHCP pool.
  LoadResult three = load_spec_text("nodes: {count: 4, control_planes: 3}\n", "cluster.yaml");
  REQUIRE(three.problems.empty());
  CHECK(uses_api_vip(three.spec));
  CHECK(api_vip_address(three.spec) == "10.0.0.254");
  CHECK(api_endpoint_address(three.spec) == "10.0.0.254");
  LoadResult busy = load_spec_text(
      "nodes: [{name: a, role: control-plane}, {name: b, role: control-plane}, {name: c, role: control-plane}, "
      "{name: d, ip: 10.0.0.254}]\nnetwork: {dhcp_range: 10.0.0.200-10.0.0.253}\n",
      "cluster.yaml");
  REQUIRE(busy.problems.empty());
  CHECK(api_vip_address(busy.spec) == "10.0.0.199");
  // Written: used as it is, with one control plane too.
  one.kubernetes.api_vip = "10.0.0.50";
  CHECK(uses_api_vip(one));
  CHECK(api_endpoint_address(one) == "10.0.0.50");
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.api_vip = "10.0.0.50"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.api_vip = "10.0.0.2"; }) ==
        Lines{"kubernetes.api_vip: \"10.0.0.2\" is the address of nodes[1] (node-2): the virtual IP must be an "
              "address of its own"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.api_vip = "10.0.0.150"; }) ==
        Lines{"kubernetes.api_vip: \"10.0.0.150\" is in network.dhcp_range 10.0.0.100-10.0.0.200: the DHCP server "
              "could lease it to another device"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.api_vip = "10.1.0.5"; }) ==
        Lines{"kubernetes.api_vip: \"10.1.0.5\" is outside network.subnet 10.0.0.0/24: the control planes hold it on "
              "the cluster network"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.api_vip = "10.0.0.255"; }) ==
        Lines{"kubernetes.api_vip: \"10.0.0.255\" is the network or broadcast address of 10.0.0.0/24"});
  // A DNS server on the cluster network is neither picked nor accepted.
  LoadResult dns =
      load_spec_text("nodes: {count: 4, control_planes: 3}\nnetwork: {dns: [10.0.0.254]}\n", "cluster.yaml");
  REQUIRE(dns.problems.empty());
  CHECK(api_vip_address(dns.spec) == "10.0.0.253");
  CHECK(problems_with([](ClusterSpec& s) {
          s.network.dns = {"10.0.0.53"};
          s.kubernetes.api_vip = "10.0.0.53";
        }) == Lines{"kubernetes.api_vip: \"10.0.0.53\" is network.dns[0], a DNS server: the virtual IP must be an "
                    "address of its own"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.api_vip = "vip"; }) ==
        Lines{"kubernetes.api_vip: \"vip\" is not an IPv4 address"});
  // Nothing free: say so, and what to do.
  CHECK(
      problems_of("network: {subnet: 10.0.0.0/29, dhcp_range: 10.0.0.4-10.0.0.6}\nnodes: {count: 3, "
                  "control_planes: 3}\n") ==
      Lines{
          "cluster.yaml:1:1: kubernetes.api_vip: no address of network.subnet is free for the API server's virtual IP "
          "(every one is a node's, a DNS server's or in network.dhcp_range): set kubernetes.api_vip"});
  // The spec written next to the outputs keeps a written VIP.
  LoadResult back = load_spec_text(to_yaml(one), "cluster.yaml");
  CHECK(back.spec.kubernetes.api_vip == "10.0.0.50");
}

TEST_CASE("The gateway must be one of the nodes", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.network.gateway = "node-9"; }) ==
        Lines{"network.gateway: \"node-9\" is not one of the nodes (node-1, node-2, node-3, node-4)"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.gateway = "node-3"; }) == Lines{});
}

TEST_CASE("The node count must be between 1 and the maximum", "[spec]") {
  for (int count : {0, -1, kMaxNodes + 1}) {
    CHECK(problems_with([&](ClusterSpec& s) { apply_node_count(s, count); }) ==
          Lines{"nodes.count: " + std::to_string(count) + " is out of range: use 1 to 1000"});
  }
  CHECK(problems_of("nodes: []\n") == Lines{"cluster.yaml:1:8: nodes: no nodes are listed: at least one is needed"});
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
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "10.244.0.0/23"; }) ==
        Lines{"kubernetes.pod_cidr: \"10.244.0.0/23\" is too small: every node gets a /24 of it, so "
              "it has room for 2 of the 4 nodes"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "10.244.0.0/22"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.96.0.0/29"; }) ==
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
  CHECK(with_range("") == Lines{"network.dhcp_range: is empty: give a pool like 10.0.0.100-10.0.0.200"});
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
  CHECK(problems_with([](ClusterSpec& s) { s.cluster.name = ""; }) == Lines{"cluster.name: is empty"});
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
  auto with_wifi = [](WifiSpec wifi) { return problems_with([&](ClusterSpec& s) { s.network.uplink.wifi = wifi; }); };
  CHECK(with_wifi({"home", "correct horse", "GB"}) == Lines{});
  CHECK(with_wifi({"cafe", "", "FR"}) == Lines{});  // an open network
  CHECK(with_wifi({"", "correct horse", ""}) ==
        Lines{"network.uplink.wifi.ssid: is missing: the Wi-Fi uplink \"wlan0\" needs the network's "
              "name",
              "network.uplink.wifi.country: is missing: Wi-Fi needs the regulatory domain's country "
              "code, like GB"});
  CHECK(with_wifi({std::string(33, 's'), "correct horse", "GB"}) ==
        Lines{"network.uplink.wifi.ssid: \"" + std::string(33, 's') +
              "\" is 33 bytes long in UTF-8: an SSID has at most 32"});
  CHECK(with_wifi({"home", "correct horse", "gb"}) ==
        Lines{"network.uplink.wifi.country: \"gb\" is not a country code: use two upper-case "
              "letters (ISO 3166-1 alpha-2), like GB"});
  CHECK(with_wifi({"home", "secret", "GB"}) ==
        Lines{"network.uplink.wifi.password: has 6 characters: a WPA passphrase has 8 to 63 (leave "
              "it empty for an open network)"});
  CHECK(with_wifi({"home", std::string(64, 'p'), "GB"}) ==
        Lines{"network.uplink.wifi.password: has 64 characters: a WPA passphrase has 8 to 63 (leave "
              "it empty for an open network)"});
}

TEST_CASE("Wi-Fi settings on a wired uplink are a problem", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.network.uplink = {"eth1", WifiSpec{"home", "correct horse", "GB"}};
        }) == Lines{"network.uplink.wifi: is set, but \"eth1\" is not a Wi-Fi interface (their names "
                    "start with \"wl\")"});
}

TEST_CASE("Versions are vX.Y.Z for Kubernetes and X.Y.Z for the other components", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.version = "1.34.2"; }) ==
        Lines{"kubernetes.version: \"1.34.2\" is not a Kubernetes version: it needs the leading v "
              "(v1.34.2)"});
  for (const char* bad : {"v1.34", "v1.34.2-rc.1", "latest", "v1.34.x", "", "stable-1", "stable-1.x", "Stable"}) {
    CHECK(problems_with([&](ClusterSpec& s) { s.kubernetes.version = bad; }) ==
          Lines{std::string("kubernetes.version: \"") + bad +
                "\" is not a Kubernetes release like v1.37.1, nor a channel (stable, stable-1.37)"});
  }
  CHECK(problems_with([](ClusterSpec& s) { s.containerd.version = "v2.1.5"; }) ==
        Lines{"containerd.version: \"v2.1.5\" has a leading \"v\": write 2.1.5 (the release tag "
              "without the v)"});
  CHECK(problems_with([](ClusterSpec& s) { s.runc.version = "1.3"; }) ==
        Lines{"runc.version: \"1.3\" is not a version like 1.2.3"});
  CHECK(problems_with([](ClusterSpec& s) { s.cni_plugins.version = "1.8.0.1"; }) ==
        Lines{"cni_plugins.version: \"1.8.0.1\" is not a version like 1.2.3"});
}

TEST_CASE("The DHCP server is auto, isc-dhcp-server or kea", "[spec]") {
  for (const char* ok : {"auto", "isc-dhcp-server", "kea"}) {
    CHECK(problems_with([&](ClusterSpec& s) { s.network.dhcp_server = ok; }) == Lines{});
  }
  CHECK(problems_with([](ClusterSpec& s) { s.network.dhcp_server = "dnsmasq"; }) ==
        Lines{"network.dhcp_server: \"dnsmasq\" is not a DHCP server pibake configures: use auto, isc-dhcp-server or "
              "kea"});
  // Located in the file, like every other key.
  CHECK(problems_of("network:\n  dhcp_server: Kea\n") ==
        Lines{"cluster.yaml:2:16: network.dhcp_server: \"Kea\" is not a DHCP server pibake configures: use auto, "
              "isc-dhcp-server or kea"});
}

TEST_CASE("The CNI is one pibake supports", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.cni = "calico"; }) ==
        Lines{"kubernetes.cni: \"calico\" is not supported: use flannel-host-gw or flannel-vxlan"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.cni = "flannel-vxlan"; }) == Lines{});
}

TEST_CASE("API server SANs are DNS names or IP addresses", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.kubernetes.api_server_sans = {"k8s.home", "*.home", "10.0.0.1", "fd00::1", "bad_name", "https://k8s.home"};
        }) == Lines{"kubernetes.api_server_sans[4]: \"bad_name\" is neither a DNS name nor an IP "
                    "address",
                    "kubernetes.api_server_sans[5]: \"https://k8s.home\" is neither a DNS name nor "
                    "an IP address"});
}

TEST_CASE("The image repository is a registry path without a scheme", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = "https://registry.k8s.io"; }) ==
        Lines{"kubernetes.image_repository: \"https://registry.k8s.io\" must not include a scheme: "
              "write registry.k8s.io"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = ""; }) ==
        Lines{"kubernetes.image_repository: is empty"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = "registry.k8s.io/"; }) ==
        Lines{"kubernetes.image_repository: \"registry.k8s.io/\" is not an image repository like "
              "registry.k8s.io"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.image_repository = "mirror:5000/k8s"; }) == Lines{});
}

TEST_CASE("The login user is an ordinary Linux user name", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.access.user = "Admin"; }) ==
        Lines{"access.user: \"Admin\" is not a valid Linux user name: use lowercase letters, digits, "
              "'_' and '-', starting with a letter or '_', at most 32 characters"});
  CHECK(problems_with([](ClusterSpec& s) { s.access.user = "root"; }) ==
        Lines{"access.user: \"root\" cannot be the login user: name an ordinary user"});
  CHECK(problems_with([](ClusterSpec& s) { s.access.user = ""; }) == Lines{"access.user: is empty"});
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
  CHECK(with_key(swapped) == Lines{"access.ssh_authorized_keys[0]: \"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDv9cpKm\"... is "
                                   "not an SSH public key: the key data is a \"ssh-ed25519\" key, not \"ssh-rsa\""});
  CHECK(with_key("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n") ==
        Lines{"access.ssh_authorized_keys[0]: is a private key: give the public key (the .pub "
              "file) and keep the private key secret"});
  CHECK(with_key(std::string(kEd25519Key) + "\n" + kRsaKey) ==
        Lines{"access.ssh_authorized_keys[0]: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDv9\"... is "
              "not an SSH public key: it spans several lines: give one key per list item"});
  CHECK(with_key("") == Lines{"access.ssh_authorized_keys[0]: is empty"});
}

TEST_CASE("The password hash is a crypt(3) hash and a plaintext password is never echoed", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.access.password_hash = kHash; }) == Lines{});
  Lines plaintext = problems_with([](ClusterSpec& s) { s.access.password_hash = "hunter22"; });
  CHECK(plaintext == Lines{"access.password_hash: is not a crypt(3) hash (it must start with \"$\", "
                           "like the output of \"mkpasswd -m sha-512\"): never put a plaintext "
                           "password in the spec"});
  CHECK(plaintext[0].find("hunter22") == std::string::npos);
  CHECK(problems_with([](ClusterSpec& s) { s.access.password_hash = "$6$only-salt"; }) ==
        Lines{"access.password_hash: is not a crypt(3) hash of the form $id$salt$hash (like the "
              "output of \"mkpasswd -m sha-512\")"});
}

TEST_CASE("The base image is an https URL or a path to an .img or .img.xz", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) {
          s.base_image.url = "https://cdimage.ubuntu.com/releases/26.04/release/";
        }).empty());
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url = "ubuntu.img"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url = "file:///srv/ubuntu.img.xz"; }) == Lines{});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url = "http://example.org/ubuntu.img.xz"; }) ==
        Lines{"base_image.url: \"http://example.org/ubuntu.img.xz\" is not an https:// URL or a "
              "local path: downloads must use TLS (a mirror may point elsewhere)"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url = "https://example.org/ubuntu.iso"; }) ==
        Lines{"base_image.url: \"https://example.org/ubuntu.iso\" is not an .img or .img.xz file, nor a release "
              "folder ending in /"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.url.clear(); }) ==
        Lines{"base_image.url: is empty: give the Ubuntu image's URL or a local path"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.sha256sums = "ftp://example.org/SUMS"; }) ==
        Lines{"base_image.sha256sums: \"ftp://example.org/SUMS\" is not an https:// URL or a local "
              "path: downloads must use TLS (a mirror may point elsewhere)"});
}

TEST_CASE("The base image digest is 64 hexadecimal digits", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.sha256 = std::string(63, 'f'); }) ==
        Lines{"base_image.sha256: \"" + std::string(63, 'f') + "\" is not a SHA-256 digest (64 hexadecimal digits)"});
  CHECK(problems_with([](ClusterSpec& s) { s.base_image.sha256 = std::string(64, 'g'); }) ==
        Lines{"base_image.sha256: \"" + std::string(64, 'g') + "\" is not a SHA-256 digest (64 hexadecimal digits)"});
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
  CHECK(with_mirror("https://dl.k8s.io", "") == Lines{"mirrors[\"https://dl.k8s.io\"]: the replacement is empty"});
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
