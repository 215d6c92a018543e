// Partition tables through libfdisk, on an image file (no block device, no root).
// Call order follows util-linux's sfdisk.c: new_context → assign_device → get_partitions.
#include "image/partitions.h"

#include <libfdisk/libfdisk.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "util/error.h"
#include "util/little_endian.h"
#include "util/unique_fd.h"

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

// The most a GPT's partition entry array may take (bytes): 128 entries of 128 bytes (16 KiB) is
// what every tool writes (UEFI 2.10, 5.3.1: at least 16,384 bytes). libfdisk allocates and
// CRC-checks whatever a header claims, up to 2^32 entries of 2^32 bytes.
constexpr uint64_t kMaxGptEntryArrayBytes = uint64_t{1} << 20;

// Refuses a GPT header (the primary at LBA 1 or the backup at the image's last LBA, 512-byte
// sectors) whose partition entry array is larger than kMaxGptEntryArrayBytes, before libfdisk
// reads it. The fields are UEFI 2.10's GPT header: signature "EFI PART" at byte 0,
// NumberOfPartitionEntries (uint32 LE) at 80, SizeOfPartitionEntry (uint32 LE) at 84. Images
// without a GPT are left alone. Throws pibake::Error naming the image and the header.
void check_gpt_entry_arrays(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return;  // libfdisk reports why it cannot be opened
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 1024) return;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  for (const auto& [what, offset] :
       {std::pair<const char*, uint64_t>{"primary GPT header (LBA 1)", 512},
        std::pair<const char*, uint64_t>{"backup GPT header (last LBA)", size / 512 * 512 - 512}}) {
    uint8_t h[92] = {};
    if (pread(fd.get(), h, sizeof h, static_cast<off_t>(offset)) != static_cast<ssize_t>(sizeof h)) continue;
    if (std::memcmp(h, "EFI PART", 8) != 0) continue;
    const uint64_t count = get32(h + 80), entry = get32(h + 84);
    if (count * entry > kMaxGptEntryArrayBytes) {
      throw Error(path + ": the " + what + " claims " + std::to_string(count) + " partition entries of " +
                  std::to_string(entry) + " bytes, more than the " + std::to_string(kMaxGptEntryArrayBytes >> 10) +
                  " KiB pibake reads of an entry array (128 entries of 128 bytes is the norm; a damaged or hostile "
                  "image?)");
    }
  }
}

Context open_context(const std::string& path, bool readonly) {
  check_gpt_entry_arrays(path);
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

// Refuses a layout that writes through one partition would corrupt another or the table itself.
// `first_usable`..`last_usable` are the bytes partitions may occupy (inclusive).
void check_layout(const std::string& image_path, const PartitionTable& t, uint64_t first_usable, uint64_t last_usable) {
  auto refuse = [&](const std::string& why) { throw Error(image_path + ": " + why + "; " + describe(t)); };
  for (const Partition& p : t.partitions) {
    std::string name = "partition " + std::to_string(p.number);
    if (p.size == 0) refuse(name + " has zero size");
    if (p.start < first_usable) {
      refuse(name + " starts at byte " + std::to_string(p.start) +
             ", inside the partition table (the first usable byte is " + std::to_string(first_usable) + ")");
    }
    if (p.end() > t.image_size) {
      refuse(name + " ends at byte " + std::to_string(p.end()) + " but the file has only " +
             std::to_string(t.image_size) + " bytes (truncated image?)");
    }
    if (p.end() - 1 > last_usable) {
      refuse(name + " ends past the GPT's last usable sector " + std::to_string(last_usable / t.sector_size));
    }
  }
  for (size_t i = 0; i < t.partitions.size(); ++i) {
    for (size_t j = i + 1; j < t.partitions.size(); ++j) {
      const Partition& a = t.partitions[i];
      const Partition& b = t.partitions[j];
      if (a.container || b.container) continue;  // an extended partition holds its logical ones
      if (a.start < b.end() && b.start < a.end()) {
        refuse("partitions " + std::to_string(a.number) + " and " + std::to_string(b.number) +
               " overlap: writing one would overwrite the other");
      }
    }
  }
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
    // GPT LBAs are 64-bit: a hostile table can name sectors whose byte offsets do not fit.
    uint64_t end = 0;
    if (__builtin_mul_overflow(fdisk_partition_get_start(pa), table.sector_size, &p.start) ||
        __builtin_mul_overflow(fdisk_partition_get_size(pa), table.sector_size, &p.size) ||
        __builtin_add_overflow(p.start, p.size, &end)) {
      throw Error(image_path + ": partition " + std::to_string(p.number) + " (sectors " +
                  std::to_string(fdisk_partition_get_start(pa)) + " + " + std::to_string(fdisk_partition_get_size(pa)) +
                  ") lies beyond any possible disk: the partition table is corrupt");
    }
    p.bootable = fdisk_partition_is_bootable(pa) != 0;
    p.container = fdisk_partition_is_container(pa) != 0;
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
    table.partitions.push_back(p);
  }
  uint64_t first_usable = table.sector_size, last_usable = UINT64_MAX;  // MBR: all but sector 0
  if (table.label == "gpt") {
    first_usable = fdisk_get_first_lba(cxt.get()) * table.sector_size;
    last_usable = fdisk_get_last_lba(cxt.get()) * table.sector_size + (table.sector_size - 1);
  }
  check_layout(image_path, table, first_usable, last_usable);
  return table;
}

std::string describe(const PartitionTable& t) {
  std::string out = t.label + " table, " + std::to_string(t.image_size) + " bytes:";
  const uint64_t ss = t.sector_size;
  for (size_t i = 0; i < t.partitions.size(); ++i) {
    const Partition& p = t.partitions[i];
    out += (i == 0 ? " p" : "; p") + std::to_string(p.number) + " type " + p.type;
    out += p.size == 0 ? ", sector " + std::to_string(p.start / ss) + ", empty"
                       : ", sectors " + std::to_string(p.start / ss) + ".." + std::to_string(p.end() / ss - 1) + " (" +
                             std::to_string(p.size >> 20) + " MiB)";
  }
  return t.partitions.empty() ? out + " no partitions" : out;
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
