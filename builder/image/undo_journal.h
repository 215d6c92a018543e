// The undo journal of an image edited in place: before pibake overwrites any byte of the image,
// the bytes it held are appended to a journal beside it, so that an edit that fails, or a process
// killed half-way, can be rolled back to the image as it was (the rollback journal of SQLite's
// "Atomic Commit", https://sqlite.org/atomiccommit.html, applied to an image file).
//
// File format (all integers little-endian): the 16-byte magic "pibake-undo-1\n\0\0", then records
// of [offset: u64][length: u64][length bytes: what the image held at that offset]. A range is saved
// once, the first time it is about to be written, so records never overlap and their order does
// not matter. A journal is only appended to, and each record is written before the image bytes it
// covers, so a last record cut short by a kill covers bytes that were never overwritten.
#pragma once

#include <cstdint>
#include <string>

#include "image/byte_range_set.h"

#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake {

class UndoJournal {
 public:
  // Creates `journal_path` (it must not exist; mode 0600, as it holds the image's bytes, secrets
  // included) for the image open for reading as `image_fd`, `image_size` bytes long. `image_fd`
  // is borrowed: it must stay open while the journal is used. Throws pibake::Error naming the
  // journal when it cannot be created (one already there included).
  UndoJournal(int image_fd, uint64_t image_size, std::string journal_path);

  // Saves what the image holds in bytes [start, start + length) (clipped to the image's size)
  // that no earlier call saved. Call before writing those bytes. Throws pibake::Error on a read
  // or write error (the caller must then not write them).
  void save(uint64_t start, uint64_t length);

  // Bytes saved so far (the bytes that may differ from the image as it was).
  uint64_t saved_bytes() const { return saved_bytes_; }

 private:
  void append(uint64_t start, uint64_t end);

  int image_fd_;
  uint64_t image_size_;
  std::string path_;
  UniqueFd fd_;
  ByteRangeSet saved_;
  uint64_t saved_bytes_ = 0;
  uint64_t journal_bytes_ = 0;  // the journal's length: where the next record goes
};

// A file that is not an undo journal, or one whose records do not fit the image: it cannot roll
// anything back (thrown by roll_back_journal; an I/O error is a plain pibake::Error).
class MalformedJournal : public Error {
 public:
  using Error::Error;
};

// Puts every range saved in the journal at `journal_path` back into the image at `image_path`
// that no longer holds it, then fsyncs the image; returns the bytes put back. A last record cut
// short is skipped (its bytes were never overwritten), and so is a journal cut short inside its
// magic. Throws MalformedJournal for a file that is not one (wrong magic, a record past the
// image's end), pibake::Error when either file cannot be opened, read or written.
uint64_t roll_back_journal(const std::string& image_path, const std::string& journal_path);

}  // namespace pibake
