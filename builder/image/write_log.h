// Which bytes of an image file pibake's own writers changed after it was cloned from the base, so
// that the node's block map rehashes only those ranges and takes the base's hashes for the rest
// (bmap.h, BmapReuse).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/bmap.h"

namespace pibake {

class InPlaceEdit;

// Byte ranges written into one image file. Filled by the filesystem writers given it (Ext4Fs
// through a recording libext2fs io manager, FatFs at its single write call); anything that writes
// the file by other means (resize2fs, a partition table edit) calls mark_all().
class WriteLog {
 public:
  // Records that bytes [start, start + length) of the image file may have changed.
  // A write that continues or overlaps the last one recorded extends it (libext2fs writes a file
  // block run by block run): the list stays short.
  void add(uint64_t start, uint64_t length) {
    if (length == 0) return;
    if (!ranges_.empty() && start >= ranges_.back().start && start <= ranges_.back().end) {
      if (start + length > ranges_.back().end) ranges_.back().end = start + length;
      return;
    }
    ranges_.push_back({start, start + length});
  }
  // Records that the whole file may have changed: no range is taken from the base.
  void mark_all() { all_ = true; }
  // An image edited in place (in_place_edit.h): the writers given this log read and write through
  // `edit` (its patch_read, write_changed, will_write) as well as recording here. nullptr: none.
  void set_edit(InPlaceEdit* edit) { edit_ = edit; }
  InPlaceEdit* edit() const { return edit_; }
  // What made the edit fail inside a writer that reports only an error code (libext2fs's io
  // manager callbacks): the exception's message, kept for the caller's error. Empty: none.
  void set_failure(std::string what) { failure_ = std::move(what); }
  const std::string& failure() const { return failure_; }
  bool all() const { return all_; }
  // The recorded ranges, sorted, overlapping and adjacent ones merged.
  std::vector<ByteRange> merged() const;

 private:
  std::vector<ByteRange> ranges_;
  bool all_ = false;
  InPlaceEdit* edit_ = nullptr;
  std::string failure_;
};

}  // namespace pibake
