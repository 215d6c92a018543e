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

// Per package set name ("gateway", "node"): the .debs its nodes get on the card. A set pinned in
// `lock` for the same request and dpkg status is taken from the lock with no apt run; otherwise
// apt (apt-get update: InRelease verified against the Ubuntu archive keys pibake carries and
// packages.keyring, the Packages indices against its hashes; apt-get install --print-uris:
// the closure) resolves it and `lock` gains it. Every .deb is fetched through `cache` and checked
// against the index's sha256. Throws pibake::Error naming the index, the package or the missing
// tool (apt-get); `offline` with a set not pinned is an error naming `pibake fetch`. A set whose
// packages are all installed needs no archive at all.
std::map<std::string, std::vector<ResolvedDeb>> fetch_packages(const ClusterSpec& spec, const PackageBase& base,
                                                               LockFile& lock, Cache& cache, Fetcher& fetcher,
                                                               bool offline);

// Whether the archive's indices, as apt sees them for `base`, hold a package named `name` for
// arm64: for choosing between packages by what the release has (the DHCP server, issue 12).
// Runs apt-get update like fetch_packages; throws as it does.
bool archive_has_package(const ClusterSpec& spec, const PackageBase& base, const std::string& name);

}  // namespace pibake
