// Issue 17, kind 5: a cluster.yaml means what it says. Hostile or mistaken specs are refused at
// load time with a located message that never echoes more than a line nor private key material.
#include "spec_test_support.h"
#include "util/yaml_text.h"

namespace pibake {
namespace {

bool contains(const Lines& lines, const std::string& needle) {
  for (const std::string& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

TEST_CASE("A second YAML document or trailing content is a located error", "[spec][hostile]") {
  CHECK(problems_of("cluster: {name: a}\n---\nnodes: {count: 99999}\n") ==
        Lines{"cluster.yaml:2:1: a second YAML document starts here: cluster.yaml is one document (remove the "
              "\"---\" or \"...\" line and what follows, or merge it)"});
  // An empty second document after the end marker is still a second document.
  Lines empty_second = problems_of("cluster: {name: a}\n...\n---\n");
  REQUIRE(empty_second.size() == 1);
  INFO(empty_second[0]);
  CHECK(empty_second[0].rfind("cluster.yaml:2:1: a second YAML document", 0) == 0);
  // Unparseable trailing content is a syntax error with its place, not silently ignored.
  Lines garbage = problems_of("cluster: {name: a}\n---\ngarbage: [\n");
  REQUIRE(garbage.size() == 1);
  CHECK(garbage[0].rfind("cluster.yaml:", 0) == 0);
  CHECK(garbage[0].find("YAML syntax error") != std::string::npos);
  // yaml-cpp names the bad escape character itself; a raw newline there stays escaped (found by
  // tests/fuzz/fuzz_spec).
  Lines bad_escape = problems_of("cluster: {name: \"a\\\x01\"}\n");
  REQUIRE(bad_escape.size() == 1);
  CHECK(bad_escape[0].find("YAML syntax error: unknown escape character: \\x01") != std::string::npos);
  // One document with its optional start marker is fine.
  CHECK(problems_of("---\ncluster: {name: a}\n").empty());
}

TEST_CASE("A text on which yaml-cpp's parser never ends is a problem, not a hang", "[spec][hostile]") {
  // yaml-cpp 0.7's LoadAll emits null nodes for ",le: cr" until memory runs out (found by
  // tests/fuzz/fuzz_spec); pibake bounds the parser's events instead.
  CHECK(problems_of(",le: cr\n") ==
        Lines{"cluster.yaml:1:1: the YAML parser (yaml-cpp) does not come to an end on this text: check it for stray "
              "characters such as a leading \",\", \"?\" or \"[\""});
}

TEST_CASE("An unknown key that is not a plain name is quoted, so its message stays one line", "[spec][hostile]") {
  Lines lines = problems_of(std::string("network:\n  \"a\\nb\\x00c\": 1\n"));
  REQUIRE(lines.size() == 1);
  INFO(lines[0]);
  CHECK(lines[0].find('\n') == std::string::npos);
  CHECK(lines[0].rfind("cluster.yaml:2:3: network[\"a\\nb\\x00c\"]: unknown key", 0) == 0);
}

TEST_CASE("A bad uplink interface name is quoted wherever a message names it", "[spec][hostile]") {
  // Found by tests/fuzz/fuzz_spec: the Wi-Fi check named the interface raw, and a name holding a
  // NUL and a backspace broke the one-line promise.
  Lines lines = problems_of(std::string("network:\n  uplink: {interface: \"wl\\b\\0n0\", wifi: {country: GB}}\n"));
  INFO(lines.size());
  CHECK(contains(lines, "network.uplink.wifi.ssid: is missing: the Wi-Fi uplink \"wl\\x08\\x00n0\" needs"));
  for (const std::string& l : lines) CHECK(l.find_first_of(std::string("\n\b\0", 3)) == std::string::npos);
  // The warning for a Wi-Fi uplink without a network quotes it too.
  ClusterSpec spec = default_spec();
  spec.network.uplink.interface = "wl\nx";
  spec.network.uplink.wifi.reset();
  bool warned = false;
  for (const Diagnostic& d : spec_warnings(spec)) {
    std::string line = format_diagnostic(spec, d);
    if (d.field != "network.uplink.wifi") continue;
    warned = true;
    CHECK(line.find("the gateway's \"wl\"... uplink") != std::string::npos);
  }
  CHECK(warned);
  // format_diagnostic keeps a line whole even for a message nobody quoted.
  CHECK(format_diagnostic(spec, Diagnostic{"nodes", "a\nb\x7f"}) == "nodes: a\\x0ab\\x7f");
}

TEST_CASE("Addresses that cannot work on a LAN are refused", "[spec][hostile]") {
  CHECK(problems_with([](ClusterSpec& s) { s.network.dns = {"0.0.0.0"}; }) ==
        Lines{"network.dns[0]: \"0.0.0.0\" is in the \"this network\" block 0.0.0.0/8: it cannot be a DNS server "
              "for the nodes"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.dns = {"127.0.0.53"}; }) ==
        Lines{"network.dns[0]: \"127.0.0.53\" is in the loopback block 127.0.0.0/8: it cannot be a DNS server for "
              "the nodes"});
  CHECK(contains(problems_with([](ClusterSpec& s) { s.network.dns = {"255.255.255.255"}; }), "reserved block"));
  CHECK(contains(problems_with([](ClusterSpec& s) { s.network.dns = {"224.0.0.251"}; }), "multicast block"));
  CHECK(problems_with([](ClusterSpec& s) { s.network.dns = {"10.0.0.255"}; }) ==
        Lines{"network.dns[0]: \"10.0.0.255\" is the broadcast address of network.subnet 10.0.0.0/24"});
  CHECK(problems_with([](ClusterSpec& s) { s.network.dns = {"1.1.1.1", "10.0.0.1"}; }).empty());

  auto subnet_problems = [](const std::string& subnet, const std::string& range) {
    return problems_of("network: {subnet: " + subnet + ", dhcp_range: " + range + "}\n");
  };
  CHECK(subnet_problems("127.0.0.0/24", "127.0.0.100-127.0.0.200") ==
        Lines{"cluster.yaml:1:19: network.subnet: \"127.0.0.0/24\" overlaps the loopback block 127.0.0.0/8: those "
              "addresses cannot be used on a network"});
  CHECK(contains(subnet_problems("224.1.2.0/24", "224.1.2.100-224.1.2.200"), "multicast block 224.0.0.0/4"));
  CHECK(contains(subnet_problems("255.255.255.0/24", "255.255.255.100-255.255.255.200"), "255.255.255.255"));
  CHECK(contains(subnet_problems("0.0.0.0/0", "10.0.0.100-10.0.0.200"), "overlaps the \"this network\" block"));
  CHECK(contains(problems_of("kubernetes: {pod_cidr: 224.0.0.0/16}\n"),
                 "kubernetes.pod_cidr: \"224.0.0.0/16\" overlaps"));
  CHECK(contains(problems_of("kubernetes: {service_cidr: 127.96.0.0/12}\n"), "kubernetes.service_cidr"));
}

TEST_CASE("Wi-Fi values netplan cannot carry are refused and lengths count characters", "[spec][hostile]") {
  auto with_wifi = [](WifiSpec wifi) { return problems_with([&](ClusterSpec& s) { s.network.uplink.wifi = wifi; }); };
  CHECK(with_wifi({"home\nnet", "correct horse", "GB"}) ==
        Lines{"network.uplink.wifi.ssid: \"home\"... holds a control character or is not UTF-8 text: netplan's YAML "
              "cannot carry it"});
  CHECK(contains(with_wifi({std::string("ho\x01me"), "correct horse", "GB"}), "holds a control character"));
  CHECK(contains(with_wifi({std::string("ho\x7fme"), "correct horse", "GB"}), "holds a control character"));
  CHECK(contains(with_wifi({std::string("caf\xe9"), "correct horse", "GB"}), "not UTF-8"));  // Latin-1
  // The passphrase is never quoted, even when refused.
  Lines bad_pass = with_wifi({"home", "correct\thorse", "GB"});
  CHECK(bad_pass == Lines{"network.uplink.wifi.password: holds a control character or is not UTF-8 text: netplan's "
                          "YAML cannot carry it"});
  // Eight characters in UTF-8 are more than eight bytes: WPA counts characters.
  CHECK(with_wifi({"home", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "GB"}).empty());
  CHECK(with_wifi({"home", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "GB"}) ==
        Lines{"network.uplink.wifi.password: has 7 characters: a WPA passphrase has 8 to 63 (leave it empty for an "
              "open network)"});
  std::string sixty_two_accents;
  for (int i = 0; i < 62; ++i) sixty_two_accents += "\xc3\xa9";
  CHECK(with_wifi({"home", sixty_two_accents, "GB"}) ==
        Lines{"network.uplink.wifi.password: has 62 characters but 124 bytes in UTF-8: wpa_supplicant takes at most "
              "63 bytes"});
  // An SSID of 16 two-byte characters is 32 octets: allowed.
  std::string accents16;
  for (int i = 0; i < 16; ++i) accents16 += "\xc3\xa9";
  CHECK(with_wifi({accents16, "correct horse", "GB"}).empty());
}

TEST_CASE("An error echoes at most one line of a value and never private key material", "[spec][hostile]") {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
      "-----END OPENSSH PRIVATE KEY-----\n";
  // Pasted into a field that is not a key at all: the message does not print it.
  for (const char* field : {"cluster: {name: ", "cluster: {domain: ", "access: {user: ", "kubernetes: {cni: "}) {
    std::string yaml = std::string(field) + yaml_quote(key) + "}\n";
    Lines problems = problems_of(yaml);
    INFO(yaml);
    REQUIRE(!problems.empty());
    for (const std::string& p : problems) {
      CHECK(p.find("b3BlbnNzaC1rZXktdjEAAAAABG5") == std::string::npos);
      CHECK(p.find("(private key material, not shown)") != std::string::npos);
    }
  }
  // A long or multi-line value is cut to one line of at most 80 characters of the value.
  Lines long_name = problems_of("cluster: {name: \"" + std::string(500, 'X') + "\"}\n");
  REQUIRE(long_name.size() == 1);
  CHECK(long_name[0].find(std::string(80, 'X') + "\"...") != std::string::npos);
  CHECK(long_name[0].find(std::string(81, 'X')) == std::string::npos);
  Lines two_lines = problems_of("cluster: {name: \"first line\\nsecond line\"}\n");
  REQUIRE(two_lines.size() == 1);
  CHECK(two_lines[0].find("\"first line\"...") != std::string::npos);
  CHECK(two_lines[0].find("second") == std::string::npos);
}

}  // namespace
}  // namespace pibake
