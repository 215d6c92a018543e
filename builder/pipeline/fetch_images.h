// fetch, for the container images: every image any node of the spec runs (node_images), pulled
// for linux/arm64 through the lock file into the cache, and written as the OCI archives the cards
// carry (docs/images.md).
#pragma once

#include <string>
#include <vector>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/artifacts.h"
#include "plan/images.h"
#include "spec/spec.h"

namespace pibake {

// Pulls every image the spec's nodes run (the control plane's list and the workers', once each),
// by the digest `lock` pins when it pins one, else by tag; `lock` gains a pin for each image
// pulled anew. Then makes each image's archive (write_oci_archive) in the cache's oci/ directory,
// named by its reference, manifest digest and kOciArchiveFormat; made from the verified blobs
// unless an earlier run made it and it is unchanged since (recorded_sha256). Throws pibake::Error
// naming the image on any failure (RegistryClient::pull); with `offline`, one the cache lacks.
std::vector<ImageArchive> fetch_images(const ClusterSpec& spec, LockFile& lock, Cache& cache, Fetcher& fetcher,
                                       bool offline);

}  // namespace pibake
