// The image's partition table, read and changed through libfdisk on the image file itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pibake {

struct Partition {
  int number = 0;         // 1-based, as in "p2"
  uint64_t start = 0;     // bytes from the start of the image
  uint64_t size = 0;      // bytes
  std::string type;       // MBR: hex code without 0x ("c", "83"); GPT: type GUID, upper case
  std::string name;       // GPT partition name; empty on MBR
  bool bootable = false;  // MBR boot flag

  uint64_t end() const { return start + size; }
  bool is_fat_type() const;    // MBR 1/4/6/b/c/e/ef, GPT basic data or EFI system
  bool is_linux_type() const;  // MBR 83, GPT Linux filesystem / root (arm64)
};

struct PartitionTable {
  std::string label;  // "dos" or "gpt"
  uint64_t sector_size = 512;
  uint64_t image_size = 0;            // bytes
  std::vector<Partition> partitions;  // in table order
};

// Reads the table of the image file. Throws pibake::Error when the file holds no partition table,
// or when a partition lies outside the file (a truncated image).
PartitionTable read_partition_table(const std::string& image_path);

// Enlarges partition `number` so it ends at `new_end` bytes (sector aligned). It must be the last
// partition on the disk, and the image file must already be at least that large. GPT backup
// headers move to the new end of the disk.
void grow_partition(const std::string& image_path, int number, uint64_t new_end);

}  // namespace pibake
