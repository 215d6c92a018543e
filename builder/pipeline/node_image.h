// Writing one node's image: clone the base → root partition → boot partition → finalize.
#pragma once

#include <string>

#include "image/bmap.h"
#include "pipeline/base_bmap.h"
#include "pipeline/base_image.h"
#include "plan/plan.h"

namespace pibake {

struct NodeImageResult {
  std::string path;              // final path of the image
  bool grown = false;            // the root filesystem had to grow
  uint64_t image_size = 0;       // bytes (apparent size)
  uint64_t hashed_bytes = 0;     // bytes its block map hashed (the rest came from the base's)
  bool in_place = false;         // the node's previous image was edited in place (in_place.h)
  uint64_t rewritten_bytes = 0;  // in place: bytes overwritten (each saved to the undo journal first)
};

// Bytes the root filesystem must grow by for `plan`'s files plus first-boot headroom (64 MiB);
// 0 when they fit in the base's free space.
uint64_t root_growth_needed(const BaseImage& base, const NodePlan& plan);

// Before any output: refuses (pibake::Error naming the base image) a plan whose nodes would need
// a root filesystem that resize2fs cannot grow safely (ext4 `bigalloc`).
void check_growth_possible(const BaseImage& base, const BuildPlan& plan);

// How a node's image is written besides its plan (all optional).
struct NodeWriteOptions {
  // The base's block map (base_bmap.h): pieces of the node's map that pibake did not write take
  // their hashes from it; without it every piece is hashed, and the node's previous image is
  // never edited in place (in_place.h), since its record names the base by this map's identity. The base is checked to be unchanged
  // after the clone.
  const BaseBlockMap* base_map = nullptr;
  unsigned copy_threads = 1;     // threads copying the base's data (sparse_copy.h)
  bool start_writeback = false;  // start writeback while copying (a node written alone)
};

// Writes `out_dir`/`plan.image_file` and its block map, and records what it wrote beside them
// (in_place.h). The image exists under that name only once complete; any failure removes the
// partial file (or, in place, rolls the previous image back) and throws pibake::Error naming the
// node and the step.
NodeImageResult write_node_image(const BaseImage& base, const NodePlan& plan, const std::string& out_dir,
                                 const NodeWriteOptions& opts = {});

}  // namespace pibake
