// Validation of network.uplink: the gateway node's interface to the outside world and, for a
// Wi-Fi uplink, the network it joins. Rules listed in docs/spec.md.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

#include "spec/spec_internal.h"

namespace pibake::spec_detail {
namespace {

// IFNAMSIZ is 16 including the terminating NUL.
constexpr size_t kMaxInterfaceName = 15;
// IEEE 802.11: an SSID is 0..32 octets; WPA passphrases are 8..63 characters.
constexpr size_t kMaxSsid = 32;
constexpr size_t kMinPassphrase = 8;
constexpr size_t kMaxPassphrase = 63;

bool is_interface_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxInterfaceName || s == "." || s == "..") return false;
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '/' || c == ':' || static_cast<unsigned char>(c) <= ' '; });
}

bool is_country_code(std::string_view s) {
  return s.size() == 2 && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// Codes people write for a country whose ISO 3166-1 code (the one the regulatory database uses)
// differs: the United Kingdom's "UK" (an ISO exceptional reservation) and Greece's "EL" (the EU's
// own abbreviation).
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kCountrySlips = {{{"UK", "GB"}, {"EL", "GR"}}};

// The regulatory domain must be one the kernel's wireless regulatory database knows, or
// cfg80211 ignores it and the radio stays on the restrictive world domain.
std::string unknown_country_message(const std::string& country) {
  for (const auto& [slip, iso] : kCountrySlips) {
    if (country == slip) {
      return fmt::format(
          "{} is not a country of the wireless regulatory database: did you mean \"{}\" (its ISO "
          "3166-1 code)?",
          quote(country), iso);
    }
  }
  return fmt::format(
      "{} is not a country of the wireless regulatory database (wireless-regdb {}): use the ISO "
      "3166-1 alpha-2 code of the country the gateway is in, like GB",
      quote(country), regdb_version());
}

void check_wifi(const WifiSpec& wifi, const std::string& interface, Problems& out) {
  if (wifi.ssid.empty()) {
    out.push_back({"network.uplink.wifi.ssid",
                   fmt::format("is missing: the Wi-Fi uplink {} needs the network's name", interface)});
  } else if (wifi.ssid.size() > kMaxSsid) {
    out.push_back({"network.uplink.wifi.ssid", fmt::format("{} is {} bytes long: an SSID has at most {}",
                                                           quote(wifi.ssid), wifi.ssid.size(), kMaxSsid)});
  }
  if (wifi.country.empty()) {
    out.push_back(
        {"network.uplink.wifi.country", "is missing: Wi-Fi needs the regulatory domain's country code, like GB"});
  } else if (!is_country_code(wifi.country)) {
    out.push_back({"network.uplink.wifi.country", quote(wifi.country) +
                                                      " is not a country code: use two upper-case letters "
                                                      "(ISO 3166-1 alpha-2), like GB"});
  } else if (!is_regdb_country(wifi.country)) {
    out.push_back({"network.uplink.wifi.country", unknown_country_message(wifi.country)});
  }
  // The passphrase is never quoted: messages end up in terminals and logs.
  size_t n = wifi.password.size();
  if (n != 0 && (n < kMinPassphrase || n > kMaxPassphrase)) {
    out.push_back(
        {"network.uplink.wifi.password", fmt::format("has {} characters: a WPA passphrase has {} to {} (leave it empty "
                                                     "for an open network)",
                                                     n, kMinPassphrase, kMaxPassphrase)});
  }
}

}  // namespace

void validate_uplink(const ClusterSpec& spec, Problems& out) {
  const UplinkSpec& up = spec.network.uplink;
  bool wifi_interface = starts_with(up.interface, "wl");
  if (up.interface.empty()) {
    out.push_back({"network.uplink.interface", "is empty"});
  } else if (up.interface == "eth0") {
    out.push_back({"network.uplink.interface",
                   "\"eth0\" is the cluster network: the uplink must be another interface (wlan0, "
                   "eth1, ...)"});
  } else if (!is_interface_name(up.interface)) {
    out.push_back({"network.uplink.interface", quote(up.interface) + " is not a network interface name"});
  }
  if (up.wifi && !wifi_interface) {
    out.push_back({"network.uplink.wifi",
                   "is set, but " + quote(up.interface) + " is not a Wi-Fi interface (their names start with \"wl\")"});
  } else if (up.wifi) {
    check_wifi(*up.wifi, up.interface, out);
  }
}

}  // namespace pibake::spec_detail
