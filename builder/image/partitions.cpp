// Partition tables through libfdisk, on an image file (no block device, no root).
// Call order follows util-linux's sfdisk.c: new_context → assign_device → get_partitions.
#include "image/partitions.h"

#include <libfdisk/libfdisk.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "util/error.h"

namespace pibake {
namespace {

struct ContextDeleter {
  void operator()(fdisk_context* c) const { fdisk_unref_context(c); }
};
struct TableDeleter {
  void operator()(fdisk_table* t) const { fdisk_unref_table(t); }
};
struct PartitionDeleter {
  void operator()(fdisk_partition* p) const { fdisk_unref_partition(p); }
};
using Context = std::unique_ptr<fdisk_context, ContextDeleter>;

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Context open_context(const std::string& path, bool readonly) {
  Context cxt(fdisk_new_context());
  if (!cxt) throw Error("libfdisk: out of memory");
  // Never ask questions on the terminal: pibake is not interactive.
  fdisk_disable_dialogs(cxt.get(), 1);
  int rc = fdisk_assign_device(cxt.get(), path.c_str(), readonly ? 1 : 0);
  if (rc != 0) throw Error(path + ": cannot read the partition table: " + std::strerror(-rc));
  if (!fdisk_has_label(cxt.get())) {
    throw Error(path +
                ": no partition table found (expected an MBR or GPT disk image such as "
                "Ubuntu's preinstalled Raspberry Pi image)");
  }
  return cxt;
}

}  // namespace

bool Partition::is_fat_type() const {
  static const char* kMbr[] = {"1", "4", "6", "b", "c", "e", "ef"};
  for (const char* t : kMbr)
    if (type == t) return true;
  return type == "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" ||  // Microsoft basic data
         type == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";    // EFI system
}

bool Partition::is_linux_type() const {
  return type == "83" || type == "0FC63DAF-8483-4772-8E79-3D69D8477DE4" ||  // Linux filesystem
         type == "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";                    // Linux root (arm64)
}

PartitionTable read_partition_table(const std::string& image_path) {
  Context cxt = open_context(image_path, /*readonly=*/true);
  PartitionTable table;
  table.label = fdisk_label_get_name(fdisk_get_label(cxt.get(), nullptr));
  table.sector_size = fdisk_get_sector_size(cxt.get());
  struct stat st {};
  if (stat(image_path.c_str(), &st) != 0) throw Error(image_path + ": " + std::strerror(errno));
  table.image_size = static_cast<uint64_t>(st.st_size);

  fdisk_table* raw = nullptr;
  if (fdisk_get_partitions(cxt.get(), &raw) != 0) throw Error(image_path + ": cannot list partitions");
  std::unique_ptr<fdisk_table, TableDeleter> tb(raw);
  for (size_t i = 0; i < fdisk_table_get_nents(tb.get()); ++i) {
    fdisk_partition* pa = fdisk_table_get_partition(tb.get(), i);
    if (pa == nullptr || !fdisk_partition_has_start(pa) || !fdisk_partition_has_size(pa)) continue;
    Partition p;
    p.number = static_cast<int>(fdisk_partition_get_partno(pa)) + 1;
    p.start = fdisk_partition_get_start(pa) * table.sector_size;
    p.size = fdisk_partition_get_size(pa) * table.sector_size;
    p.bootable = fdisk_partition_is_bootable(pa) != 0;
    if (const char* name = fdisk_partition_get_name(pa)) p.name = name;
    if (fdisk_parttype* t = fdisk_partition_get_type(pa)) {
      if (table.label == "dos") {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%x", fdisk_parttype_get_code(t));
        p.type = hex;
      } else if (const char* s = fdisk_parttype_get_string(t)) {
        p.type = upper(s);
      }
    }
    if (p.end() > table.image_size) {
      throw Error(image_path + ": partition " + std::to_string(p.number) + " ends at byte " + std::to_string(p.end()) +
                  " but the file has only " + std::to_string(table.image_size) + " bytes (truncated image?)");
    }
    table.partitions.push_back(p);
  }
  return table;
}

// Mirrors sfdisk's --no-reread -N: a partition object carrying only the new size is applied with
// fdisk_set_partition(), then fdisk_write_disklabel() writes the table (and GPT's backup).
void grow_partition(const std::string& image_path, int number, uint64_t new_end) {
  PartitionTable before = read_partition_table(image_path);
  auto it = std::find_if(before.partitions.begin(), before.partitions.end(),
                         [&](const Partition& p) { return p.number == number; });
  if (it == before.partitions.end()) throw Error(image_path + ": no partition " + std::to_string(number));
  for (const Partition& p : before.partitions) {
    if (p.start > it->start) {
      throw Error(image_path + ": cannot grow partition " + std::to_string(number) +
                  ": it is not the last partition on the disk");
    }
  }
  if (new_end % before.sector_size != 0 || new_end <= it->start) {
    throw Error("internal error: bad new end for partition " + std::to_string(number));
  }
  Context cxt = open_context(image_path, /*readonly=*/false);
  std::unique_ptr<fdisk_partition, PartitionDeleter> pa(fdisk_new_partition());
  fdisk_sector_t new_size = (new_end - it->start) / before.sector_size;
  int rc = fdisk_partition_set_size(pa.get(), new_size);
  if (rc == 0) rc = fdisk_set_partition(cxt.get(), static_cast<size_t>(number - 1), pa.get());
  if (rc == 0) rc = fdisk_write_disklabel(cxt.get());
  if (rc == 0) rc = fdisk_deassign_device(cxt.get(), /*nosync=*/0);
  if (rc != 0) {
    throw Error(image_path + ": cannot grow partition " + std::to_string(number) + ": " + std::strerror(-rc));
  }
}

}  // namespace pibake
