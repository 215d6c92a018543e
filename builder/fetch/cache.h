// The download cache ($XDG_CACHE_HOME/pibake): content-addressed blobs that enter only after their
// sha256 matched, resumable partial downloads, small checksum files, decompressed base images.
#pragma once

#include <string>

#include "fetch/fetcher.h"

namespace pibake {

class Cache {
 public:
  explicit Cache(std::string dir);
  static std::string default_dir();  // $XDG_CACHE_HOME/pibake, else ~/.cache/pibake
  const std::string& dir() const { return dir_; }

  std::string blob_path(const std::string& sha256) const;  // dir/sha256/<hex>
  bool has_blob(const std::string& sha256) const;

  // Returns the cached blob for `sha256`, downloading `source` (a URL, or a local path / file://)
  // first when absent. The file enters the cache only when its sha256 matches; a mismatch throws
  // naming the source and both hashes, and keeps nothing. `offline` forbids the network: a missing
  // blob is an error naming `what`.
  std::string get_blob(Fetcher& fetcher, const std::string& source, const std::string& sha256, bool offline,
                       const std::string& what);

  // A small text file (SHA256SUMS, *.sha256) fetched once and kept by URL, so a later --offline
  // build can still read it. Not verified: it is the thing checksums come from.
  std::string get_text(Fetcher& fetcher, const std::string& source, bool offline, const std::string& what);

  // Forgets a cached text that turned out useless (a checksum file without the wanted entry:
  // a captive portal's page, say), so the next run fetches it again.
  void drop_text(const std::string& source);

  // The raw image decompressed (sparse) from the .xz file `xz_path` whose sha256 is `xz_sha256`,
  // made on first use and kept as images/<xz_sha256>.img.
  std::string decompressed_image(const std::string& xz_path, const std::string& xz_sha256);

 private:
  std::string dir_;
};

// sha256 of a file's content, hex.
std::string sha256_file(const std::string& path);

}  // namespace pibake
