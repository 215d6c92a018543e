// Regenerating a node's image in place: its record, the base's ranges put back, and the
// recovery after a kill (in_place.h).
#include "pipeline/in_place.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "image/undo_journal.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr const char* kRecordHeader = "pibake-written-ranges 1";
constexpr uint64_t kChunk = 1ull << 20;  // bytes compared or copied at a time

// "<dir>/.<name><suffix>" for "<dir>/<name>".
std::string hidden_beside(const std::string& image_path, const char* suffix) {
  size_t slash = image_path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : image_path.substr(0, slash + 1);
  return dir + "." + base_name(image_path) + suffix;
}

void read_exact(int fd, void* buf, size_t n, uint64_t offset, const std::string& name) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t got = pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(name + ": read error: " + std::strerror(errno));
    if (got == 0) throw Error(name + ": unexpected end of file at byte " + std::to_string(offset));
    p += got, offset += static_cast<uint64_t>(got), n -= static_cast<size_t>(got);
  }
}

void write_exact(int fd, const void* buf, size_t n, uint64_t offset, const std::string& name) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t put = pwrite(fd, p, n, static_cast<off_t>(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) throw Error(name + ": write error: " + std::strerror(put < 0 ? errno : EIO));
    p += put, offset += static_cast<uint64_t>(put), n -= static_cast<size_t>(put);
  }
}

bool all_zero(const std::vector<char>& buf, size_t n) {
  return std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), [](char c) { return c == 0; });
}

void fsync_dir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || fsync(fd.get()) != 0) throw Error("cannot sync directory " + dir + ": " + std::strerror(errno));
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Empty when the image at `path` holds exactly what `bmap_path`'s block map says in every mapped
// range (each range's SHA-256), else why not.
std::string mismatch_with_bmap(const std::string& path, const std::string& bmap_path) {
  std::string text;
  if (!read_file_if_exists(bmap_path, text)) return "its block map " + bmap_path + " is missing";
  Bmap bmap = parse_bmap(text, bmap_path);
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || fstat(fd.get(), &st) != 0) return std::strerror(errno);
  if (static_cast<uint64_t>(st.st_size) != bmap.image_size) return "its size is not its block map's";
  std::vector<char> buf(kChunk);
  for (const BmapRange& r : bmap.ranges) {
    Sha256 hash;
    const uint64_t end = r.byte_end(bmap.block_size, bmap.image_size);
    for (uint64_t pos = r.byte_start(bmap.block_size); pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      read_exact(fd.get(), buf.data(), n, pos, path);
      hash.update(buf.data(), n);
      pos += n;
    }
    if (!r.sha256.empty() && hash.hex_digest() != r.sha256) {
      return fmt::format("blocks {}-{} differ from its block map", r.first, r.last);
    }
  }
  return "";
}

}  // namespace

std::string written_record_path(const std::string& image_path) { return hidden_beside(image_path, ".ranges"); }
std::string in_place_image_path(const std::string& image_path) { return hidden_beside(image_path, ".in-place"); }
std::string in_place_journal_path(const std::string& image_path) { return hidden_beside(image_path, ".undo"); }
std::string in_place_bmap_path(const std::string& image_path) { return hidden_beside(image_path, ".bmap.in-place"); }

void write_written_record(const std::string& image_path, const std::string& base_identity,
                          const std::vector<ByteRange>& ranges) {
  const std::string image_identity = file_identity(image_path);
  if (image_identity.empty()) throw Error("cannot read " + image_path + ": " + std::strerror(errno));
  std::string text = std::string(kRecordHeader) + "\nbase " + base_identity + "\nimage " + image_identity + "\n";
  for (const ByteRange& r : ranges) text += fmt::format("range {} {}\n", r.start, r.end);
  text += "end\n";
  write_file_atomic(written_record_path(image_path), text, 0600);
}

std::optional<WrittenRecord> read_written_record(const std::string& image_path, const std::string& base_identity) {
  try {
    struct stat st {};
    if (lstat(image_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) return std::nullopt;
    std::string text;
    if (!read_file_if_exists(written_record_path(image_path), text)) return std::nullopt;
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != kRecordHeader) return std::nullopt;
    WrittenRecord rec;
    if (!std::getline(in, line) || !line.starts_with("base ")) return std::nullopt;
    rec.base_identity = line.substr(5);
    if (!std::getline(in, line) || !line.starts_with("image ")) return std::nullopt;
    rec.image_identity = line.substr(6);
    if (rec.base_identity != base_identity || rec.image_identity != file_identity(st)) return std::nullopt;
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    bool ended = false;
    while (std::getline(in, line)) {
      if (line == "end") {
        ended = true;
        break;
      }
      std::istringstream fields(line);
      std::string word;
      ByteRange r;
      if (!(fields >> word >> r.start >> r.end) || word != "range" || r.start >= r.end || r.end > size ||
          (!rec.ranges.empty() && r.start < rec.ranges.back().end)) {
        return std::nullopt;
      }
      rec.ranges.push_back(r);
    }
    if (!ended) return std::nullopt;
    return rec;
  } catch (...) {
    return std::nullopt;
  }
}

uint64_t restore_base_ranges(int base_fd, const std::string& base_name, int image_fd, const std::string& image_name,
                             const std::vector<ByteRange>& ranges, UndoJournal& undo) {
  const std::vector<ByteRange> base_data = data_ranges(base_fd, base_name);
  const off_t size = lseek(image_fd, 0, SEEK_END);
  if (size < 0) throw Error("cannot seek in " + image_name + ": " + std::strerror(errno));
  std::vector<char> base_buf(kChunk), image_buf(kChunk);
  uint64_t changed = 0;
  // Each piece of [start, end) is either all base data or all base hole.
  auto restore = [&](uint64_t start, uint64_t end, bool data) {
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      read_exact(image_fd, image_buf.data(), n, pos, image_name);
      if (data) {
        read_exact(base_fd, base_buf.data(), n, pos, base_name);
        if (std::memcmp(base_buf.data(), image_buf.data(), n) != 0) {
          undo.save(pos, n);
          write_exact(image_fd, base_buf.data(), n, pos, image_name);
          changed += n;
        }
      } else {
        // The base has a hole here: so must the image (a full build's copy has one), whatever it
        // holds now. Punching is only a change when the image holds something besides zeros.
        if (!all_zero(image_buf, n)) undo.save(pos, n);
        if (fallocate(image_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(pos),
                      static_cast<off_t>(n)) != 0) {
          if (errno != EOPNOTSUPP) throw Error(image_name + ": cannot punch a hole: " + std::strerror(errno));
          std::fill(base_buf.begin(), base_buf.begin() + static_cast<std::ptrdiff_t>(n), 0);
          write_exact(image_fd, base_buf.data(), n, pos, image_name);
        }
        changed += n;
      }
      pos += n;
    }
  };
  for (const BmapRange& blocks : to_block_ranges(ranges, kBmapBlockSize)) {
    const uint64_t start = blocks.byte_start(kBmapBlockSize);
    const uint64_t end = blocks.byte_end(kBmapBlockSize, static_cast<uint64_t>(size));
    uint64_t pos = start;
    for (const ByteRange& d : base_data) {
      if (d.end <= pos) continue;
      if (d.start >= end) break;
      if (d.start > pos) restore(pos, d.start, false);
      uint64_t stop = std::min(end, d.end);
      restore(std::max(pos, d.start), stop, true);
      pos = stop;
    }
    if (pos < end) restore(pos, end, false);
  }
  return changed;
}

void recover_in_place_writes(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  auto ours = [](const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid();
  };
  // Images under their in-place name: a build was killed while editing them.
  for (const std::string& name : names) {
    if (!name.starts_with(".") || !name.ends_with(".img.in-place")) continue;
    const std::string image = dir + "/" + name.substr(1, name.size() - 1 - std::strlen(".in-place"));
    const std::string editing = in_place_image_path(image), journal = in_place_journal_path(image),
                      old_bmap = in_place_bmap_path(image);
    if (!ours(editing)) continue;
    if (exists(image)) {
      // Already replaced under its final name: this one is an older leftover.
      unlink(editing.c_str());
      fmt::print("removed {}, left by an earlier build that was killed\n", editing);
      continue;
    }
    std::string why;
    try {
      if (ours(journal)) roll_back_journal(editing, journal);
      why = mismatch_with_bmap(editing, old_bmap);
    } catch (const Error& e) {
      why = e.what();
    }
    if (why.empty()) {
      if (rename(old_bmap.c_str(), bmap_path_for(image).c_str()) != 0 || rename(editing.c_str(), image.c_str()) != 0) {
        throw Error("cannot put back " + image + ": " + std::strerror(errno));
      }
      fsync_dir(dir);
      fmt::print("put back {} as it was before an earlier build was killed while regenerating it\n", image);
    } else {
      unlink(editing.c_str());
      fmt::print("removed {}: an earlier build was killed while regenerating it, and it could not be put back ({})\n",
                 image, why);
    }
    unlink(journal.c_str());
  }
  // Journals and block maps whose image is gone or complete.
  for (const std::string& name : names) {
    for (const char* suffix : {".img.undo", ".img.bmap.in-place"}) {
      if (!name.starts_with(".") || !name.ends_with(suffix)) continue;
      const std::string path = dir + "/" + name;
      const std::string image = dir + "/" + name.substr(1, name.size() - 1 - std::strlen(suffix)) + ".img";
      if (ours(path) && !exists(in_place_image_path(image))) unlink(path.c_str());
    }
  }
}

}  // namespace pibake
