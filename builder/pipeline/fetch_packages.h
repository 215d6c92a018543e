// fetch, for first boot's .deb packages (docs/packages.md): apt resolves each node set's missing
// packages against the base image's dpkg status in a private, unprivileged configuration; pibake
// downloads the .debs into the cache, checked against the archive's signed index, and pins them
// in the lock file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/artifacts.h"
#include "plan/os_release.h"
#include "plan/packages.h"
#include "spec/spec.h"

namespace pibake {

// The base image facts resolution needs.
struct PackageBase {
  OsRelease os;             // its VERSION_CODENAME names the archive's suites
  std::string dpkg_status;  // its /var/lib/dpkg/status
};

// What the package step gives the plan.
struct FetchedPackages {
  // The gateway's DHCP server. `network.dhcp_server: auto` is decided by the archive when the
  // gateway's set is resolved (choose_dhcp_server with whether the archive lists isc-dhcp-server)
  // and then kept through the lock (the DHCP package the pinned set requests); by the release
  // alone when the base already has that server. An explicit setting is taken as it is.
  DhcpServer dhcp_server = DhcpServer::kIscDhcpServer;
  // Per package set name ("gateway", "node"): the .debs its nodes get on the card.
  std::map<std::string, std::vector<ResolvedDeb>> debs;
};

// The first-boot packages. A set pinned in `lock` for the same request and dpkg status is taken
// from the lock with no apt run; otherwise apt (apt-get update: InRelease verified against the
// Ubuntu archive keys pibake carries and packages.keyring, the Packages indices against its
// hashes; apt-get install --print-uris: the closure) resolves it and `lock` gains it. Every .deb
// is fetched through `cache` and checked against the index's sha256. Throws pibake::Error naming
// the index, the package or the missing tool (apt-get); `offline` with a set not pinned is an
// error naming `pibake fetch`. A set whose packages are all installed needs no archive at all.
FetchedPackages fetch_packages(const ClusterSpec& spec, const PackageBase& base, LockFile& lock, Cache& cache,
                               Fetcher& fetcher, bool offline);

}  // namespace pibake
