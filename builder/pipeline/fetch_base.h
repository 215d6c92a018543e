// fetch, for the base image: a local .img, a local .img.xz, or a URL (mirrors applied, sha256 from
// the spec or the release's SHA256SUMS), cached and decompressed once.
#pragma once

#include <string>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/artifacts.h"
#include "spec/spec.h"

namespace pibake {

// The checks of the base image that need no download (part of the build's preflight): a source is
// given, and a local one is an existing regular file pibake can read. Throws pibake::Error naming it.
void check_base_image_source(const ClusterSpec& spec, const std::string& override_source);

// Returns the path of a raw image to build from. `override_source` is --base-image (empty: the
// spec's base_image). A downloaded image is pinned in `lock` (entry "base_image": the source as
// written, the file's URL and sha256), so a node regenerated later gets the same image even after
// a new point release. A source ending in "/" is a release folder: the newest raspi server image
// its SHA256SUMS lists. Throws pibake::Error naming the source on any failure.
std::string obtain_base_image(const ClusterSpec& spec, const std::string& override_source, bool offline, Cache& cache,
                              Fetcher& fetcher, LockFile* lock = nullptr);

}  // namespace pibake
