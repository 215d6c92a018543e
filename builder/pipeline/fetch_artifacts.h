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

// Creates the state dir (0700) when missing and refuses one that others can read.
void ensure_state_dir(const std::string& state_dir);

// Resolves and fetches every artifact of the spec. `state_dir`/lock.yaml is obeyed when present
// (a version that differs from the spec's is refused with an explanation) and written when new
// entries were resolved.
std::vector<ResolvedArtifact> fetch_artifacts(const ClusterSpec& spec, const std::string& state_dir, Cache& cache,
                                              Fetcher& fetcher, bool offline);

}  // namespace pibake
