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
      pread_exact(fd.get(), buf.data(), n, pos, path);
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

std::string written_record_path(const std::string& image_path) { return hidden_name_beside(image_path, ".ranges"); }
std::string in_place_image_path(const std::string& image_path) { return hidden_name_beside(image_path, ".in-place"); }
std::string in_place_journal_path(const std::string& image_path) { return hidden_name_beside(image_path, ".undo"); }
std::string previous_bmap_path(const std::string& image_path) {
  return hidden_name_beside(image_path, ".bmap.in-place");
}

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

namespace {

// The final paths of the images under their in-place name in `dir` (whether or not the final
// name exists too), in name order; `names` gets every entry's name, sorted.
std::vector<std::string> images_under_in_place_names(const std::string& dir, std::vector<std::string>& names) {
  std::error_code ec;
  names.clear();
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) names.push_back(entry.path().filename());
  if (ec) throw Error("cannot list " + dir + ": " + ec.message());
  std::sort(names.begin(), names.end());
  std::vector<std::string> images;
  for (const std::string& name : names) {
    if (!name.starts_with(".") || !name.ends_with(".img.in-place")) continue;
    images.push_back(dir + "/" + name.substr(1, name.size() - 1 - std::strlen(".in-place")));
  }
  return images;
}

std::string mid_regenerate_text(const std::string& image, const std::string& dir) {
  return image + " is missing: a pibake build is regenerating it in place, or was killed doing so (it waits as " +
         base_name(in_place_image_path(image)) + "); run pibake build into " + dir +
         " again (or wait for the running one) and it is put back";
}

}  // namespace

std::vector<std::string> images_mid_regenerate(const std::string& dir) {
  std::vector<std::string> names, missing;
  for (const std::string& image : images_under_in_place_names(dir, names))
    if (!path_exists(image)) missing.push_back(image);
  return missing;
}

void require_not_mid_regenerate(const std::string& image_path) {
  if (path_exists(image_path) || !path_exists(in_place_image_path(image_path))) return;
  const std::string dir = std::filesystem::path(image_path).parent_path().string();
  throw Error(mid_regenerate_text(image_path, dir.empty() ? "." : dir));
}

void recover_in_place_writes(const std::string& dir) {
  std::vector<std::string> names;
  const std::vector<std::string> under_edit = images_under_in_place_names(dir, names);
  auto ours = [](const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid();
  };
  // Images under their in-place name: a build was killed while editing them.
  for (const std::string& image : under_edit) {
    const std::string editing = in_place_image_path(image), journal = in_place_journal_path(image),
                      previous_bmap = previous_bmap_path(image), final_bmap = bmap_path_for(image);
    if (!ours(editing)) continue;
    if (path_exists(image)) {
      // An image under the final name too: not left by pibake's own steps (the rename back is
      // atomic); the final one is kept.
      unlink(editing.c_str());
      fmt::print("removed {}, left by an earlier build that was killed\n", editing);
      continue;
    }
    // Roll back, then check against the previous block map (kept under its in-place name, or
    // still under its final one when the kill came before the edit's end). An I/O error stops
    // here and removes nothing: the next build tries again.
    std::string why;
    try {
      if (ours(journal)) roll_back_journal(editing, journal);
      why = mismatch_with_bmap(editing, path_exists(previous_bmap) ? previous_bmap : final_bmap);
    } catch (const MalformedJournal& e) {
      why = e.what();
    } catch (const Error& e) {
      throw Error("cannot put back " + image + ", which an earlier build was editing when it was killed: " + e.what() +
                  "; nothing was removed, and the next build into " + dir + " tries again");
    }
    if (why.empty()) {
      if (path_exists(previous_bmap)) {
        if (path_exists(final_bmap)) {
          unlink(previous_bmap.c_str());  // the same file under two names
        } else if (rename(previous_bmap.c_str(), final_bmap.c_str()) != 0) {
          throw Error("cannot put back " + final_bmap + ": " + std::strerror(errno));
        }
      }
      if (rename(editing.c_str(), image.c_str()) != 0)
        throw Error("cannot put back " + image + ": " + std::strerror(errno));
      fsync_directory(dir);
      fmt::print("put back {} as it was before an earlier build was killed while regenerating it\n", image);
    } else {
      unlink(editing.c_str());
      unlink(final_bmap.c_str());  // it described the image just removed
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
      if (ours(path) && !path_exists(in_place_image_path(image))) unlink(path.c_str());
    }
  }
}

}  // namespace pibake
