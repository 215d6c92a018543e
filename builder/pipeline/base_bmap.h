// The base image's block map, hashed once per base and kept in the cache, so that every node's
// block map hashes only the bytes pibake wrote into it (image/bmap.h, BmapReuse).
#pragma once

#include <string>

#include "image/bmap.h"

namespace pibake {

// The block map of the base image at `base_path`, split as node block maps are
// (kBmapSplitBlocks), with a SHA-256 per piece. Read from `cache_dir`/bmaps/<key>.bmap when there,
// else made (reading the whole base once) and kept there (0600). <key> is the SHA-256 of the
// base's file identity (util/files.h: device, inode, size, ctime, mtime), the identity the cache
// records next to every verified blob, so an unchanged base is never read again and any change
// to it gives a new key. A kept map that fails parse_bmap's checks or does not match the base's
// size is made again. Throws pibake::Error when the base cannot be read, or changed while it was
// hashed; a cache that cannot be written only costs the next run the hashing.
struct BaseBlockMap {
  Bmap bmap;
  std::string identity;  // file_identity() of the base the map describes
};
BaseBlockMap base_block_map(const std::string& base_path, const std::string& cache_dir);

// Throws pibake::Error unless the base at `base_path` is still the file `map` describes: a base
// written to during the build (its ctime moves) would leave node maps with hashes of bytes the
// node images do not hold. Called after each node's clone.
void check_base_unchanged(const std::string& base_path, const BaseBlockMap& map);

}  // namespace pibake
