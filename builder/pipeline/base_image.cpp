// Finding and checking the base image's partitions (see base_image.h).
#include "pipeline/base_image.h"

#include <optional>

#include "image/ext4.h"
#include "image/fat.h"
#include "util/error.h"

namespace pibake {
namespace {

constexpr const char* kBootLabel = "system-boot";
constexpr const char* kRootLabel = "writable";

bool same_label(std::string a, std::string b) {
  for (auto* s : {&a, &b})
    for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return a == b;
}

std::string describe_table(const PartitionTable& t) {
  std::string out = t.label + " table:";
  for (const Partition& p : t.partitions) {
    out += " p" + std::to_string(p.number) + " (type " + p.type + ", " + std::to_string(p.size >> 20) + " MiB)";
  }
  return t.partitions.empty() ? out + " no partitions" : out;
}

}  // namespace

BaseImage inspect_base_image(const std::string& path) {
  BaseImage base;
  base.path = path;
  base.table = read_partition_table(path);
  const std::string shape = describe_table(base.table);

  // Boot: a FAT filesystem, preferably labelled system-boot; root: ext4, preferably "writable".
  // Labels win over position, as Ubuntu's fstab and cmdline.txt refer to them by label.
  std::optional<Partition> boot, root;
  std::string root_problem;
  for (const Partition& p : base.table.partitions) {
    if (p.is_fat_type()) {
      try {
        FatFs fat(path, p.start, p.size, /*writable=*/false);
        if (!boot || same_label(fat.label(), kBootLabel)) boot = p;
      } catch (const Error&) {
        // Not FAT after all; reported below if no boot partition is found.
      }
    }
    if (p.is_linux_type()) {
      try {
        Ext4Fs fs(path, p.start, /*writable=*/false);
        if (!root || same_label(fs.label(), kRootLabel)) {
          root = p;
          base.root_block_size = fs.block_size();
          base.root_free_bytes = fs.free_bytes();
        }
      } catch (const Error& e) {
        root_problem = std::string("; p") + std::to_string(p.number) + ": " + e.what();
      }
    }
  }
  if (!boot) {
    throw Error(path +
                ": no FAT boot partition found (expected one labelled \"system-boot\", as in "
                "Ubuntu's preinstalled Raspberry Pi images); " +
                shape);
  }
  if (!root) {
    throw Error(path + ": no ext4 root partition found (expected one labelled \"writable\"); " + shape + root_problem);
  }
  base.boot = *boot;
  base.root = *root;
  return base;
}

}  // namespace pibake
