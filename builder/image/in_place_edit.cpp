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
    pending_.add(start, end);
  }
}

void InPlaceEdit::patch_read(uint64_t offset, void* buf, size_t n) const {
  char* const at = static_cast<char*>(buf) - offset;  // at[pos]: byte `pos` of the image
  // The base's bytes (zeros where it has a hole, as pread gives them).
  pending_.for_each_inside(offset, offset + n, [&](uint64_t from, uint64_t to) {
    pread_exact(base_fd_, at + from, to - from, from, base_name_);
  });
  zeros_.for_each_inside(offset, offset + n, [&](uint64_t from, uint64_t to) { std::fill(at + from, at + to, 0); });
}

void InPlaceEdit::write_changed(uint64_t offset, const uint8_t* data, const uint8_t* current, size_t n, size_t granule,
                                const std::function<void(uint64_t, const uint8_t*, size_t)>& write) {
  unpend(offset, offset + n);
  enum class Action { kNone, kZero, kWrite };
  auto action = [&](size_t i, size_t len) {
    const bool same = std::equal(data + i, data + i + len, current + i);
    if (all_zero(data + i, len)) return !same || in_hole(offset + i) ? Action::kZero : Action::kNone;
    return same ? Action::kNone : Action::kWrite;
  };
  for (size_t i = 0; i < n;) {
    size_t len = std::min(granule, n - i);
    const Action a = action(i, len);
    if (a == Action::kNone) {
      i += len;
    } else if (a == Action::kZero) {
      zeros_.add(offset + i, offset + i + len);
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

bool InPlaceEdit::in_hole(uint64_t offset) const {
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
  pending_.remove(start, end);
  zeros_.remove(start, end);
}

uint64_t InPlaceEdit::finish() {
  std::vector<uint8_t> want(kChunk), have(kChunk);
  uint64_t changed = 0;
  auto write = [&](uint64_t pos, const uint8_t* data, size_t n) {
    pwrite_exact(image_fd_, data, n, pos, image_name_);
    changed += n;
  };
  // `want` for [pos, pos + n) (at most kChunk), where the image holds `have`: written, 4 KiB
  // block by block, where it differs (saved first) or where the image has a hole (a fresh build
  // has data there: the base's, or zeros it wrote).
  auto put_back = [&](uint64_t pos, size_t n) {
    for (size_t i = 0; i < n;) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(kBmapBlockSize - (pos + i) % kBmapBlockSize, n - i));
      if (!std::equal(want.data() + i, want.data() + i + len, have.data() + i)) {
        save(pos + i, len);
        write(pos + i, want.data() + i, len);
      } else if (in_hole(pos + i)) {
        write(pos + i, want.data() + i, len);
      }
      i += len;
    }
  };
  // Puts `zeros`, or else the base's data, over [start, end).
  auto restore_bytes = [&](uint64_t start, uint64_t end, bool zeros) {
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      pread_exact(image_fd_, have.data(), n, pos, image_name_);
      if (zeros) {
        std::fill(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(n), 0);
      } else {
        pread_exact(base_fd_, want.data(), n, pos, base_name_);
      }
      put_back(pos, n);
      pos += n;
    }
  };
  // [start, end) is a hole in the base: so must it be in the image (a fresh clone has one),
  // whatever it holds now. Where it holds zeros, punching changes no byte and needs no saving.
  auto restore_hole = [&](uint64_t start, uint64_t end) {
    for (uint64_t pos = start; pos < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      pread_exact(image_fd_, have.data(), n, pos, image_name_);
      const bool holds_zeros = all_zero(have.data(), n);
      if (!holds_zeros) save(pos, n);
      if (fallocate(image_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(pos),
                    static_cast<off_t>(n)) == 0) {
        if (!holds_zeros) changed += n;
      } else if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
        std::fill(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(n), 0);
        if (!holds_zeros) write(pos, want.data(), n);  // no hole punching here: zeros
      } else {
        throw Error(image_name_ + ": cannot punch a hole: " + std::strerror(errno));
      }
      pos += n;
    }
  };
  // The zeros due first (write_changed), then the base's bytes and holes.
  for (const auto& [start, end] : zeros_.ranges()) restore_bytes(start, end, /*zeros=*/true);
  zeros_.clear();
  for (const auto& [start, end] : pending_.ranges()) {
    uint64_t pos = start;
    for (const ByteRange& d : base_data_) {
      if (d.end <= pos) continue;
      if (d.start >= end) break;
      if (d.start > pos) restore_hole(pos, d.start);
      uint64_t stop = std::min(end, d.end);
      restore_bytes(std::max(pos, d.start), stop, /*zeros=*/false);
      pos = stop;
    }
    if (pos < end) restore_hole(pos, end);
  }
  pending_.clear();
  return changed;
}

}  // namespace pibake
