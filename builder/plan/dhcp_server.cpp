// The gateway's DHCP server (see dhcp_server.h).
#include "plan/dhcp_server.h"

#include <charconv>
#include <vector>

namespace pibake {
namespace {

constexpr DhcpServerFacts kIsc = {"isc-dhcp-server", "isc-dhcp-server", "isc-dhcp-server.service",
                                  "dhcp/isc-dhcp-server"};
constexpr DhcpServerFacts kKea = {"kea", "kea-dhcp4-server", "kea-dhcp4-server.service", "dhcp/kea"};

// "26.04" as {26, 4}; empty when a part is not a number.
std::vector<int> version_parts(std::string_view text) {
  std::vector<int> parts;
  while (!text.empty()) {
    size_t dot = text.find('.');
    std::string_view part = text.substr(0, dot);
    int value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || end != part.data() + part.size()) return {};
    parts.push_back(value);
    text = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  }
  return parts;
}

// True when `version` is a release after `newest` (both VERSION_ID numbers); false when either
// does not parse.
bool newer_than(std::string_view version, std::string_view newest) {
  std::vector<int> v = version_parts(version), n = version_parts(newest);
  return !v.empty() && !n.empty() && v > n;
}

}  // namespace

const DhcpServerFacts& dhcp_server_facts(DhcpServer server) { return server == DhcpServer::kKea ? kKea : kIsc; }

DhcpServer choose_dhcp_server(std::string_view setting, const OsRelease& release, std::optional<bool> archive_has_isc) {
  if (setting == kKea.name) return DhcpServer::kKea;
  if (setting == kIsc.name) return DhcpServer::kIscDhcpServer;
  if (archive_has_isc) return *archive_has_isc ? DhcpServer::kIscDhcpServer : DhcpServer::kKea;
  if ((release.id == "ubuntu" && newer_than(release.version_id, kNewestUbuntuWithIscDhcp)) ||
      (release.id == "debian" && newer_than(release.version_id, kNewestDebianWithIscDhcp))) {
    return DhcpServer::kKea;
  }
  return DhcpServer::kIscDhcpServer;
}

}  // namespace pibake
