// Which bytes of an image file pibake's own writers changed after it was cloned from the base, so
// that the node's block map rehashes only those ranges and takes the base's hashes for the rest
// (bmap.h, BmapReuse).
#pragma once

#include <cstdint>
#include <vector>

#include "image/bmap.h"

namespace pibake {

class UndoJournal;

// Byte ranges written into one image file. Filled by the filesystem writers given it (Ext4Fs
// through a recording libext2fs io manager, FatFs at its single write call); anything that writes
// the file by other means (resize2fs, a partition table edit) calls mark_all().
class WriteLog {
 public:
  // Records that bytes [start, start + length) of the image file may have changed.
  // A write that continues or overlaps the last one recorded extends it (libext2fs writes a file
  // block run by block run): the list stays short.
  // With an undo journal set, the bytes' present contents are saved to it first (and its errors,
  // pibake::Error, are thrown from here, before the write is made).
  void add(uint64_t start, uint64_t length) {
    if (length == 0) return;
    if (undo_ != nullptr) save_before_write(start, length);
    if (!ranges_.empty() && start >= ranges_.back().start && start <= ranges_.back().end) {
      if (start + length > ranges_.back().end) ranges_.back().end = start + length;
      return;
    }
    ranges_.push_back({start, start + length});
  }
  // Records that the whole file may have changed: no range is taken from the base.
  void mark_all() { all_ = true; }
  // Every later add() first saves the bytes it names to `undo` (an image edited in place).
  void set_undo(UndoJournal* undo) { undo_ = undo; }
  bool all() const { return all_; }
  // The recorded ranges, sorted, overlapping and adjacent ones merged.
  std::vector<ByteRange> merged() const;

 private:
  void save_before_write(uint64_t start, uint64_t length);

  std::vector<ByteRange> ranges_;
  bool all_ = false;
  UndoJournal* undo_ = nullptr;
};

}  // namespace pibake
