// Preparing the base image: find its boot (FAT "system-boot") and root (ext4 "writable")
// partitions and check they are what pibake can write, before any output is created.
#pragma once

#include <cstdint>
#include <string>

#include "image/partitions.h"

namespace pibake {

struct BaseImage {
  std::string path;
  PartitionTable table;
  Partition boot;
  Partition root;
  uint64_t root_block_size = 4096;
  uint64_t root_free_bytes = 0;
};

// Reads the partition table and opens both filesystems read-only. Throws pibake::Error saying
// what was expected and what was found when the image is not of the Ubuntu raspi shape.
BaseImage inspect_base_image(const std::string& path);

}  // namespace pibake
