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

// Writes `out_dir`/`plan.image_file`. The image exists under that name only once complete;
// any failure removes the partial file and throws pibake::Error naming the node and the step.
NodeImageResult write_node_image(const BaseImage& base, const NodePlan& plan, const std::string& out_dir);

}  // namespace pibake
