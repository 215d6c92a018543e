// Block maps (.bmap, format 2.0 as bmap-tools' `bmaptool create` writes it): which 4 KiB blocks of
// a sparse image hold data, with a SHA-256 per range, so flashers write only those blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pibake {

// bmaptool takes the host filesystem's block size; 4 KiB is what ext4/xfs/btrfs use, and it is a
// multiple of every sector size an SD card has.
inline constexpr uint64_t kBmapBlockSize = 4096;

struct ByteRange {
  uint64_t start = 0;  // bytes, inclusive
  uint64_t end = 0;    // bytes, exclusive
};

struct BmapRange {
  uint64_t first = 0;  // block numbers, both inclusive (as in the file: "<Range> 0-255 </Range>")
  uint64_t last = 0;
  std::string sha256;  // of bytes [first*bs, min((last+1)*bs, image_size)); empty when absent

  uint64_t byte_start(uint64_t block_size) const { return first * block_size; }
  uint64_t byte_end(uint64_t block_size, uint64_t image_size) const;
};

struct Bmap {
  uint64_t image_size = 0;
  uint64_t block_size = kBmapBlockSize;
  uint64_t blocks_count = 0;   // ceil(image_size / block_size)
  uint64_t mapped_blocks = 0;  // sum of the ranges' lengths
  std::vector<BmapRange> ranges;
};

// The data ranges of the open file `fd` (SEEK_DATA/SEEK_HOLE), in order. A filesystem without
// hole support reports the whole file as data, which is correct, only slower to flash.
std::vector<ByteRange> data_ranges(int fd, const std::string& name);

// Byte ranges → inclusive block ranges of `block_size`, widened to whole blocks, adjacent or
// overlapping ones merged. No checksums.
std::vector<BmapRange> to_block_ranges(const std::vector<ByteRange>& bytes, uint64_t block_size);

// Node images' block maps split their ranges at every multiple of this many blocks (1 MiB), so
// that a node can take the base's hash of every piece it did not write (BmapReuse). bmaptool
// copy reads ranges in 1 MiB batches anyway; a range's length is not part of the format's rules.
inline constexpr uint64_t kBmapSplitBlocks = 256;

// Ranges split at every multiple of `split_blocks` (0: left whole).
std::vector<BmapRange> split_block_ranges(const std::vector<BmapRange>& ranges, uint64_t split_blocks);

// What a node's block map may take from its base's instead of hashing: `base` is the base image's
// block map made with the same split; `written` the byte ranges written into the node's image
// since it was cloned (WriteLog::merged, sorted and merged); `all_written` when anything else
// may have changed it (then nothing is taken).
struct BmapReuse {
  const Bmap* base = nullptr;
  std::vector<ByteRange> written;
  bool all_written = false;
};

// Bytes of mapped data make_bmap hashed, and bytes whose hash it took from the base.
struct BmapWork {
  uint64_t hashed_bytes = 0;
  uint64_t reused_bytes = 0;
};

// Maps `image_path` and hashes every range. With `split_blocks`, ranges are split as
// split_block_ranges does; with `reuse`, a piece with the same blocks as one of the base's, in an
// image of the base's size, none of whose bytes were written, gets the base's hash unread. `work`,
// when given, receives the bytes hashed and reused. Throws pibake::Error naming the file.
Bmap make_bmap(const std::string& image_path, uint64_t split_blocks = 0, const BmapReuse* reuse = nullptr,
               BmapWork* work = nullptr);

// The file text, byte-compatible with bmaptool create (same template, same BmapFileChecksum rule:
// SHA-256 of the whole file with that field's value replaced by 64 ASCII zeros).
std::string render_bmap(const Bmap& bmap);

// Parses and checks a bmap file's text (version 2.x, sha256, BmapFileChecksum when present).
// `name` is used in errors. Throws pibake::Error on anything malformed.
Bmap parse_bmap(std::string_view text, const std::string& name);

// "<image>.bmap": where pibake writes an image's block map and where flash looks for it.
std::string bmap_path_for(const std::string& image_path);

}  // namespace pibake
