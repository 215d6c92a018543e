// An image edited in place into what a fresh clone of the base plus the same writes would give
// (pipeline/in_place.h): the writers see the base's bytes wherever the previous edit wrote and this
// one has not yet, a write that would leave the image's bytes as they are is left out, every byte
// that is overwritten goes to the undo journal first, and what the previous edit wrote and this one
// did not is put back from the base at the end.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "image/bmap.h"
#include "image/byte_range_set.h"

namespace pibake {

class UndoJournal;

class InPlaceEdit {
 public:
  // `image_fd`: the image, open read-write; `base_fd`: the base it was cloned from (same size),
  // open for reading; `pending`: the byte ranges where the image may differ from the base (what
  // the previous edit wrote), widened here to whole 4 KiB blocks; `undo` receives every byte
  // before it is overwritten. The names are for error messages. Throws pibake::Error when the
  // base's data ranges cannot be read (SEEK_DATA).
  InPlaceEdit(int image_fd, std::string image_name, int base_fd, std::string base_name,
              const std::vector<ByteRange>& pending, UndoJournal& undo);

  // For the writers' reads: `buf` holds bytes [offset, offset + n) as just read from the image;
  // those still pending are replaced by the base's. Throws pibake::Error on a read error.
  void patch_read(uint64_t offset, void* buf, size_t n) const;

  // For the writers' writes of `data` to [offset, offset + n), given `current`, what the image
  // holds there now (read through the writer's own cache, unpatched), compared in `granule`-byte
  // pieces: a piece that differs is saved to the journal and then written by `write(pos, bytes,
  // count)` (runs of them at once); a piece of zeros that differs, or that lies over a hole (a
  // fresh build's write would allocate it), is not written now but noted, reads of it give zeros,
  // and finish() writes it unless a later write replaced it (libext2fs zeroes every block it
  // allocates before writing its data, which would otherwise defeat the comparison). The whole
  // range is no longer pending. Errors of `write` propagate; pibake::Error when the journal
  // cannot save.
  void write_changed(uint64_t offset, const uint8_t* data, const uint8_t* current, size_t n, size_t granule,
                     const std::function<void(uint64_t, const uint8_t*, size_t)>& write);

  // For writes whose bytes are not compared (a discard, a zeroout, a partial-block write):
  // saves [offset, offset + n) to the journal; no longer pending.
  void will_write(uint64_t offset, uint64_t n);

  // After the writers have closed: writes the zeros noted by write_changed, then puts back from
  // the base every byte still pending (its data, or a hole, FALLOC_FL_PUNCH_HOLE, where the base
  // has one), leaving alone bytes that already hold what they should and saving the others to the
  // journal first. Returns the bytes written or punched. Throws pibake::Error on a read or write
  // error.
  uint64_t finish();

 private:
  void save(uint64_t offset, uint64_t n);
  void unpend(uint64_t start, uint64_t end);
  bool in_hole(uint64_t offset) const;  // byte `offset` of the image lies in a hole (SEEK_DATA)

  int image_fd_;
  std::string image_name_;
  int base_fd_;
  std::string base_name_;
  std::vector<ByteRange> base_data_;  // the base's data ranges (the rest are holes)
  ByteRangeSet pending_;              // where the base's bytes are due
  ByteRangeSet zeros_;                // where zeros are due (write_changed)
  UndoJournal& undo_;
};

}  // namespace pibake
