// Growing an image whose root filesystem is too small for what a node needs: extend the file,
// enlarge the last partition (libfdisk), grow ext4 in place (resize2fs on "image?offset=N").
#pragma once

#include <cstdint>
#include <string>

#include "image/partitions.h"

namespace pibake {

// Grows `image_path` so that partition `root` (the last one, holding ext2/3/4) gains at least
// `extra_bytes`, rounded up to whole MiB. Returns the partition as it is afterwards.
// The filesystem must be closed by every other user while this runs.
Partition grow_root_partition(const std::string& image_path, const Partition& root, uint64_t extra_bytes);

}  // namespace pibake
