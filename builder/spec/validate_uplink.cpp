// Validation of network.uplink: the gateway node's interface to the outside world and, for a
// Wi-Fi uplink, the network it joins. Rules listed in docs/spec.md.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
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

// The number of characters (Unicode code points) in `s`, or nullopt when `s` is not valid UTF-8
// (a YAML file is Unicode text: netplan and cloud-init cannot carry anything else) or holds a
// control character (C0, DEL or C1), which YAML forbids unescaped and no Wi-Fi UI can type.
std::optional<size_t> printable_characters(std::string_view s) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++count) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    size_t length = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (length == 0 || i + length > s.size()) return std::nullopt;
    uint32_t cp = length == 1 ? c : c & (0x7f >> length);
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xc0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[length] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return std::nullopt;
    i += length;
  }
  return count;
}

void check_wifi(const WifiSpec& wifi, const std::string& interface, Problems& out) {
  if (wifi.ssid.empty()) {
    out.push_back({"network.uplink.wifi.ssid",
                   fmt::format("is missing: the Wi-Fi uplink {} needs the network's name", quote(interface))});
  } else if (!printable_characters(wifi.ssid)) {
    out.push_back({"network.uplink.wifi.ssid", quote(wifi.ssid) +
                                                   " holds a control character or is not UTF-8 text: netplan's "
                                                   "YAML cannot carry it"});
  } else if (wifi.ssid.size() > kMaxSsid) {
    // IEEE 802.11 counts an SSID in octets: "é" takes two of the 32.
    out.push_back({"network.uplink.wifi.ssid", fmt::format("{} is {} bytes long in UTF-8: an SSID has at most {}",
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
  if (wifi.password.empty()) return;
  std::optional<size_t> n = printable_characters(wifi.password);
  if (!n) {
    out.push_back({"network.uplink.wifi.password",
                   "holds a control character or is not UTF-8 text: netplan's YAML cannot carry it"});
  } else if (*n < kMinPassphrase || *n > kMaxPassphrase) {
    out.push_back(
        {"network.uplink.wifi.password", fmt::format("has {} characters: a WPA passphrase has {} to {} (leave it empty "
                                                     "for an open network)",
                                                     *n, kMinPassphrase, kMaxPassphrase)});
  } else if (wifi.password.size() > kMaxPassphrase) {
    // wpa_supplicant hashes the passphrase's bytes and takes at most 63 of them.
    out.push_back({"network.uplink.wifi.password",
                   fmt::format("has {} characters but {} bytes in UTF-8: wpa_supplicant takes at most {} bytes", *n,
                               wifi.password.size(), kMaxPassphrase)});
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
