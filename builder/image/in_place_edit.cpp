// InPlaceEdit (in_place_edit.h).
#include "image/in_place_edit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "image/undo_journal.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {
namespace {

constexpr uint64_t kChunk = 1ull << 20;  // bytes compared or copied at a time by finish()

}  // namespace

InPlaceEdit::InPlaceEdit(int image_fd, std::string image_name, int base_fd, std::string base_name,
                         const std::vector<ByteRange>& pending, UndoJournal& undo)
    : image_fd_(image_fd),
      image_name_(std::move(image_name)),
      base_fd_(base_fd),
      base_name_(std::move(base_name)),
      base_data_(data_ranges(base_fd, base_name_)),
      undo_(undo) {
  struct stat st {};
  if (fstat(image_fd, &st) != 0) throw Error(image_name_ + ": " + std::strerror(errno));
  for (const BmapRange& blocks : to_block_ranges(pending, kBmapBlockSize)) {
    uint64_t start = blocks.byte_start(kBmapBlockSize);
    uint64_t end = blocks.byte_end(kBmapBlockSize, static_cast<uint64_t>(st.st_size));
    if (start < end) pending_.emplace(start, end);  // to_block_ranges merged and sorted them
  }
}

void InPlaceEdit::patch_read(uint64_t offset, void* buf, size_t n) const {
  const uint64_t end = offset + n;
  auto it = pending_.upper_bound(offset);
  if (it != pending_.begin() && std::prev(it)->second > offset) --it;
  for (; it != pending_.end() && it->first < end; ++it) {
    uint64_t from = std::max(offset, it->first), to = std::min(end, it->second);
    if (from >= to) continue;
    // The base's bytes (zeros where it has a hole, as pread gives them).
    pread_exact(base_fd_, static_cast<char*>(buf) + (from - offset), to - from, from, base_name_);
  }
}

void InPlaceEdit::will_write(uint64_t offset, uint64_t n) {
  save(offset, n);
  unpend(offset, offset + n);
}

void InPlaceEdit::save(uint64_t offset, uint64_t n) { undo_.save(offset, n); }

void InPlaceEdit::unpend(uint64_t start, uint64_t end) {
  if (start >= end) return;
  auto it = pending_.upper_bound(start);
  if (it != pending_.begin() && std::prev(it)->second > start) --it;
  while (it != pending_.end() && it->first < end) {
    const uint64_t s = it->first, e = it->second;
    it = pending_.erase(it);
    if (s < start) pending_.emplace(s, start);
    if (e > end) it = pending_.emplace(end, e).first;
  }
}

uint64_t InPlaceEdit::finish() {
  std::vector<uint8_t> base_buf(kChunk), image_buf(kChunk);
  uint64_t changed = 0;
  auto write = [&](uint64_t pos, const uint8_t* data, size_t n) {
    pwrite_exact(image_fd_, data, n, pos, image_name_);
    changed += n;
  };
  // [start, end) lies wholly in the base's data (`data`) or wholly in one of its holes.
  auto restore = [&](uint64_t start, uint64_t end, bool data) {
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      pread_exact(image_fd_, image_buf.data(), n, pos, image_name_);
      if (data) {
        pread_exact(base_fd_, base_buf.data(), n, pos, base_name_);
        write_changed(pos, base_buf.data(), image_buf.data(), n, kBmapBlockSize, write);
      } else {
        // The base has a hole here: so must the image (a fresh clone has one), whatever it holds
        // now. Where it holds zeros, punching changes no byte and needs no saving.
        std::fill(base_buf.begin(), base_buf.begin() + static_cast<std::ptrdiff_t>(n), 0);
        const bool zeros =
            std::equal(image_buf.begin(), image_buf.begin() + static_cast<std::ptrdiff_t>(n), base_buf.begin());
        if (!zeros) save(pos, n);
        if (fallocate(image_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(pos),
                      static_cast<off_t>(n)) == 0) {
          if (!zeros) changed += n;
        } else if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
          if (!zeros) write(pos, base_buf.data(), n);  // no hole punching here: zeros
        } else {
          throw Error(image_name_ + ": cannot punch a hole: " + std::strerror(errno));
        }
      }
      pos += n;
    }
  };
  const std::map<uint64_t, uint64_t> pending = pending_;  // write_changed takes from pending_
  for (const auto& [start, end] : pending) {
    uint64_t pos = start;
    for (const ByteRange& d : base_data_) {
      if (d.end <= pos) continue;
      if (d.start >= end) break;
      if (d.start > pos) restore(pos, d.start, false);
      uint64_t stop = std::min(end, d.end);
      restore(std::max(pos, d.start), stop, true);
      pos = stop;
    }
    if (pos < end) restore(pos, end, false);
  }
  pending_.clear();
  return changed;
}

}  // namespace pibake
