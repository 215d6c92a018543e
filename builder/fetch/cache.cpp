// The download cache (see cache.h). Layout under the cache dir:
//   sha256/<hex>          verified blobs (downloads), named by their content's sha256
//   partial/<hex>.part    interrupted downloads of the blob <hex>, resumed on the next run
//   text/<sha256(url)>    checksum files, by URL
//   images/<hex>.img      raw images decompressed from the .xz blob <hex>
#include "fetch/cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "codec/xz.h"
#include "plan/mirrors.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create cache directory " + dir + ": " + ec.message());
}

std::string record_path(const std::string& path) { return path + ".verified"; }

// A record older than this after the file's last change is trusted. Timestamps are coarse (a
// clock tick), so a file changed in the same tick as it was read keeps its identity: a record
// written within this window of the file's ctime is "racily clean" (git's term, racy-git.txt)
// and the file is read again.
constexpr double kRacyWindowSeconds = 1.0;

double seconds(const timespec& t) { return static_cast<double>(t.tv_sec) + t.tv_nsec / 1e9; }

// The value `record` ("<value> <identity>\n") keeps for the file at `path`, when that identity is
// the file's current one; nullopt otherwise (no record, unreadable, the file changed). A racily
// clean record (kRacyWindowSeconds) gives nullopt, or with `racy` its value and *racy = true.
std::optional<std::string> read_identity_record(const std::string& record, const std::string& path, bool* racy) {
  if (racy) *racy = false;
  struct stat file {
  }, rec{};
  if (stat(path.c_str(), &file) != 0 || stat(record.c_str(), &rec) != 0) return std::nullopt;
  std::string text;
  try {
    if (!read_file_if_exists(record, text, 4096)) return std::nullopt;
  } catch (const Error&) {
    return std::nullopt;  // unreadable: as absent
  }
  const std::string tail = " " + file_identity(file) + "\n";
  if (text.size() <= tail.size() || !text.ends_with(tail)) return std::nullopt;
  std::string value = text.substr(0, text.size() - tail.size());
  if (value.find_first_of(" \n") != std::string::npos) return std::nullopt;
  if (seconds(rec.st_mtim) - seconds(file.st_ctim) < kRacyWindowSeconds) {
    if (racy == nullptr) return std::nullopt;
    *racy = true;
  }
  return value;
}

// Records in `record` that the file whose identity was `identity` (taken before it was read, so a
// change while it was read shows as a mismatch) has `value` (no spaces or newlines).
void write_identity_record(const std::string& record, const std::string& value, const std::string& identity) {
  if (identity.empty()) return;  // the file is gone: nothing to vouch for
  write_file_atomic(record, value + " " + identity + "\n", 0644);
}

}  // namespace

std::optional<std::string> recorded_sha256(const std::string& path) {
  bool racy = false;
  std::optional<std::string> sha = read_identity_record(record_path(path), path, &racy);
  if (!sha || !racy) return sha;
  // Recorded in the same clock tick as the file's last change: read it again to be sure.
  const std::string identity = file_identity(path);
  if (sha256_file(path) != *sha) return std::nullopt;
  write_identity_record(record_path(path), *sha, identity);
  return sha;
}

std::string hash_and_record(const std::string& path) {
  const std::string identity = file_identity(path);  // before reading: a change while hashing shows
  std::string sha = sha256_file(path);
  write_identity_record(record_path(path), sha, identity);
  return sha;
}

namespace {

// True when `path` is still the file whose content was recorded as `sha256`, checking by
// identity first and by hashing it again only when that changed (then re-recorded).
bool still_verified(const std::string& path, const std::string& sha256) {
  if (recorded_sha256(path) == sha256) return true;
  const std::string identity = file_identity(path);
  if (sha256_file(path) != sha256) return false;
  write_identity_record(record_path(path), sha256, identity);
  return true;
}

void drop(const std::string& path) {
  unlink(path.c_str());
  unlink(record_path(path).c_str());
}

}  // namespace

std::string sha256_file(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error(path + ": " + std::strerror(errno));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = read(fd.get(), buf.data(), buf.size())) > 0) h.update(buf.data(), static_cast<size_t>(n));
  if (n < 0) throw Error(path + ": " + std::strerror(errno));
  return h.hex_digest();
}

Cache::Cache(std::string dir) : dir_(std::move(dir)) {}

std::string Cache::default_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/pibake";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/pibake";
  throw Error("neither XDG_CACHE_HOME nor HOME is set: pibake has nowhere to keep its download cache");
}

std::string Cache::blob_path(const std::string& sha256) const { return dir_ + "/sha256/" + sha256; }

bool Cache::has_blob(const std::string& sha256) const { return exists(blob_path(sha256)); }

std::string Cache::get_blob(Fetcher& fetcher, const std::string& source, const std::string& sha256, bool offline,
                            const std::string& what, uint64_t max_bytes, const HttpRequest& request) {
  std::string blob = blob_path(sha256);
  if (exists(blob)) {
    if (still_verified(blob, sha256)) return blob;
    drop(blob);
    print_stderr(
        fmt::format("warning: the cached copy of {} ({}) no longer has sha256 {}: dropped, fetching it again\n", what,
                    blob, sha256));
  }
  make_dirs(dir_ + "/sha256");
  make_dirs(dir_ + "/partial");
  std::string part = dir_ + "/partial/" + sha256 + ".part";
  if (is_local_source(source)) {
    // A local file or a mirror directory: copied in while hashed, committed only when it matches.
    std::string path = local_path(source);
    UniqueFd in(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw Error(what + ": " + path + ": " + std::strerror(errno));
    AtomicFile out(blob, 0644);
    Sha256 h;
    std::vector<char> buf(1 << 20);
    ssize_t n;
    while ((n = read(in.get(), buf.data(), buf.size())) > 0) {
      h.update(buf.data(), static_cast<size_t>(n));
      for (ssize_t done = 0; done < n;) {
        ssize_t w = write(out.fd(), buf.data() + done, static_cast<size_t>(n - done));
        if (w <= 0) throw Error("cannot store " + blob + ": " + std::strerror(errno));
        done += w;
      }
    }
    if (n < 0) throw Error(what + ": " + path + ": " + std::strerror(errno));
    std::string got = h.hex_digest();
    if (got != sha256) {
      throw Error(fmt::format("checksum mismatch for {} ({}): expected sha256 {}, got {}", what, path, sha256, got));
    }
    out.commit();
    write_identity_record(record_path(blob), sha256, file_identity(blob));
    return blob;
  }
  if (offline) {
    throw NotInCache(
        fmt::format("{} is not in the cache ({}) and --offline forbids downloading it from {}; run "
                    "`pibake fetch` while online first",
                    what, dir_, source));
  }
  fmt::print("downloading {}\n", source);
  if (fetcher.fetch(source, part, max_bytes, request).status == 401) {
    throw Error(fmt::format("cannot download {} from {}: HTTP 401 (the server wants credentials)", what, source));
  }
  std::string got = sha256_file(part);
  if (got != sha256) {
    unlink(part.c_str());  // nothing unverified is kept, not even for resuming
    throw Error(fmt::format("checksum mismatch for {} downloaded from {}: expected sha256 {}, got {}", what, source,
                            sha256, got));
  }
  // A blob's name promises its content: on disk before the rename.
  if (UniqueFd fd(open(part.c_str(), O_RDONLY | O_CLOEXEC)); fd) fsync(fd.get());
  if (rename(part.c_str(), blob.c_str()) != 0) throw Error("cannot store " + blob + ": " + std::strerror(errno));
  write_identity_record(record_path(blob), sha256, file_identity(blob));
  return blob;
}

void Cache::drop_text(const std::string& source) {
  if (is_local_source(source)) return;
  unlink((dir_ + "/text/" + sha256_hex(source)).c_str());
}

std::string Cache::get_text(Fetcher& fetcher, const std::string& source, bool offline, const std::string& what,
                            const std::function<bool(const std::string&)>& usable) {
  auto unusable = [&](const std::string& why) {
    return Error(fmt::format("{} ({}) {}: not kept, the next run fetches it again", what, source, why));
  };
  if (is_local_source(source)) {
    std::string text = read_file(local_path(source), kMaxChecksumFileBytes);
    if (!usable(text)) throw unusable("lists no usable sha256 for it");
    return text;
  }
  make_dirs(dir_ + "/text");
  std::string path = dir_ + "/text/" + sha256_hex(source);
  if (exists(path)) {
    try {
      std::string text = read_file(path, kMaxChecksumFileBytes);
      if (usable(text)) return text;
    } catch (const Error&) {
      // Too large or unreadable: as unusable.
    }
    unlink(path.c_str());  // a bad cached copy (kept by an older pibake, or edited): fetch again
  }
  if (offline) {
    throw NotInCache(fmt::format(
        "{} ({}) is not in the cache and --offline forbids downloading it; run `pibake fetch` while online first", what,
        source));
  }
  std::string tmp = path + ".part";
  unlink(tmp.c_str());
  fetcher.fetch(source, tmp, kMaxChecksumFileBytes);
  std::string text;
  try {
    text = read_file(tmp, kMaxChecksumFileBytes);
  } catch (const Error&) {
    unlink(tmp.c_str());
    throw;
  }
  // Parsed before it is cached: a hostile or truncated list never becomes every later build's.
  if (!usable(text)) {
    unlink(tmp.c_str());
    throw unusable("lists no usable sha256 for it");
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) throw Error("cannot store " + path + ": " + std::strerror(errno));
  return text;
}

std::string Cache::decompressed_image(const std::string& xz_path, const std::string& xz_sha256) {
  std::string out = dir_ + "/images/" + xz_sha256 + ".img";
  if (exists(out)) {
    std::string record;
    // The record holds the decompressed image's own sha256 (the name is the .xz's).
    if (read_file_if_exists(record_path(out), record, 4096) && record.size() > 64 &&
        still_verified(out, record.substr(0, 64))) {
      return out;
    }
    drop(out);
    print_stderr(fmt::format("warning: the cached base image {} changed since it was made: making it again\n", out));
  }
  make_dirs(dir_ + "/images");
  fmt::print("decompressing the base image into {}\n", out);
  AtomicFile tmp(out, 0644);
  decompress_xz_sparse(xz_path, tmp.fd(), out);
  std::string sha = sha256_file(tmp.temp_path());
  tmp.commit();
  write_identity_record(record_path(out), sha, file_identity(out));
  return out;
}

std::string Cache::by_identity(const std::string& path, const std::string& kind,
                               const std::function<std::string()>& compute) {
  const std::string identity = file_identity(path);
  if (identity.empty()) return compute();  // let compute() report the missing file
  const std::string record = dir_ + "/by-identity/" + sha256_hex(kind + "\n" + identity);
  if (std::optional<std::string> value = read_identity_record(record, path, nullptr)) return *value;
  std::string value = compute();
  try {
    make_dirs(dir_ + "/by-identity");
    write_identity_record(record, value, identity);
  } catch (const Error&) {
    // Not kept (a read-only or full cache): the next run computes it again.
  }
  return value;
}

}  // namespace pibake
