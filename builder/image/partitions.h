// The image's partition table, read and changed through libfdisk on the image file itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pibake {

struct Partition {
  int number = 0;          // 1-based, as in "p2"
  uint64_t start = 0;      // bytes from the start of the image
  uint64_t size = 0;       // bytes
  std::string type;        // MBR: hex code without 0x ("c", "83"); GPT: type GUID, upper case
  std::string name;        // GPT partition name; empty on MBR
  bool bootable = false;   // MBR boot flag
  bool container = false;  // MBR extended partition: holds the logical ones (p5...), no filesystem

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

// Reads the table of the image file and checks its layout before anyone writes through it.
// Throws pibake::Error, with describe(table) in the message, when the file holds no partition
// table, or a partition has zero size, starts inside the table itself (before GPT's first usable
// LBA, or at MBR sector 0), lies past the end of the file (a truncated image) or past GPT's last
// usable LBA, overlaps another partition (MBR extended containers excepted for their logical
// partitions), or has an offset that does not fit in 64 bits of bytes.
PartitionTable read_partition_table(const std::string& image_path);

// The table in one line, for messages: "dos table, 1048576 bytes: p1 type c, sectors 2048..4095
// (1 MiB); p2 ...". Sectors are inclusive, in units of table.sector_size.
std::string describe(const PartitionTable& table);

// Enlarges partition `number` so it ends at `new_end` bytes (sector aligned). It must be the last
// partition on the disk, and the image file must already be at least that large. GPT backup
// headers move to the new end of the disk.
void grow_partition(const std::string& image_path, int number, uint64_t new_end);

}  // namespace pibake
