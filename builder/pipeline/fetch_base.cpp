// Obtaining the base image (see fetch_base.h).
#include "pipeline/fetch_base.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "plan/checksums.h"
#include "plan/mirrors.h"
#include "util/error.h"
#include "util/files.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr const char* kLockName = "base_image";
constexpr const char* kRaspiSuffix = "-preinstalled-server-arm64+raspi.img.xz";

// The file a URL names, without its query or fragment.
std::string url_file_name(const std::string& url) { return base_name(url.substr(0, url.find_first_of("?#"))); }

// The sha256 the spec pins, else the one the release's SHA256SUMS lists for the file.
std::string expected_sha256(const ClusterSpec& spec, const std::string& url, bool from_spec, bool offline, Cache& cache,
                            Fetcher& fetcher) {
  if (from_spec && !spec.base_image.sha256.empty()) return spec.base_image.sha256;
  std::string sums_url = from_spec && !spec.base_image.sha256sums.empty()
                             ? spec.base_image.sha256sums
                             : url.substr(0, url.rfind('/') + 1) + "SHA256SUMS";
  const std::string fetched_from = apply_mirrors(sums_url, spec.mirrors);
  const std::string name = url_file_name(url);
  std::string text = cache.get_text(fetcher, fetched_from, offline, "the checksum list for " + name,
                                    [&](const std::string& t) { return find_sha256(t, name).has_value(); });
  return *find_sha256(text, name);
}

}  // namespace

void check_base_image_source(const ClusterSpec& spec, const std::string& override_source) {
  const std::string source = override_source.empty() ? spec.base_image.url : override_source;
  if (source.empty()) throw Error("no base image: set base_image.url in the spec or pass --base-image");
  if (!is_local_source(source)) return;
  const std::string path = local_path(source);
  require_regular_file(path, "base image");  // stat() only: a FIFO or device never blocks the check
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error("base image " + path + ": " + std::strerror(errno));
}

std::string obtain_base_image(const ClusterSpec& spec, const std::string& override_source, bool offline, Cache& cache,
                              Fetcher& fetcher, LockFile* lock) {
  const bool from_spec = override_source.empty();
  const std::string source = from_spec ? spec.base_image.url : override_source;
  if (source.empty()) throw Error("no base image: set base_image.url in the spec or pass --base-image");

  if (is_local_source(source)) {
    std::string path = local_path(source);
    require_regular_file(path, "base image");
    if (!path.ends_with(".xz")) {
      // A raw image is used in place; when the spec pins its hash, it is checked first.
      if (from_spec && !spec.base_image.sha256.empty()) {
        std::string got = cache.by_identity(path, "sha256", [&] { return sha256_file(path); });
        if (got != spec.base_image.sha256) {
          throw Error("checksum mismatch for the base image " + path + ": expected sha256 " + spec.base_image.sha256 +
                      ", got " + got);
        }
      }
      return path;
    }
    // A local .img.xz: decompressed once into the cache, keyed by its content (hashed once per
    // version of the file: a multi-GiB read otherwise every run).
    std::string sha = cache.by_identity(path, "sha256", [&] { return sha256_file(path); });
    if (from_spec && !spec.base_image.sha256.empty() && spec.base_image.sha256 != sha) {
      throw Error("checksum mismatch for the base image " + path + ": expected sha256 " + spec.base_image.sha256 +
                  ", got " + sha);
    }
    return cache.decompressed_image(path, sha);
  }

  std::string url = source, sha;
  const LockedArtifact* locked = lock ? lock->find(kLockName) : nullptr;
  if (locked != nullptr) {
    if (locked->version != source) {
      throw Error("the lock file pins the base image " + locked->url + " (from " + locked->version +
                  ") but the spec asks for " + source +
                  ": the cluster's nodes were built from the pinned one. To change it, remove the \"" + kLockName +
                  "\" entry from pibake-state/lock.yaml and rebuild every node");
    }
    url = locked->url;
    sha = locked->sha256;
  } else if (source.ends_with("/")) {
    // A release folder: its newest raspi server image, by the folder's own SHA256SUMS.
    const std::string sums = apply_mirrors(source + "SHA256SUMS", spec.mirrors);
    std::string text =
        cache.get_text(fetcher, sums, offline, std::string("the release's checksum list for *") + kRaspiSuffix,
                       [](const std::string& t) { return find_newest_with_suffix(t, kRaspiSuffix).has_value(); });
    auto entry = find_newest_with_suffix(text, kRaspiSuffix);
    url = source + entry->name;
    sha = from_spec && !spec.base_image.sha256.empty() ? spec.base_image.sha256 : entry->sha256;
  } else {
    sha = expected_sha256(spec, source, from_spec, offline, cache, fetcher);
  }
  if (lock != nullptr && locked == nullptr) lock->artifacts.push_back({kLockName, source, url, sha});
  std::string blob =
      cache.get_blob(fetcher, apply_mirrors(url, spec.mirrors), sha, offline, "the base image", kMaxBaseImageBytes);
  return url_file_name(url).ends_with(".xz") ? cache.decompressed_image(blob, sha) : blob;
}

}  // namespace pibake
