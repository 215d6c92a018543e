// Writing one node's image: clone the base → root partition → boot partition → finalize.
#pragma once

#include <string>

#include "pipeline/base_image.h"
#include "plan/plan.h"

namespace pibake {

struct NodeImageResult {
  std::string path;         // final path of the image
  bool grown = false;       // the root filesystem had to grow
  uint64_t image_size = 0;  // bytes (apparent size)
};

// Bytes the root filesystem must grow by for `plan`'s files plus first-boot headroom (64 MiB);
// 0 when they fit in the base's free space.
uint64_t root_growth_needed(const BaseImage& base, const NodePlan& plan);

// Before any output: refuses (pibake::Error naming the base image) a plan whose nodes would need
// a root filesystem that resize2fs cannot grow safely (ext4 `bigalloc`).
void check_growth_possible(const BaseImage& base, const BuildPlan& plan);

// Writes `out_dir`/`plan.image_file`. The image exists under that name only once complete;
// any failure removes the partial file and throws pibake::Error naming the node and the step.
NodeImageResult write_node_image(const BaseImage& base, const NodePlan& plan, const std::string& out_dir);

}  // namespace pibake
