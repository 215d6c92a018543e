// Fetching the cluster's binaries with the lock file (see fetch_artifacts.h).
#include "pipeline/fetch_artifacts.h"

#include <sys/stat.h>

#include <fmt/format.h>
#include <charconv>
#include <string>

#include "codec/archive.h"
#include "plan/checksums.h"
#include "plan/mirrors.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {

std::vector<ResolvedArtifact> fetch_artifacts(const ClusterSpec& spec, LockFile& lock, Cache& cache, Fetcher& fetcher,
                                              bool offline) {
  std::vector<ResolvedArtifact> out;
  for (const ArtifactSource& src : artifact_sources(spec)) {
    ResolvedArtifact r;
    r.source = src;
    if (const LockedArtifact* locked = lock.find(src.name)) {
      if (locked->version != src.version) {
        throw Error(
            fmt::format("{} pins {} {} but the spec asks for {}: the running cluster was built with the pinned one. "
                        "To upgrade, remove the \"{}\" entry from {} and rebuild every node",
                        "the lock file", src.name, locked->version, src.version, src.name, "pibake-state/lock.yaml"));
      }
      r.source.url = locked->url;
      r.sha256 = locked->sha256;
    } else {
      const std::string sums_url = apply_mirrors(src.checksum_url, spec.mirrors);
      const std::string name = base_name(src.url);
      std::string sums = cache.get_text(fetcher, sums_url, offline, "the checksum of " + src.name + " " + src.version,
                                        [&](const std::string& t) { return find_sha256(t, name).has_value(); });
      r.sha256 = *find_sha256(sums, name);
      lock.artifacts.push_back({src.name, src.version, src.url, r.sha256});
    }
    r.path = cache.get_blob(fetcher, apply_mirrors(r.source.url, spec.mirrors), r.sha256, offline,
                            src.name + " " + src.version, kMaxArtifactBytes);
    if (src.archive) {
      // Reading a tarball's sizes means decompressing all of it: done once per blob (and prefix).
      const std::string kept = cache.by_identity(r.path, "install-bytes " + src.member_prefix, [&] {
        return std::to_string(archive_install_bytes(r.path, src.member_prefix));
      });
      auto [end, ec] = std::from_chars(kept.data(), kept.data() + kept.size(), r.install_bytes);
      if (ec != std::errc() || end != kept.data() + kept.size()) {
        r.install_bytes = archive_install_bytes(r.path, src.member_prefix);  // a damaged record
      }
    } else {
      struct stat st {};
      if (stat(r.path.c_str(), &st) == 0) r.install_bytes = static_cast<uint64_t>(st.st_size);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace pibake
