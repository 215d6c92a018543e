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

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t c) { return c == 0; });
}

// Removes [start, end) from the disjoint ranges `ranges` (start -> end).
void remove_range(std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end) {
  if (start >= end) return;
  auto it = ranges.upper_bound(start);
  if (it != ranges.begin() && std::prev(it)->second > start) --it;
  while (it != ranges.end() && it->first < end) {
    const uint64_t s = it->first, e = it->second;
    it = ranges.erase(it);
    if (s < start) ranges.emplace(s, start);
    if (e > end) it = ranges.emplace(end, e).first;
  }
}

// Adds [start, end) to `ranges`, merged with its neighbours.
void add_range(std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end) {
  if (start >= end) return;
  auto it = ranges.lower_bound(start);
  if (it != ranges.begin() && std::prev(it)->second >= start) --it;
  while (it != ranges.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = ranges.erase(it);
  }
  ranges.emplace(start, end);
}

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
  for (const auto* ranges : {&pending_, &zeros_}) {
    auto it = ranges->upper_bound(offset);
    if (it != ranges->begin() && std::prev(it)->second > offset) --it;
    for (; it != ranges->end() && it->first < end; ++it) {
      uint64_t from = std::max(offset, it->first), to = std::min(end, it->second);
      if (from >= to) continue;
      char* at = static_cast<char*>(buf) + (from - offset);
      if (ranges == &zeros_) {
        std::fill(at, at + (to - from), 0);
      } else {
        // The base's bytes (zeros where it has a hole, as pread gives them).
        pread_exact(base_fd_, at, to - from, from, base_name_);
      }
    }
  }
}

void InPlaceEdit::write_changed(uint64_t offset, const uint8_t* data, const uint8_t* current, size_t n, size_t granule,
                                const std::function<void(uint64_t, const uint8_t*, size_t)>& write) {
  unpend(offset, offset + n);
  enum class Action { kNone, kZero, kWrite };
  auto action = [&](size_t i, size_t len) {
    const bool same = std::equal(data + i, data + i + len, current + i);
    if (all_zero(data + i, len)) return !same || any_hole(offset + i, len) ? Action::kZero : Action::kNone;
    return same ? Action::kNone : Action::kWrite;
  };
  for (size_t i = 0; i < n;) {
    size_t len = std::min(granule, n - i);
    const Action a = action(i, len);
    if (a == Action::kNone) {
      i += len;
    } else if (a == Action::kZero) {
      add_range(zeros_, offset + i, offset + i + len);
      i += len;
    } else {
      size_t run_end = i + len;
      while (run_end < n) {
        size_t next = std::min(granule, n - run_end);
        if (action(run_end, next) != Action::kWrite) break;
        run_end += next;
      }
      save(offset + i, run_end - i);
      write(offset + i, data + i, run_end - i);
      i = run_end;
    }
  }
}

bool InPlaceEdit::any_hole(uint64_t offset, uint64_t n) const {
  (void)n;
  const off_t data = lseek(image_fd_, static_cast<off_t>(offset), SEEK_DATA);
  if (data < 0) return errno == ENXIO;  // only a hole from here on (EINVAL: no holes at all)
  return static_cast<uint64_t>(data) != offset;
}

void InPlaceEdit::will_write(uint64_t offset, uint64_t n) {
  save(offset, n);
  unpend(offset, offset + n);
}

void InPlaceEdit::save(uint64_t offset, uint64_t n) { undo_.save(offset, n); }

void InPlaceEdit::unpend(uint64_t start, uint64_t end) {
  remove_range(pending_, start, end);
  remove_range(zeros_, start, end);
}

uint64_t InPlaceEdit::finish() {
  std::vector<uint8_t> base_buf(kChunk), image_buf(kChunk);
  uint64_t changed = 0;
  auto write = [&](uint64_t pos, const uint8_t* data, size_t n) {
    pwrite_exact(image_fd_, data, n, pos, image_name_);
    changed += n;
  };
  // The base's data `want` for [pos, pos + n), where the image holds `have`: written, 4 KiB block
  // by block, where it differs (saved first) or where the image has a hole (a fresh copy of the
  // base has data there).
  auto restore_data = [&](uint64_t pos, const uint8_t* want, const uint8_t* have, size_t n, auto& put) {
    for (size_t i = 0; i < n;) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(kBmapBlockSize - (pos + i) % kBmapBlockSize, n - i));
      if (!std::equal(want + i, want + i + len, have + i)) {
        save(pos + i, len);
        put(pos + i, want + i, len);
      } else if (any_hole(pos + i, len)) {
        put(pos + i, want + i, len);
      }
      i += len;
    }
  };
  // [start, end) lies wholly in the base's data (`data`) or wholly in one of its holes.
  auto restore = [&](uint64_t start, uint64_t end, bool data) {
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      pread_exact(image_fd_, image_buf.data(), n, pos, image_name_);
      if (data) {
        pread_exact(base_fd_, base_buf.data(), n, pos, base_name_);
        restore_data(pos, base_buf.data(), image_buf.data(), n, write);
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
  // The zeros due: written where the image holds something else, or a hole (as a fresh build's
  // write allocates them).
  const std::vector<uint8_t> zeros(kBmapBlockSize, 0);
  for (const auto& [start, end] : zeros_) {
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBmapBlockSize - pos % kBmapBlockSize, end - pos));
      pread_exact(image_fd_, image_buf.data(), n, pos, image_name_);
      if (!all_zero(image_buf.data(), n)) {
        save(pos, n);
        write(pos, zeros.data(), n);
      } else if (any_hole(pos, n)) {
        write(pos, zeros.data(), n);
      }
      pos += n;
    }
  }
  zeros_.clear();
  const std::map<uint64_t, uint64_t> pending = pending_;
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
