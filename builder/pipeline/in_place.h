// Regenerating a node's image in place (docs/speed.md, "Regenerating in place"): when the node's
// previous image is still exactly the file pibake wrote, a build edits that file instead of
// copying the whole base again: the node's files are written as usual through an InPlaceEdit
// (image/in_place_edit.h), which shows the writers the base where the previous build wrote, leaves
// out writes that change nothing and puts back the base's bytes the new build did not rewrite;
// every byte is saved to an undo journal before it is overwritten (image/undo_journal.h), and the image is under a
// temporary name until complete, so a failure or a kill never leaves a half-written image under its final name and does
// not lose the previous one: a failure rolls it back at once, a kill at the next build into that directory. The journal
// is not synced write by write, so after a power loss it may lack bytes that reached the disk; the check against the
// previous block map then fails and that image is removed (a check that covers the block map's data ranges only).
//
// Files beside out/node-N.img (names for node-N.img):
//   .node-N.img.ranges     what pibake wrote into the finished image: the record below
//   .node-N.img.in-place   the image while it is edited (the previous image, renamed)
//   .node-N.img.undo       its undo journal
//   .node-N.img.bmap.in-place  the previous image's block map (a second link to it while the edit
//                          runs, the only one once the final name is given up), to check a rollback
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "image/bmap.h"

namespace pibake {

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
std::string previous_bmap_path(const std::string& image_path);

// Writes the record of the finished image at `image_path` (mode 0600, atomically; its identity
// read now). Throws pibake::Error when it cannot be written.
void write_written_record(const std::string& image_path, const std::string& base_identity,
                          const std::vector<ByteRange>& ranges);

// The record of `image_path`, when there is one whose identities still hold: the image is a
// regular file with one link (editing it must not change another name's file), `base_identity`
// is the base's now, and the image's identity is the recorded one. nullopt otherwise (absent,
// malformed, stale). Never throws.
std::optional<WrittenRecord> read_written_record(const std::string& image_path, const std::string& base_identity);

// The images of `dir` ("<dir>/node-N.img") that are missing under their final name because a
// build is regenerating them in place or was killed doing so (".node-N.img.in-place" is there),
// in name order. Throws pibake::Error when `dir` cannot be listed.
std::vector<std::string> images_mid_regenerate(const std::string& dir);

// For a command that reads a finished image (flash, inspect): when `image_path` is missing
// because a regenerate in place is running or was killed, throws pibake::Error saying so and how
// to get it back (a build into its directory). Does nothing otherwise.
void require_not_mid_regenerate(const std::string& image_path);

// For a build that holds `dir`'s lock: finishes what a killed in-place regenerate left there.
// An image still under its in-place name is rolled back with its undo journal, checked against
// its previous block map and put back under its final name; one whose journal is not one, or
// that differs from its block map after the rollback, is removed with its block map (the build
// then writes it anew). Leftover journals and block maps are removed. Says what it did on stdout.
// Throws pibake::Error on an I/O error, having removed nothing of that image.
void recover_in_place_writes(const std::string& dir);

}  // namespace pibake
