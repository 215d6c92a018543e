// Internals of FatFs shared by fat.cpp (boot sector, FAT table, clusters, public API),
// fat_dir.cpp (directories and paths) and fat_names.cpp (long/short names, timestamps).
// Not part of pibake's interface: include image/fat.h instead.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/fat.h"
#include "util/little_endian.h"
#include "util/unique_fd.h"

namespace pibake {

// Microsoft FAT spec, "FAT Directory Structure": every slot is 32 bytes, and a directory holds at
// most 65536 of them (2 MiB); Linux's FAT driver grows none past that (msdos_fs.h, FAT_MAX_DIR_SIZE).
inline constexpr size_t kSlotSize = 32;
inline constexpr size_t kMaxDirSlots = 65536;
inline constexpr uint64_t kMaxDirBytes = uint64_t{kMaxDirSlots} * kSlotSize;
inline constexpr uint8_t kAttrReadOnly = 0x01, kAttrHidden = 0x02, kAttrSystem = 0x04, kAttrVolumeId = 0x08,
                         kAttrDirectory = 0x10, kAttrArchive = 0x20;
inline constexpr uint8_t kAttrLongName = kAttrReadOnly | kAttrHidden | kAttrSystem | kAttrVolumeId;
inline constexpr uint8_t kSlotFree = 0xE5;  // DIR_Name[0] of a deleted entry
inline constexpr uint8_t kSlotEnd = 0x00;   // DIR_Name[0]: this and every later slot is free
// DIR_NTRes bits Windows NT (and Linux, mtools) use for all-lowercase 8.3 names.
inline constexpr uint8_t kCaseLowerBase = 0x08, kCaseLowerExt = 0x10;

using ShortName = std::array<uint8_t, 11>;  // DIR_Name: 8 base + 3 extension, space padded

// One live name in a directory: its LFN slots (if any) followed by its short entry.
struct FatDirent {
  std::string name;        // long name when there is a valid one, else the 8.3 name
  ShortName short_name{};  // as stored
  size_t first_slot = 0;   // first LFN slot, or short_slot when there is no long name
  size_t short_slot = 0;
  uint8_t attr = 0;
  uint32_t first_cluster = 0;
  uint32_t size = 0;
  bool is_directory() const { return (attr & kAttrDirectory) != 0; }
};

// A directory held in memory: the fixed root region of FAT12/16, or a cluster chain.
struct FatDir {
  std::string path;                // for messages; "" is the root
  uint32_t first_cluster = 0;      // 0 for the fixed FAT12/16 root
  std::vector<uint32_t> clusters;  // the chain; empty for the fixed root
  std::vector<uint8_t> bytes;      // every slot, as on disk
  size_t slot_count() const { return bytes.size() / kSlotSize; }
  uint8_t* slot(size_t i) { return bytes.data() + i * kSlotSize; }
  const uint8_t* slot(size_t i) const { return bytes.data() + i * kSlotSize; }
};

// Slots for a new name: LFN entries (may be none) then the short entry, in disk order.
struct NewName {
  std::vector<std::array<uint8_t, kSlotSize>> slots;
};

// fat_names.cpp: pure functions, no I/O.
std::u16string utf8_to_ucs2(std::string_view utf8);  // throws Error (message without context)
std::string ucs2_to_utf8(std::u16string_view ucs2);  // surrogate pairs decoded, lone ones -> U+FFFD
void check_long_name(std::string_view name);         // throws Error saying what is wrong
std::string short_name_to_string(const ShortName& sn, uint8_t case_bits);
uint8_t lfn_checksum(const ShortName& sn);
void lfn_chars(const uint8_t* slot, char16_t* chars);  // the 13 UCS-2 units an LFN slot holds
inline constexpr size_t kCharsPerLfn = 13;
inline constexpr uint8_t kLfnLast = 0x40;                  // LDIR_Ord flag of the slot holding the name's end
bool names_equal(std::string_view a, std::string_view b);  // ASCII case-insensitive
// Builds the slots for `name` in a directory holding `taken` short names; the short entry's
// attribute, cluster, size and timestamps are filled in by the caller.
NewName make_new_name(std::string_view name, const std::vector<ShortName>& taken);
// DOS date/time (Microsoft FAT spec, "Date and Time Formats") for a Unix time in UTC.
struct DosTime {
  uint16_t date = 0, time = 0;
  uint8_t tenths = 0;
};
DosTime to_dos_time(int64_t unix_seconds);

struct FatFs::Impl {
  // --- fat.cpp: image access, geometry, FAT table, allocation ---
  std::string image_path_;
  std::string shown_path_;  // what messages call image_path_ (FatFs's display_name)
  uint64_t offset_ = 0;
  WriteLog* write_log_ = nullptr;  // when set, write_at records every range it writes
  bool writable_ = false;
  UniqueFd fd_;
  std::string display_name_;  // "system-boot", or where the filesystem is when it has no label

  uint32_t bytes_per_sector_ = 0, sectors_per_cluster_ = 0, cluster_size_ = 0;
  uint32_t reserved_sectors_ = 0, num_fats_ = 0, fat_sectors_ = 0, total_sectors_ = 0;
  uint32_t root_entries_ = 0, root_sectors_ = 0, root_cluster_ = 0;
  uint32_t fsinfo_sector_ = 0;  // 0 when there is no usable FSInfo
  uint32_t active_fat_ = 0;     // FAT32 BPB_ExtFlags: the only FAT used when mirroring is off
  bool mirror_fats_ = true;
  uint32_t cluster_count_ = 0;  // data clusters, numbered 2 .. cluster_count_ + 1
  uint64_t first_data_sector_ = 0;
  int bits_ = 0;
  std::string boot_label_, root_label_;

  std::vector<uint8_t> fat_;     // first fat_bytes of the (active) FAT
  std::vector<bool> fat_dirty_;  // per FAT sector
  bool fat_changed_ = false;
  uint32_t free_count_ = 0;
  uint32_t next_free_ = 2;  // allocation hint, as FSI_Nxt_Free
  int64_t timestamp_ = 0;

  ~Impl() = default;
  void open_and_parse(uint64_t size);
  [[noreturn]] void fail(std::string_view path, const std::string& what) const;
  void require_writable(std::string_view path) const;
  void read_at(uint64_t pos, void* buf, size_t n) const;
  void write_at(uint64_t pos, const void* buf, size_t n) const;
  uint64_t cluster_pos(uint32_t cluster) const;
  uint32_t max_cluster() const { return cluster_count_ + 1; }
  uint32_t fat_get(uint32_t cluster) const;
  void fat_set(uint32_t cluster, uint32_t value);
  bool is_end_of_chain(uint32_t value) const;
  uint32_t end_of_chain() const;
  // What a chain belongs to: a directory's may hold at most kMaxDirBytes.
  enum class ChainOf { kFile, kDirectory };
  // Every cluster of the chain starting at `first` (empty when first == 0); a chain that loops,
  // leaves the data area or runs into a free or bad cluster throws pibake::Error, naming `path`.
  // A directory's chain (`of` = kDirectory) holding more than kMaxDirBytes throws as soon as the
  // walk passes that many bytes of clusters, before any of them is read.
  std::vector<uint32_t> chain(uint32_t first, std::string_view path, ChainOf of = ChainOf::kFile) const;
  void check_space(uint64_t clusters, uint64_t reusable, std::string_view path) const;
  std::vector<uint32_t> allocate(uint32_t count);  // linked, ends with EOC; space checked before
  void free_chain(const std::vector<uint32_t>& clusters);
  void write_clusters(const std::vector<uint32_t>& clusters, std::string_view data) const;
  std::string read_clusters(const std::vector<uint32_t>& clusters, uint64_t size) const;
  DosTime now() const;
  void flush();

  // --- fat_dir.cpp: directories and paths ---
  // The root directory: the fixed FAT12/16 region, or FAT32's chain from BPB_RootClus (load_dir).
  FatDir load_root() const;
  // The directory whose chain starts at `first_cluster`, every cluster read. Throws pibake::Error,
  // naming `path`, when the chain is empty or broken (chain()) or holds more than kMaxDirBytes.
  FatDir load_dir(uint32_t first_cluster, const std::string& path) const;
  std::vector<FatDirent> entries(const FatDir& dir) const;
  std::optional<FatDirent> find(const FatDir& dir, std::string_view name) const;
  // Splits and validates a path; throws on "", ".", ".." components.
  std::vector<std::string> split_path(std::string_view path) const;
  // Loads the directory named by the first `n` components. When one is missing or is a file:
  // throws if `must`, else returns nothing.
  std::optional<FatDir> walk_dirs(const std::vector<std::string>& components, size_t n, bool must) const;
  // Where `count` new slots go (*at) and how many clusters the directory must grow by for them;
  // throws, naming `for_path`, when it cannot grow.
  uint32_t slots_needed_growth(const FatDir& dir, size_t count, size_t* at, std::string_view for_path) const;
  void grow_dir(FatDir& dir, uint32_t clusters);
  void write_slots(const FatDir& dir, size_t first, size_t count) const;
  // Adds `name` to `dir` (which must have room: see slots_needed_growth) and returns the index
  // of its short entry.
  size_t add_entry(FatDir& dir, const NewName& name, size_t at);
  void fill_short_entry(uint8_t* slot, uint8_t attr, uint32_t cluster, uint32_t size, const DosTime& t, bool created);
  void set_entry_cluster(uint8_t* slot, uint32_t cluster) const;
  uint32_t entry_cluster(const uint8_t* slot) const;
  void mark_deleted(FatDir& dir, const FatDirent& entry);
  bool dir_is_empty(const FatDir& dir) const;
  void write_file(std::string_view path, std::string_view data);
  void mkdir_p(std::string_view path);
  bool remove(std::string_view path);
};

}  // namespace pibake
