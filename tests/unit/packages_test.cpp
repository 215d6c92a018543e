// First-boot packages: dpkg status, apt's answers, the lock file's packages (pure functions).
#include "plan/packages.h"

#include <catch2/catch.hpp>

#include "plan/artifacts.h"
#include "util/error.h"

using namespace pibake;

TEST_CASE("dpkg status: only packages whose Status is 'install ok installed' count", "[packages]") {
  const std::string status =
      "Package: socat\nStatus: install ok installed\nVersion: 1.8\nDescription: relay\n continued line\n\n"
      "Package: conntrack\nStatus: deinstall ok config-files\nVersion: 1.4\n\n"
      "Package: iptables\nStatus: install ok half-configured\n\n"
      "Package: libfoo\r\nStatus: install ok installed\r\n";
  CHECK(installed_packages(status) == std::set<std::string>{"libfoo", "socat"});
  CHECK(installed_packages("").empty());
}

TEST_CASE("apt-get --print-uris lines are read, and anything else is an error", "[packages]") {
  auto uris = parse_print_uris(
      "'http://127.0.0.1:8080/ports/pool/main/c/conntrack_1.0_arm64.deb' conntrack_1.0_arm64.deb 676 SHA512:ab\n"
      "'https://h/p/libfoo_1.1_arm64.deb' libfoo_1%3a1.1_arm64.deb 640 SHA256:cd\n");
  REQUIRE(uris.size() == 2);
  CHECK(uris[0].url == "http://127.0.0.1:8080/ports/pool/main/c/conntrack_1.0_arm64.deb");
  CHECK(uris[0].size == 676);
  CHECK(uris[1].file_name == "libfoo_1%3a1.1_arm64.deb");
  CHECK_THROWS_AS(parse_print_uris("Reading package lists...\n"), Error);
  CHECK_THROWS_AS(parse_print_uris("'http://h/x.deb' x.deb big SHA256:a\n"), Error);
}

TEST_CASE("index records need a Filename, a Size and a SHA256", "[packages]") {
  const std::string sha(64, 'a');
  auto recs = parse_package_records(
      "Package: libfoo\nVersion: 1:1.1\nArchitecture: arm64\nFilename: pool/l/libfoo_1.1_arm64.deb\n"
      "Size: 640\nSHA256: " +
      std::string(64, 'A') + "\n\n");
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].version == "1:1.1");
  CHECK(recs[0].sha256 == sha);
  CHECK_THROWS_WITH(parse_package_records("Package: libfoo\nVersion: 1\nFilename: f\nSize: 1\n"),
                    Catch::Contains("libfoo"));
}

TEST_CASE("the gateway's set adds the DHCP server, and a single node has no 'node' set", "[packages]") {
  ClusterSpec spec = default_spec();
  auto sets = package_sets(spec, DhcpServer::kIscDhcpServer);
  REQUIRE(sets.size() == 2);
  // node-1 is the gateway and the control plane: etcd-client for its etcd snapshots.
  CHECK(sets[0].name == "gateway-control-plane");
  CHECK(join_requested(sets[0].requested) == "chrony conntrack etcd-client iptables isc-dhcp-server socat");
  CHECK(sets[1].name == "node");
  CHECK(join_requested(sets[1].requested) == "conntrack iptables socat");
  CHECK(join_requested(package_sets(spec, DhcpServer::kKea)[0].requested) ==
        "chrony conntrack etcd-client iptables kea-dhcp4-server socat");
  apply_node_count(spec, 1);
  CHECK(package_sets(spec, DhcpServer::kKea).size() == 1);
}

TEST_CASE("control planes holding the virtual IP add keepalived and curl to their set", "[packages]") {
  ClusterSpec spec = default_spec();
  spec.control_plane_count = 3;
  apply_node_count(spec, 4);
  auto sets = package_sets(spec, DhcpServer::kIscDhcpServer);
  REQUIRE(sets.size() == 3);
  CHECK(sets[0].name == "gateway-control-plane");
  CHECK(join_requested(sets[0].requested) ==
        "chrony conntrack curl etcd-client iptables isc-dhcp-server keepalived socat");
  CHECK(sets[1].name == "node-control-plane");
  CHECK(join_requested(sets[1].requested) == "conntrack curl etcd-client iptables keepalived socat");
  CHECK(sets[2].name == "node");
  CHECK(package_set_name(spec, spec.nodes[3]) == "node");
  CHECK(package_set_name(spec, spec.nodes[1]) == "node-control-plane");
}

TEST_CASE("a single control plane that is not the gateway gets etcd-client without keepalived", "[packages]") {
  ClusterSpec spec = default_spec();
  apply_node_count(spec, 3);
  spec.nodes[0].role = NodeRole::kWorker;
  spec.nodes[1].role = NodeRole::kControlPlane;
  REQUIRE(gateway_name(spec) == "node-1");
  CHECK(package_set_name(spec, spec.nodes[0]) == "gateway");
  CHECK(package_set_name(spec, spec.nodes[1]) == "node-control-plane");
  CHECK(join_requested(firstboot_packages(spec, spec.nodes[1], DhcpServer::kKea)) ==
        "conntrack etcd-client iptables socat");
  CHECK(join_requested(firstboot_packages(spec, spec.nodes[2], DhcpServer::kKea)) == "conntrack iptables socat");
}

TEST_CASE("the lock file keeps packages and package sets through a round trip", "[packages]") {
  LockFile lock;
  lock.packages.push_back({"libfoo", "1:1.1", "https://a/pool/libfoo_1.1_arm64.deb", std::string(64, 'b'), 640});
  lock.package_sets.push_back({"gateway", "conntrack libfoo", std::string(64, 'c'), {"libfoo"}});
  lock.package_sets.push_back({"node", "conntrack", std::string(64, 'c'), {}});
  LockFile back = parse_lock(render_lock(lock), "lock.yaml");
  REQUIRE(back.packages.size() == 1);
  CHECK(back.packages[0].version == "1:1.1");
  CHECK(back.packages[0].size == 640);
  CHECK(back.packages[0].file_name() == "libfoo_1.1_arm64.deb");
  REQUIRE(back.find_package_set("gateway") != nullptr);
  CHECK(back.find_package_set("gateway")->debs == std::vector<std::string>{"libfoo"});
  CHECK(back.find_package_set("node")->debs.empty());
  // A set naming a package the lock does not pin is refused.
  CHECK_THROWS_WITH(
      parse_lock("package_sets:\n  node:\n    requested: a\n    base_status_sha256: x\n    debs: [ghost]\n",
                 "lock.yaml"),
      Catch::Contains("ghost"));
}
