// The base image's block map, kept in the cache by the base's identity (base_bmap.h).
#include "pipeline/base_bmap.h"

#include <filesystem>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"

namespace pibake {

BaseBlockMap base_block_map(const std::string& base_path, const std::string& cache_dir) {
  const std::string identity = file_identity(base_path);
  if (identity.empty()) throw Error("cannot read the base image " + base_path);
  Sha256 key;
  key.update(identity);
  const std::string dir = cache_dir + "/bmaps";
  const std::string kept = dir + "/" + key.hex_digest() + ".bmap";
  std::string text;
  try {
    if (read_file_if_exists(kept, text)) {
      Bmap bmap = parse_bmap(text, kept);
      if (bmap.image_size == std::filesystem::file_size(base_path) && bmap.block_size == kBmapBlockSize) {
        return {std::move(bmap), identity};
      }
    }
  } catch (const std::exception&) {
    // A damaged or foreign file: made again below.
  }
  Bmap bmap = make_bmap(base_path, kBmapSplitBlocks);
  BaseBlockMap map{std::move(bmap), identity};
  check_base_unchanged(base_path, map);
  try {
    std::filesystem::create_directories(dir);
    write_file_atomic(kept, render_bmap(map.bmap), 0600);
  } catch (const std::exception&) {
    // Not kept: the next build hashes the base again.
  }
  return map;
}

void check_base_unchanged(const std::string& base_path, const BaseBlockMap& map) {
  if (file_identity(base_path) != map.identity) {
    throw Error("the base image " + base_path +
                " changed while pibake was reading it (another program wrote to it); build again once it is done");
  }
}

}  // namespace pibake
