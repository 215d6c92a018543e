// Validation that follows the tools reading the spec on the Pi: kubeadm's subnet size limits and
// the wireless regulatory database's countries (issue 11, item 6).
#include "spec_test_support.h"

using namespace pibake;

TEST_CASE("A service subnet wider than kubeadm's 20 host bits is refused", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "100.64.0.0/10"; }) ==
        Lines{"kubernetes.service_cidr: \"100.64.0.0/10\" is too large: kubeadm allows at most 20 host bits in the "
              "service subnet (MaximumBitsForServiceSubnet), so it must be a /12 or smaller"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.112.0.0/12"; }).empty());
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.service_cidr = "10.96.0.0/11"; }).size() == 1);
}

TEST_CASE("A pod subnet more than 16 bits wider than the per-node /24 is refused", "[spec]") {
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "20.0.0.0/7"; }) ==
        Lines{"kubernetes.pod_cidr: \"20.0.0.0/7\" is too large: kubeadm allows the per-node /24 to be at most 16 "
              "bits narrower than the pod subnet (PodSubnetNodeMaskMaxDiff), so it must be a /8 or smaller"});
  CHECK(problems_with([](ClusterSpec& s) { s.kubernetes.pod_cidr = "20.0.0.0/8"; }).empty());
}

TEST_CASE("The Wi-Fi country must be in the wireless regulatory database (UK suggests GB)", "[spec]") {
  auto with_country = [](const std::string& country) {
    return problems_with([&](ClusterSpec& s) { s.network.uplink.wifi = WifiSpec{"home", "correct horse", country}; });
  };
  CHECK(with_country("UK") == Lines{"network.uplink.wifi.country: \"UK\" is not a country of the wireless "
                                    "regulatory database: did you mean \"GB\" (its ISO 3166-1 code)?"});
  CHECK(with_country("EL") == Lines{"network.uplink.wifi.country: \"EL\" is not a country of the wireless "
                                    "regulatory database: did you mean \"GR\" (its ISO 3166-1 code)?"});
  for (const char* bad : {"XX", "EU", "ZZ", "AA"}) {
    CHECK(with_country(bad) ==
          Lines{"network.uplink.wifi.country: \"" + std::string(bad) +
                "\" is not a country of the wireless regulatory database (wireless-regdb 2026.09.03-1~deb12u1): "
                "use the ISO 3166-1 alpha-2 code of the country the gateway is in, like GB"});
  }
  // The first and last entries of the generated table, and a few in between.
  for (const char* good : {"AD", "ZW", "GB", "DE", "US", "JP", "NZ"}) CHECK(with_country(good).empty());
  // The world domain is the kernel's default, not a country to configure.
  CHECK(with_country("00").size() == 1);
}

TEST_CASE("Tool limits are located errors, reported together with the others", "[spec]") {
  Lines problems = problems_of(
      "network:\n"
      "  uplink: {interface: wlan0, wifi: {ssid: home, password: correct horse, country: UK}}\n"
      "kubernetes:\n"
      "  pod_cidr: 20.0.0.0/6\n"
      "  service_cidr: 100.64.0.0/10\n"
      "cluster: {name: Bad}\n");
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].starts_with("cluster.yaml:2:83: network.uplink.wifi.country: \"UK\" is not a country"));
  CHECK(problems[1].starts_with("cluster.yaml:4:13: kubernetes.pod_cidr: \"20.0.0.0/6\" is too large"));
  CHECK(problems[2].starts_with("cluster.yaml:5:17: kubernetes.service_cidr: \"100.64.0.0/10\" is too large"));
  CHECK(problems[3].starts_with("cluster.yaml:6:17: cluster.name:"));
}
