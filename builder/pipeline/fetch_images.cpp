// Pulling the cluster's container images with the lock file (see fetch_images.h).
#include "pipeline/fetch_images.h"

#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <optional>

#include "codec/oci_archive.h"
#include "fetch/oci.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"

namespace pibake {

std::vector<ImageArchive> fetch_images(const ClusterSpec& spec, LockFile& lock, Cache& cache, Fetcher& fetcher,
                                       bool offline) {
  std::vector<std::string> references = node_images(spec, /*control_plane=*/true);
  for (const std::string& r : node_images(spec, /*control_plane=*/false))
    if (std::find(references.begin(), references.end(), r) == references.end()) references.push_back(r);
  RegistryClient registry(cache, fetcher, spec.mirrors, offline);
  std::vector<ImageArchive> out;
  const std::string dir = cache.dir() + "/oci";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create cache directory " + dir + ": " + ec.message());
  for (const std::string& reference : references) {
    const LockedImage* pinned = lock.find_image(reference);
    PulledImage image = registry.pull(reference, pinned);
    if (pinned == nullptr) lock.images.push_back({reference, image.index_digest, image.manifest.digest});
    ImageArchive a;
    a.reference = reference;
    a.path = fmt::format("{}/{}.tar", dir,
                         sha256_hex(fmt::format("{}@{} {}", reference, image.manifest.digest, kOciArchiveFormat)));
    // Made from the verified blobs when absent or changed since it was made (its recorded
    // identity); an unchanged archive is neither written nor read again (issue 18).
    if (std::optional<std::string> sha = recorded_sha256(a.path)) {
      a.sha256 = *sha;
    } else {
      write_oci_archive(image, a.path);
      a.sha256 = hash_and_record(a.path);
    }
    struct stat st {};
    if (stat(a.path.c_str(), &st) != 0) throw Error(a.path + ": cannot read it back");
    a.size = static_cast<uint64_t>(st.st_size);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace pibake
