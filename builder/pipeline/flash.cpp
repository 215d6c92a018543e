// `pibake flash` (flash.h): source ranges (bmap, SEEK_DATA, or a decompressed stream's non-zero
// blocks) → target; fsync; read back every written range and compare its SHA-256.
#include "pipeline/flash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>

#include "codec/codec.h"
#include "image/bmap.h"
#include "pipeline/flash_progress.h"
#include "pipeline/in_place.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/text.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

// Large writes: SD cards are fastest with multi-MiB requests. Several cards at once share a budget
// (kChunkBudget / cards, at least 1 MiB), so memory stays bounded whatever the number of cards.
constexpr size_t kChunk = 8u << 20;
constexpr size_t kChunkBudget = 64u << 20;
constexpr uint64_t kBlock = kBmapBlockSize;

// A descriptor and the name messages give it.
struct Fd {
  Fd(const std::string& path, int flags, mode_t mode = 0)
      : path(path), fd(open(path.c_str(), flags | O_CLOEXEC, mode)) {
    if (!fd) {
      if (errno == EBUSY)
        throw Error("cannot open " + path + ": the device is in use (mounted, or held by another program)");
      throw Error("cannot open " + path + ": " + std::strerror(errno));
    }
  }
  int get() const { return fd.get(); }
  std::string path;
  UniqueFd fd;
};

// A range written to the target and the SHA-256 of what was written there.
struct Written {
  uint64_t start = 0, end = 0;
  std::string sha256;
};

// pwrite_exact, then writeback of those bytes started.
void pwrite_all(const Fd& fd, const char* buf, size_t size, uint64_t pos) {
  pwrite_exact(fd.get(), buf, size, pos, fd.path);
  // Start writeback now rather than at fsync: the card writes while the next chunk is read and
  // hashed, and the dirty page cache stays small (no multi-second stall at the end).
  sync_file_range(fd.get(), static_cast<off_t>(pos), static_cast<off_t>(size), SYNC_FILE_RANGE_WRITE);
}

std::string range_name(uint64_t start, uint64_t end) {
  return fmt::format("bytes {}-{} (blocks {}-{})", start, end - 1, start / kBlock, (end - 1) / kBlock);
}

// IMAGE.bmap beside the image, when there is one: a regular file of at most kMaxSmallFile bytes
// (a FIFO, a link to /dev/zero or a sparse file claiming gigabytes is refused, never read whole;
// pibake's 1 MiB pieces keep a 100 GiB image's map under that).
std::optional<Bmap> load_bmap(const std::string& path) {
  std::string text;
  if (!read_file_if_exists(path, text)) return std::nullopt;
  return parse_bmap(text, path);
}

// Raw image: copy the bmap's ranges (or SEEK_DATA's), hashing what is read, `chunk` bytes at a
// time.
std::vector<Written> copy_raw(const std::string& image, const Fd& target, bool regular_target, uint64_t& image_size,
                              Progress& progress, size_t chunk) {
  Fd src(image, O_RDONLY);
  struct stat st {};
  fstat(src.get(), &st);
  image_size = static_cast<uint64_t>(st.st_size);
  std::string bmap_path = bmap_path_for(image);
  std::optional<Bmap> bmap = load_bmap(bmap_path);
  std::vector<BmapRange> ranges;
  if (bmap) {
    if (bmap->image_size != image_size) {
      throw Error(fmt::format("{} describes an image of {} bytes but {} has {}: it belongs to another image", bmap_path,
                              bmap->image_size, image, image_size));
    }
    ranges = bmap->ranges;
  } else {
    ranges = to_block_ranges(data_ranges(src.get(), image), kBlock);
  }
  if (regular_target && ftruncate(target.get(), static_cast<off_t>(image_size)) != 0) {
    throw Error("cannot size " + target.path + ": " + std::strerror(errno));
  }
  uint64_t total = 0;
  for (const BmapRange& r : ranges) total += r.byte_end(kBlock, image_size) - r.byte_start(kBlock);
  progress.start("writing", total);
  posix_fadvise(src.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(chunk);
  std::vector<Written> written;
  Sha256 hash;
  uint64_t done = 0;
  for (const BmapRange& r : ranges) {
    uint64_t start = r.byte_start(kBlock), end = r.byte_end(kBlock, image_size);
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
      pread_exact(src.get(), buf.data(), n, pos, src.path);
      hash.update(buf.data(), n);
      pwrite_all(target, buf.data(), n, pos);
      pos += n;
      done += n;
      progress.update(done);
    }
    Written w{start, end, hash.hex_digest()};
    if (!r.sha256.empty() && r.sha256 != w.sha256) {
      throw Error(fmt::format("{} does not match {}: {} hash to {}, the bmap says {}", image, bmap_path,
                              range_name(start, end), w.sha256, r.sha256));
    }
    written.push_back(std::move(w));
  }
  return written;
}

// Compressed image: decompress as a stream. With the image's .bmap beside it, exactly its ranges
// are written; without, every non-zero block (and on a block device the zero blocks too, since
// what the card held before is unknown).
std::vector<Written> copy_stream(const std::string& image, Compression c, const Fd& target, bool regular_target,
                                 uint64_t& image_size, Progress& progress, size_t chunk) {
  std::string raw_name = image.substr(0, image.size() - std::strlen(suffix_of(c)));
  std::string bmap_path = bmap_path_for(raw_name);
  std::optional<Bmap> bmap = load_bmap(bmap_path);
  uint64_t total = 0;
  if (bmap) {
    for (const BmapRange& r : bmap->ranges) total += r.byte_end(kBlock, bmap->image_size) - r.byte_start(kBlock);
  }
  progress.start("writing", total);
  std::unique_ptr<Decompressor> in = open_decompressor(image, c);
  std::vector<char> buf(chunk);
  std::vector<Written> written;
  Sha256 hash;
  bool in_run = false;
  uint64_t run_start = 0, pos = 0, done = 0;
  size_t range_index = 0;
  auto end_run = [&](uint64_t end) {
    if (!in_run) return;
    in_run = false;
    written.push_back({run_start, end, hash.hex_digest()});
    if (bmap) {
      const BmapRange& r = bmap->ranges[range_index];
      if (!r.sha256.empty() && r.sha256 != written.back().sha256) {
        throw Error(fmt::format("{} does not match {}: {} hash to {}, the bmap says {}", image, bmap_path,
                                range_name(run_start, end), written.back().sha256, r.sha256));
      }
    }
  };
  for (;;) {
    size_t n = 0;
    while (n < buf.size()) {  // full chunks, so that blocks never straddle two reads
      size_t got = in->read(buf.data() + n, buf.size() - n);
      if (got == 0) break;
      n += got;
    }
    if (n == 0) break;
    size_t write_from = 0;
    bool writing = false;
    for (size_t off = 0; off < n; off += kBlock) {
      size_t len = std::min<size_t>(kBlock, n - off);
      uint64_t at = pos + off;
      bool want;
      if (bmap) {
        while (range_index < bmap->ranges.size() &&
               bmap->ranges[range_index].byte_end(kBlock, bmap->image_size) <= at) {
          if (in_run) end_run(at);
          ++range_index;
        }
        want = range_index < bmap->ranges.size() && at >= bmap->ranges[range_index].byte_start(kBlock);
      } else {
        want =
            !regular_target || std::any_of(buf.data() + off, buf.data() + off + len, [](char ch) { return ch != 0; });
      }
      if (want && !in_run) {
        in_run = true;
        run_start = at;
      } else if (!want && in_run) {
        end_run(at);
      }
      if (want) hash.update(buf.data() + off, len);
      if (want && !writing) {
        writing = true;
        write_from = off;
      } else if (!want && writing) {
        writing = false;
        pwrite_all(target, buf.data() + write_from, off - write_from, pos + write_from);
        done += off - write_from;
      }
    }
    if (writing) {
      pwrite_all(target, buf.data() + write_from, n - write_from, pos + write_from);
      done += n - write_from;
    }
    pos += n;
    progress.update(done);
  }
  end_run(pos);
  image_size = pos;
  if (bmap && bmap->image_size != image_size) {
    throw Error(fmt::format("{} describes an image of {} bytes but {} decompresses to {}", bmap_path, bmap->image_size,
                            image, image_size));
  }
  if (regular_target && ftruncate(target.get(), static_cast<off_t>(image_size)) != 0) {
    throw Error("cannot size " + target.path + ": " + std::strerror(errno));
  }
  return written;
}

void verify(const Fd& target, bool block_device, const std::vector<Written>& written, Progress& progress,
            size_t chunk) {
  // On a card, read the card, not the page cache: fake-capacity cards that wrap around or drop
  // writes show up only then. A regular file's cache is the file.
  if (block_device) posix_fadvise(target.get(), 0, 0, POSIX_FADV_DONTNEED);
  uint64_t total = 0, done = 0;
  for (const Written& w : written) total += w.end - w.start;
  progress.start("verifying", total);
  posix_fadvise(target.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(chunk);
  Sha256 hash;
  for (const Written& w : written) {
    for (uint64_t pos = w.start; pos < w.end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), w.end - pos));
      pread_exact(target.get(), buf.data(), n, pos, target.path);
      hash.update(buf.data(), n);
      pos += n;
      done += n;
      progress.update(done);
    }
    std::string got = hash.hex_digest();
    if (got != w.sha256) {
      throw Error(fmt::format("verification failed: {} of {} read back with SHA-256 {}, but {} was written",
                              range_name(w.start, w.end), target.path, got, w.sha256));
    }
  }
}

}  // namespace

namespace {

// What is known of a target before anything is written: its kind and size, and every reason to
// refuse it (empty: go ahead).
struct TargetCheck {
  bool block_device = false;
  uint64_t device_size = 0;
  std::vector<std::string> refusals;
};

// Checks `target` for `image` without writing anything. Throws pibake::Error for what --force
// cannot override (neither a device nor a file, the image itself, an image too big for the
// device, a target that cannot be opened for writing).
TargetCheck check_target(const std::string& image, const std::string& target, const FlashOptions& opts) {
  require_not_mid_regenerate(image);
  require_regular_file(image, "image");
  struct stat img_st {};
  if (stat(image.c_str(), &img_st) != 0) throw Error("cannot read " + image + ": " + std::strerror(errno));
  struct stat st {};
  bool exists = stat(target.c_str(), &st) == 0;
  TargetCheck check;
  check.block_device = exists && S_ISBLK(st.st_mode);
  if (exists && !check.block_device && !S_ISREG(st.st_mode)) {
    throw Error(target + " is neither a block device nor a regular file");
  }
  if (exists && st.st_dev == img_st.st_dev && st.st_ino == img_st.st_ino) {
    throw Error(target + " is the image itself");
  }
  if (check.block_device) {
    DeviceFacts dev = probe_device(target);
    check.device_size = dev.size_bytes;
    if (!opts.force) check.refusals = device_refusals(dev, opts.max_bytes);
    if (compression_of(image) == Compression::kNone && static_cast<uint64_t>(img_st.st_size) > check.device_size) {
      throw Error(
          fmt::format("{} ({} bytes) does not fit on {} ({} bytes)", image, img_st.st_size, target, check.device_size));
    }
  } else {
    // A file is created (or truncated) when writing starts; whether that can happen is known now.
    const std::string dir = std::filesystem::path(target).parent_path().string();
    if (access(exists ? target.c_str() : (dir.empty() ? "." : dir.c_str()), W_OK) != 0) {
      throw Error("cannot write " + target + ": " + std::strerror(errno));
    }
  }
  return check;
}

std::string refusal_text(const std::string& target, const std::vector<std::string>& reasons) {
  std::string text = "refusing to flash " + target + ":";
  for (const std::string& r : reasons) text += "\n  " + r;
  return text;
}

// Writes `image` to the checked `target`, fsyncs and (opts.verify) reads it back, `chunk` bytes
// at a time.
FlashResult flash_checked(const std::string& image, const std::string& target_path, const TargetCheck& check,
                          const FlashOptions& opts, Progress& progress, size_t chunk) {
  auto start = std::chrono::steady_clock::now();
  const bool block_device = check.block_device;
  Compression c = compression_of(image);
  // O_EXCL on a block device: the kernel refuses when a filesystem on it is mounted.
  Fd target(target_path, block_device ? (O_RDWR | O_EXCL) : (O_RDWR | O_CREAT | O_TRUNC), 0600);
  // A file target holds the node's keys and seed in clear, as the image does: owner-only, even
  // when it existed before with a wider mode.
  if (!block_device && fchmod(target.get(), 0600) != 0) {
    throw Error("cannot make " + target_path + " owner-only: " + std::strerror(errno));
  }
  FlashResult result;
  std::vector<Written> written = c == Compression::kNone
                                     ? copy_raw(image, target, !block_device, result.image_size, progress, chunk)
                                     : copy_stream(image, c, target, !block_device, result.image_size, progress, chunk);
  if (block_device && result.image_size > check.device_size) {
    throw Error(fmt::format("{} decompresses to {} bytes, more than {} holds ({} bytes)", image, result.image_size,
                            target_path, check.device_size));
  }
  for (const Written& w : written) result.written_bytes += w.end - w.start;
  result.ranges = written.size();
  progress.start("syncing", 0);
  if (fsync(target.get()) != 0) throw Error("cannot flush " + target_path + ": " + std::strerror(errno));
  if (opts.verify) {
    verify(target, block_device, written, progress, chunk);
    result.verified = true;
  }
  progress.finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string summary(const std::string& image, const std::string& target, const FlashResult& r) {
  return fmt::format("{} → {}: wrote {:.1f} MiB of {:.1f} MiB ({} ranges), {}in {:.2f} s, {:.1f} MB/s\n", image, target,
                     r.written_bytes / 1048576.0, r.image_size / 1048576.0, r.ranges, r.verified ? "verified, " : "",
                     r.seconds, r.seconds > 0 ? r.written_bytes / 1e6 / r.seconds : 0.0);
}

// The same file or device (an existing one), or the same path once made absolute and resolved
// (one that does not exist yet).
bool same_target(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0) {
    return S_ISBLK(sa.st_mode) ? S_ISBLK(sb.st_mode) && sa.st_rdev == sb.st_rdev
                               : sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  }
  std::error_code ea, eb;
  auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a), ea);
  auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b), eb);
  return !ea && !eb && ca == cb;
}

}  // namespace

std::vector<std::string> images_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || !name.ends_with(".img")) continue;
    if (entry.is_regular_file(ec)) names.push_back(name);
  }
  if (ec) throw Error("cannot list " + dir + ": " + ec.message());
  std::sort(names.begin(), names.end(), natural_less);
  std::vector<std::string> paths;
  for (const std::string& n : names) paths.push_back((std::filesystem::path(dir) / n).string());
  return paths;
}

FlashResult run_flash(const FlashOptions& opts) {
  TargetCheck check = check_target(opts.image, opts.target, opts);
  if (!check.refusals.empty()) {
    throw Error(refusal_text(opts.target, check.refusals) + "\n(--force overrides this; check the device name first)");
  }
  Progress progress;
  FlashResult result = flash_checked(opts.image, opts.target, check, opts, progress, kChunk);
  fmt::print("{}", summary(opts.image, opts.target, result));
  return result;
}

std::vector<FlashResult> run_flash_many(const std::string& dir, const std::vector<std::string>& targets,
                                        const FlashOptions& opts) {
  // A node whose image a build is regenerating would leave the cards one image short.
  for (const std::string& missing : images_mid_regenerate(dir)) require_not_mid_regenerate(missing);
  const std::vector<std::string> images = images_in(dir);
  if (images.empty()) throw Error(dir + " holds no .img file to flash");
  if (images.size() != targets.size()) {
    std::string names;
    for (const std::string& i : images) names += (names.empty() ? "" : ", ") + base_name(i);
    throw Error(fmt::format("{} holds {} image{} ({}) but {} target{} given: give one card per image, in this order",
                            dir, images.size(), images.size() == 1 ? "" : "s", names, targets.size(),
                            targets.size() == 1 ? " was" : "s were"));
  }
  // Only what pibake build wrote: every image with its block map, parsed and of the image's size,
  // so that a stray file cannot shift the images one card along.
  for (const std::string& image : images) {
    std::optional<Bmap> bmap = load_bmap(bmap_path_for(image));
    if (!bmap) {
      throw Error(image + " has no block map (" + base_name(bmap_path_for(image)) +
                  ") beside it: a directory is flashed only with what pibake build wrote; move other files out of " +
                  dir + ", or flash images one at a time");
    }
    if (bmap->image_size != std::filesystem::file_size(image)) {
      throw Error(fmt::format("{} describes an image of {} bytes but {} has {}: it belongs to another image",
                              bmap_path_for(image), bmap->image_size, image, std::filesystem::file_size(image)));
    }
  }
  // Every target checked before anything is written to any; all refusals reported at once.
  std::vector<TargetCheck> checks;
  std::string refusals;
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (same_target(targets[i], targets[j])) {
        throw Error(targets[i] + " is given twice" + (targets[i] == targets[j] ? "" : " (as " + targets[j] + " too)") +
                    ": one card per image");
      }
    }
    for (const std::string& image : images) {
      for (const std::string& source : {image, bmap_path_for(image)}) {
        if (same_target(targets[i], source)) throw Error(targets[i] + " is " + source + ", which is being flashed");
      }
    }
    checks.push_back(check_target(images[i], targets[i], opts));
    if (!checks.back().refusals.empty()) refusals += "\n" + refusal_text(targets[i], checks.back().refusals);
  }
  if (!refusals.empty()) throw Error(refusals.substr(1) + "\n(--force overrides this; check the device names first)");
  for (size_t i = 0; i < images.size(); ++i) fmt::print("{} → {}\n", images[i], targets[i]);
  std::fflush(stdout);

  const size_t chunk = std::clamp<size_t>(kChunkBudget / images.size() / (1u << 20) * (1u << 20), 1u << 20, kChunk);
  std::vector<std::string> labels;
  for (size_t i = 0; i < images.size(); ++i) labels.push_back(base_name(images[i]) + " → " + targets[i]);
  ProgressBoard board(labels);
  std::vector<FlashResult> results(images.size());
  std::vector<std::string> errors(images.size());
  auto flash_card = [&](size_t i) {
    try {
      Progress progress(board, i);
      results[i] = flash_checked(images[i], targets[i], checks[i], opts, progress, chunk);
    } catch (const std::exception& e) {
      errors[i] = e.what();
      board.set(i, "FAILED", /*force=*/true);
    }
  };
  std::vector<std::thread> workers;
  std::vector<size_t> not_started;  // no thread could be made for them: written after the others
  for (size_t i = 1; i < images.size(); ++i) {
    try {
      workers.emplace_back(flash_card, i);
    } catch (const std::system_error&) {
      not_started.push_back(i);
    }
  }
  flash_card(0);
  for (std::thread& t : workers) t.join();
  for (size_t i : not_started) flash_card(i);
  board.finish();
  std::string failed;
  for (size_t i = 0; i < images.size(); ++i) {
    if (errors[i].empty()) {
      fmt::print("{}", summary(images[i], targets[i], results[i]));
    } else {
      failed += "\n  " + base_name(images[i]) + " → " + targets[i] + ": " + errors[i];
    }
  }
  if (!failed.empty()) throw Error("flashing failed:" + failed);
  return results;
}

}  // namespace pibake
