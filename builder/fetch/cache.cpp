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

// Records that `path` had content `sha256` as of now: "<sha256> <identity>".
void record_verified(const std::string& path, const std::string& sha256) {
  write_file_atomic(record_path(path), sha256 + " " + file_identity(path) + "\n", 0644);
}

// True when `path` is still the file whose content was recorded as `sha256`, checking by
// identity first and by hashing it again only when that changed (then re-recorded).
bool still_verified(const std::string& path, const std::string& sha256) {
  std::string record;
  try {
    if (read_file_if_exists(record_path(path), record, 4096) && record == sha256 + " " + file_identity(path) + "\n") {
      return true;
    }
  } catch (const Error&) {
    // An unreadable record: hash again.
  }
  if (sha256_file(path) != sha256) return false;
  record_verified(path, sha256);
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
    record_verified(blob, sha256);
    return blob;
  }
  if (offline) {
    throw Error(
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
  record_verified(blob, sha256);
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
    throw Error(fmt::format(
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
  record_verified(out, sha);
  return out;
}

}  // namespace pibake
