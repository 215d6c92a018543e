// Which DHCP server the gateway runs on the cluster network: ISC DHCP (isc-dhcp-server, seed 001)
// or its successor ISC Kea (kea-dhcp4-server). docs/overlays.md, "DHCP server", has the rule and
// its sources.
#pragma once

#include <optional>
#include <string_view>

#include "plan/os_release.h"

namespace pibake {

enum class DhcpServer { kIscDhcpServer, kKea };

// The Debian/Ubuntu package, its systemd service, and the template tree under dhcp/ that
// configures it ("dhcp/isc-dhcp-server": /etc/dhcp/dhcpd.conf; "dhcp/kea": /etc/kea/kea-dhcp4.conf).
struct DhcpServerFacts {
  std::string_view name;     // as `network.dhcp_server` spells it: "isc-dhcp-server", "kea"
  std::string_view package;  // "isc-dhcp-server", "kea-dhcp4-server"
  std::string_view service;  // "isc-dhcp-server.service", "kea-dhcp4-server.service"
  std::string_view tree;     // "dhcp/isc-dhcp-server", "dhcp/kea"
};
const DhcpServerFacts& dhcp_server_facts(DhcpServer server);

// The newest Ubuntu release known to ship isc-dhcp-server (in universe: packages.ubuntu.com,
// resolute, isc-dhcp-server 4.4.3-P1-4ubuntu2, arm64) and the newest Debian release (trixie).
inline constexpr std::string_view kNewestUbuntuWithIscDhcp = "26.04";
inline constexpr std::string_view kNewestDebianWithIscDhcp = "13";

// The gateway's DHCP server.
//   setting: `network.dhcp_server` ("auto", "isc-dhcp-server" or "kea"; validated by the spec).
//   release: the base image's os-release (empty when not known yet, as in --dry-run before the
//     base is fetched).
//   archive_has_isc: whether the release's package archive has isc-dhcp-server for arm64, when
//     that has been looked up; it then decides `auto` alone.
// "isc-dhcp-server" and "kea" are taken as they are. `auto` is isc-dhcp-server where the archive
// has it (archive_has_isc true), Kea where it has not (false); without an answer from the archive
// it goes by the release: isc-dhcp-server up to Ubuntu kNewestUbuntuWithIscDhcp and Debian
// kNewestDebianWithIscDhcp, Kea for a newer Ubuntu or Debian (ISC ended isc-dhcp's maintenance in
// 2022 and Ubuntu lists it as unsupported since 24.04: a later release may drop it), and
// isc-dhcp-server (seed 001's choice) for an unknown or other release. Never throws.
DhcpServer choose_dhcp_server(std::string_view setting, const OsRelease& release,
                              std::optional<bool> archive_has_isc = std::nullopt);

}  // namespace pibake
