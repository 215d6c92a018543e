// fetch, for the cluster's binaries: resolve each artifact's sha256 (the lock file first, else the
// release's checksum file), download it into the cache, and record it in the lock file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/artifacts.h"
#include "spec/spec.h"

namespace pibake {

// Resolves and fetches every artifact of the spec. `lock` is obeyed (a version that differs from
// the spec's is refused with an explanation) and gains an entry for each artifact resolved anew.
std::vector<ResolvedArtifact> fetch_artifacts(const ClusterSpec& spec, LockFile& lock, Cache& cache, Fetcher& fetcher,
                                              bool offline);

}  // namespace pibake
