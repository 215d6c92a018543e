// Regenerating a node's image in place (docs/speed.md, "Regenerating in place"): when the node's
// previous image is still exactly the file pibake wrote, a build edits that file instead of
// copying the whole base again. It puts back from the base the ranges the previous build wrote,
// then writes the node's files as usual; every byte is saved to an undo journal before it is
// overwritten (image/undo_journal.h), and the image is under a temporary name until complete, so
// a failure or a kill never leaves a half-written image under its final name and never loses the
// previous one: a failure rolls it back at once, a kill at the next build into that directory.
//
// Files beside out/node-N.img (names for node-N.img):
//   .node-N.img.ranges     what pibake wrote into the finished image: the record below
//   .node-N.img.in-place   the image while it is edited (the previous image, renamed)
//   .node-N.img.undo       its undo journal
//   .node-N.img.bmap.in-place  the previous image's block map, kept to check a rollback
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "image/bmap.h"

namespace pibake {

class UndoJournal;

// What pibake records beside a finished node image: the byte ranges its writers changed after
// cloning the base (WriteLog::merged), the base's file identity (BaseBlockMap::identity) and the
// image's own (util/files.h file_identity: device, inode, size, ctime, mtime) once under its
// final name. A record is only believed while both identities still hold.
struct WrittenRecord {
  std::string base_identity;
  std::string image_identity;
  std::vector<ByteRange> ranges;  // sorted, disjoint, within the image
};

// "<dir>/.<name>.ranges", "<dir>/.<name>.in-place", "<dir>/.<name>.undo",
// "<dir>/.<name>.bmap.in-place" for the image at `image_path` ("<dir>/<name>").
std::string written_record_path(const std::string& image_path);
std::string in_place_image_path(const std::string& image_path);
std::string in_place_journal_path(const std::string& image_path);
std::string in_place_bmap_path(const std::string& image_path);

// Writes the record of the finished image at `image_path` (mode 0600, atomically; its identity
// read now). Throws pibake::Error when it cannot be written.
void write_written_record(const std::string& image_path, const std::string& base_identity,
                          const std::vector<ByteRange>& ranges);

// The record of `image_path`, when there is one whose identities still hold: the image is a
// regular file with one link (editing it must not change another name's file), `base_identity`
// is the base's now, and the image's identity is the recorded one. nullopt otherwise (absent,
// malformed, stale). Never throws.
std::optional<WrittenRecord> read_written_record(const std::string& image_path, const std::string& base_identity);

// Puts back from the base (open as `base_fd`, the image's size) every 4 KiB block that
// `ranges` touch, into the image open as `image_fd`: data where the base has data, a hole
// (FALLOC_FL_PUNCH_HOLE) where it has one. Blocks that already hold the base's bytes are not
// written; any other is saved to `undo` first. Returns the bytes written or punched. Throws
// pibake::Error on a read or write error.
uint64_t restore_base_ranges(int base_fd, const std::string& base_name, int image_fd, const std::string& image_name,
                             const std::vector<ByteRange>& ranges, UndoJournal& undo);

// For a build that holds `dir`'s lock: finishes what a killed in-place regenerate left there.
// An image still under its in-place name is rolled back with its undo journal, checked against
// its previous block map and put back under its final name; one that cannot be put back exactly
// is removed (the build then writes it anew). Leftover journals and block maps are removed.
// Says what it did on stdout. Throws pibake::Error on an I/O error.
void recover_in_place_writes(const std::string& dir);

}  // namespace pibake
