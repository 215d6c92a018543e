// The download cache ($XDG_CACHE_HOME/pibake): content-addressed blobs that enter only after their
// sha256 matched, resumable partial downloads, small checksum files, decompressed base images.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "fetch/fetcher.h"
#include "util/error.h"

namespace pibake {

// Thrown when `offline` forbids the network and the cache lacks what was asked for: the one
// failure `pibake fetch` (run while online) cures, which callers such as --dry-run tell apart
// from a file that is there but wrong.
class NotInCache : public Error {
 public:
  using Error::Error;
};

class Cache {
 public:
  explicit Cache(std::string dir);
  static std::string default_dir();  // $XDG_CACHE_HOME/pibake, else ~/.cache/pibake
  const std::string& dir() const { return dir_; }

  std::string blob_path(const std::string& sha256) const;  // dir/sha256/<hex>
  bool has_blob(const std::string& sha256) const;

  // Returns the cached blob for `sha256`, downloading `source` (a URL, or a local path / file://)
  // first when absent, at most `max_bytes` (fetcher.h's ceilings). The file enters the cache only
  // when its sha256 matches; a mismatch throws naming the source and both hashes, and keeps
  // nothing. A cached blob is handed out only while it is what was verified: its identity
  // (size, inode, ctime, mtime) is recorded when it enters, and a blob whose identity changed is
  // hashed again; a bad one is dropped and fetched again (offline: an error naming `pibake
  // fetch`). `offline` forbids the network: a missing blob is an error naming `what`. `request`
  // carries an API's headers (a registry's Accept and token); a 401 throws naming `what`.
  std::string get_blob(Fetcher& fetcher, const std::string& source, const std::string& sha256, bool offline,
                       const std::string& what, uint64_t max_bytes, const HttpRequest& request = {});

  // A small text file (SHA256SUMS, *.sha256, at most kMaxChecksumFileBytes) fetched once and kept
  // by URL, so a later --offline build can still read it. It is the thing checksums come from,
  // so it cannot be verified; instead `usable` (say, "lists a sha256 for the wanted file") is
  // asked before it is cached and again whenever the cached copy is read. An unusable text is
  // not kept (a cached one is dropped and fetched again) and throws naming `source` and `what`.
  std::string get_text(Fetcher& fetcher, const std::string& source, bool offline, const std::string& what,
                       const std::function<bool(const std::string&)>& usable);

  // Forgets the cached copy of the text at `source`, if any, so the next get_text fetches it
  // again: for a file that moves (a Kubernetes release channel) or that turned out useless.
  void drop_text(const std::string& source);

  // The raw image decompressed (sparse) from the .xz file `xz_path` whose sha256 is `xz_sha256`,
  // made on first use and kept as images/<xz_sha256>.img, with its own sha256 recorded: like a
  // blob, it is hashed again when its identity changed, and made again when it no longer matches.
  std::string decompressed_image(const std::string& xz_path, const std::string& xz_sha256);

  // `compute()`'s result (a value with no spaces or newlines: a sha256, a byte count) for the file
  // at `path`, which may lie outside the cache (a local base image), kept in the cache's
  // by-identity/ directory under `kind` and the file's identity (device, inode, size, ctime,
  // mtime: util/files.h file_identity). While that identity is unchanged the kept value is
  // returned without reading the file; otherwise, and for a record written within a second of
  // the file's last change (timestamps are coarse), `compute()` runs again. A value that cannot
  // be kept (a read-only cache) is only recomputed next time. Errors are compute()'s.
  std::string by_identity(const std::string& path, const std::string& kind,
                          const std::function<std::string()>& compute);

 private:
  std::string dir_;
};

// sha256 of a file's content, hex.
std::string sha256_file(const std::string& path);

// A file the cache made itself (an OCI archive): its sha256, recorded next to it in
// `path`.verified with its identity, so later runs need not read it again.
std::string hash_and_record(const std::string& path);

// The sha256 hash_and_record (or a verified download) recorded for `path`, while the file's
// identity is the recorded one; a record written within a second of the file's last change is
// confirmed by hashing the file again. nullopt when there is no record or the file changed since.
std::optional<std::string> recorded_sha256(const std::string& path);

}  // namespace pibake
