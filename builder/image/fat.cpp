// FAT12/16/32 read and written in place inside an image file: boot sector (BPB) parsing, the FAT
// kept in memory and written back sector by sector, cluster allocation and I/O, and the public
// FatFs calls. Directories are in fat_dir.cpp, names and timestamps in fat_names.cpp.
#include "image/fat.h"
#include "image/write_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "image/fat_impl.h"
#include "image/in_place_edit.h"
#include "image/read_limit.h"
#include "util/build_time.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {
namespace {

// Microsoft FAT spec, "FSInfo Sector Structure".
constexpr uint32_t kFsInfoLeadSig = 0x41615252, kFsInfoStrucSig = 0x61417272;
constexpr uint32_t kFsInfoTrailSig = 0xAA550000;
constexpr uint32_t kFsInfoUnknown = 0xFFFFFFFF;

bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

void FatFs::Impl::open_and_parse(uint64_t size) {
  std::string where = shown_path_ + " at byte " + std::to_string(offset_);
  display_name_ = "the FAT filesystem in " + where;
  fd_.reset(::open(image_path_.c_str(), (writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd_) throw Error(shown_path_ + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0) throw Error(shown_path_ + ": cannot stat: " + std::strerror(errno));
  auto not_fat = [&](const std::string& why) { throw Error(where + ": not a FAT filesystem: " + why); };
  if (size < 512) not_fat("the partition is only " + std::to_string(size) + " bytes");
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < offset_ + 512)
    not_fat("the image ends before its boot sector");

  uint8_t bs[512];
  read_at(0, bs, sizeof bs);
  // Microsoft FAT spec: the signature sits at byte 510 whatever the sector size.
  if (bs[510] != 0x55 || bs[511] != 0xAA) not_fat("no 0x55AA boot sector signature");
  bytes_per_sector_ = get16(bs + 11);
  sectors_per_cluster_ = bs[13];
  reserved_sectors_ = get16(bs + 14);
  num_fats_ = bs[16];
  root_entries_ = get16(bs + 17);
  uint32_t total16 = get16(bs + 19), fat16 = get16(bs + 22);
  uint8_t media = bs[21];
  total_sectors_ = total16 != 0 ? total16 : get32(bs + 32);
  if (bytes_per_sector_ < 512 || bytes_per_sector_ > 4096 || !is_power_of_two(bytes_per_sector_))
    not_fat("bytes per sector is " + std::to_string(bytes_per_sector_) + " (expected 512, 1024, 2048 or 4096)");
  if (!is_power_of_two(sectors_per_cluster_))
    not_fat("sectors per cluster is " + std::to_string(sectors_per_cluster_) + " (expected a power of two)");
  if (reserved_sectors_ == 0) not_fat("no reserved sectors");
  if (num_fats_ == 0) not_fat("the number of FATs is 0");
  // Linux refuses other media bytes too (fat_valid_media).
  if (media != 0xF0 && media < 0xF8) not_fat("invalid media byte");
  if (total_sectors_ == 0) not_fat("the sector count is 0");
  cluster_size_ = bytes_per_sector_ * sectors_per_cluster_;

  // Linux and dosfstools take a zero BPB_FATSz16 to mean the FAT32 BPB layout.
  bool fat32 = fat16 == 0;
  fat_sectors_ = fat32 ? get32(bs + 36) : fat16;
  if (fat_sectors_ == 0) not_fat("the FAT size is 0");
  if (fat32) {
    if (root_entries_ != 0) not_fat("a FAT32 boot sector with a fixed root directory");
    if (get16(bs + 42) != 0) not_fat("unknown FAT32 version " + std::to_string(get16(bs + 42)));
    uint16_t ext_flags = get16(bs + 40);
    // Microsoft FAT spec, BPB_ExtFlags: bit 7 set means only FAT number (bits 0-3) is in use.
    mirror_fats_ = (ext_flags & 0x80) == 0;
    active_fat_ = mirror_fats_ ? 0 : (ext_flags & 0x0F);
    if (active_fat_ >= num_fats_) not_fat("the active FAT does not exist");
    root_cluster_ = get32(bs + 44);
    fsinfo_sector_ = get16(bs + 48);
    if (bs[66] == 0x29) boot_label_.assign(reinterpret_cast<char*>(bs + 71), 11);
  } else {
    if (root_entries_ == 0) not_fat("no root directory entries");
    if (bs[38] == 0x29) boot_label_.assign(reinterpret_cast<char*>(bs + 43), 11);
  }
  root_sectors_ = (root_entries_ * kSlotSize + bytes_per_sector_ - 1) / bytes_per_sector_;
  uint64_t fs_bytes = static_cast<uint64_t>(total_sectors_) * bytes_per_sector_;
  if (fs_bytes > size)
    not_fat("the boot sector says " + std::to_string(fs_bytes) + " bytes but the partition has " +
            std::to_string(size));
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < offset_ + fs_bytes)
    not_fat("the image ends inside the filesystem");
  first_data_sector_ = reserved_sectors_ + static_cast<uint64_t>(num_fats_) * fat_sectors_ + root_sectors_;
  if (first_data_sector_ >= total_sectors_) not_fat("the FATs and root directory fill the whole partition");
  uint64_t clusters = (total_sectors_ - first_data_sector_) / sectors_per_cluster_;
  if (clusters == 0) not_fat("no data clusters");
  // Microsoft FAT spec: the cluster count decides FAT12 against FAT16 (4085 is the cut), and
  // Linux rejects a FAT16 with more than 65524 clusters instead of reading it as FAT32.
  if (fat32) {
    bits_ = 32;
    if (clusters > 0x0FFFFFF5) not_fat("too many clusters for FAT32");
  } else if (clusters < 4085) {
    bits_ = 12;
  } else if (clusters <= 65524) {
    bits_ = 16;
  } else {
    not_fat(std::to_string(clusters) + " clusters is too many for FAT16 and the boot sector is not FAT32's");
  }
  cluster_count_ = static_cast<uint32_t>(clusters);
  uint64_t fat_bytes = (static_cast<uint64_t>(cluster_count_ + 2) * bits_ + 7) / 8;
  if (fat_bytes > static_cast<uint64_t>(fat_sectors_) * bytes_per_sector_)
    not_fat("the FAT is too small for " + std::to_string(cluster_count_) + " clusters");
  if (fat32 && (root_cluster_ < 2 || root_cluster_ > max_cluster()))
    not_fat("the root directory cluster " + std::to_string(root_cluster_) + " is outside the data area");

  uint64_t fat_sectors_used = (fat_bytes + bytes_per_sector_ - 1) / bytes_per_sector_;
  // The in-memory FAT is sized from the boot sector alone: bounded before it is allocated.
  if (fat_sectors_used * bytes_per_sector_ > kMaxFatBytes)
    not_fat("its FAT for " + std::to_string(cluster_count_) + " clusters takes " +
            std::to_string(fat_sectors_used * bytes_per_sector_) + " bytes, more than the " +
            std::to_string(kMaxFatBytes >> 20) + " MiB pibake holds in memory (a damaged or hostile image?)");
  fat_.resize(fat_sectors_used * bytes_per_sector_);
  fat_dirty_.assign(fat_sectors_used, false);
  read_at((reserved_sectors_ + static_cast<uint64_t>(active_fat_) * fat_sectors_) * bytes_per_sector_, fat_.data(),
          fat_.size());
  // Count free clusters ourselves: FSInfo's count is only a hint and is often stale.
  for (uint32_t c = 2; c <= max_cluster(); ++c)
    if (fat_get(c) == 0) ++free_count_;

  if (fsinfo_sector_ != 0 && fsinfo_sector_ < reserved_sectors_) {
    std::vector<uint8_t> fsi(bytes_per_sector_);
    read_at(static_cast<uint64_t>(fsinfo_sector_) * bytes_per_sector_, fsi.data(), fsi.size());
    if (get32(&fsi[0]) == kFsInfoLeadSig && get32(&fsi[484]) == kFsInfoStrucSig &&
        get32(&fsi[508]) == kFsInfoTrailSig) {
      uint32_t hint = get32(&fsi[492]);
      if (hint >= 2 && hint <= max_cluster()) next_free_ = hint;
    } else {
      fsinfo_sector_ = 0;
    }
  } else {
    fsinfo_sector_ = 0;
  }

  // The label for messages. A broken root directory must not stop the open; it will be
  // reported by whatever touches it.
  try {
    FatDir root = load_root();
    for (size_t i = 0; i < root.slot_count(); ++i) {
      const uint8_t* s = root.slot(i);
      if (s[0] == kSlotEnd) break;
      if (s[0] != kSlotFree && (s[11] & 0x3F) != kAttrLongName && (s[11] & kAttrVolumeId)) {
        root_label_.assign(reinterpret_cast<const char*>(s), 11);
        break;
      }
    }
  } catch (const Error&) {
  }
  auto trim = [](std::string& s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  };
  trim(boot_label_);
  trim(root_label_);
  std::string label = root_label_.empty() ? boot_label_ : root_label_;
  if (!label.empty() && label != "NO NAME") display_name_ = label;
}

void FatFs::Impl::fail(std::string_view path, const std::string& what) const {
  throw Error(display_name_ + ": " + (path.empty() ? std::string("/") : std::string(path)) + ": " + what);
}

void FatFs::Impl::require_writable(std::string_view path) const {
  if (!writable_) fail(path, "cannot change it: the filesystem was opened read-only");
}

void FatFs::Impl::read_at(uint64_t pos, void* buf, size_t n) const {
  pread_exact(fd_.get(), buf, n, offset_ + pos, shown_path_);
  // An image edited in place reads as the base where the previous edit wrote (in_place_edit.h).
  if (InPlaceEdit* edit = write_log_ != nullptr ? write_log_->edit() : nullptr) edit->patch_read(offset_ + pos, buf, n);
}

void FatFs::Impl::write_at(uint64_t pos, const void* buf, size_t n) const {
  if (!writable_) throw Error(shown_path_ + ": internal error: write to a read-only FAT filesystem");
  if (write_log_ != nullptr) write_log_->add(offset_ + pos, n);
  InPlaceEdit* edit = write_log_ != nullptr ? write_log_->edit() : nullptr;
  if (edit == nullptr) {
    pwrite_exact(fd_.get(), buf, n, offset_ + pos, shown_path_);
    return;
  }
  // In place: only the 512-byte sectors that change are written, each saved to the journal first.
  std::vector<uint8_t> current(n);
  pread_exact(fd_.get(), current.data(), n, offset_ + pos, shown_path_);
  edit->write_changed(
      offset_ + pos, static_cast<const uint8_t*>(buf), current.data(), n, 512,
      [&](uint64_t at, const uint8_t* data, size_t count) { pwrite_exact(fd_.get(), data, count, at, shown_path_); });
}

uint64_t FatFs::Impl::cluster_pos(uint32_t cluster) const {
  return (first_data_sector_ + static_cast<uint64_t>(cluster - 2) * sectors_per_cluster_) * bytes_per_sector_;
}

uint32_t FatFs::Impl::fat_get(uint32_t c) const {
  if (bits_ == 32) return get32(&fat_[c * 4ull]) & 0x0FFFFFFF;  // top 4 bits are reserved
  if (bits_ == 16) return get16(&fat_[c * 2ull]);
  // FAT12: two entries share three bytes; an odd cluster takes the high 12 bits.
  uint16_t v = get16(&fat_[c + c / 2]);
  return (c & 1) ? v >> 4 : v & 0x0FFF;
}

void FatFs::Impl::fat_set(uint32_t c, uint32_t value) {
  size_t at = 0, len = 0;
  if (bits_ == 32) {
    at = c * 4ull, len = 4;
    // Microsoft FAT spec: keep the high 4 bits of a FAT32 entry as they were.
    put32(&fat_[at], (get32(&fat_[at]) & 0xF0000000) | (value & 0x0FFFFFFF));
  } else if (bits_ == 16) {
    at = c * 2ull, len = 2;
    put16(&fat_[at], static_cast<uint16_t>(value));
  } else {
    at = c + c / 2, len = 2;
    uint16_t v = get16(&fat_[at]);
    v = (c & 1) ? static_cast<uint16_t>((v & 0x000F) | (value << 4))
                : static_cast<uint16_t>((v & 0xF000) | (value & 0x0FFF));
    put16(&fat_[at], v);
  }
  // A FAT12 entry can straddle two sectors: both become dirty.
  fat_dirty_[at / bytes_per_sector_] = true;
  fat_dirty_[(at + len - 1) / bytes_per_sector_] = true;
  fat_changed_ = true;
}

bool FatFs::Impl::is_end_of_chain(uint32_t v) const {
  return v >= (bits_ == 12 ? 0xFF8u : bits_ == 16 ? 0xFFF8u : 0x0FFFFFF8u);
}

uint32_t FatFs::Impl::end_of_chain() const { return bits_ == 12 ? 0xFFFu : bits_ == 16 ? 0xFFFFu : 0x0FFFFFFFu; }

std::vector<uint32_t> FatFs::Impl::chain(uint32_t first, std::string_view path, ChainOf of) const {
  std::vector<uint32_t> out;
  if (first == 0) return out;
  // cluster_size_ is a power of two from 512 to 512 KiB: 2 MiB is a whole number (4 or more) of them.
  const uint64_t max_clusters = of == ChainOf::kDirectory ? kMaxDirBytes / cluster_size_ : UINT64_MAX;
  uint32_t bad = end_of_chain() - 8;  // 0xFF7, 0xFFF7, 0x0FFFFFF7
  // Brent's cycle detection: `saved` jumps ahead at every power of two, so a loop is caught
  // within a few times its length and `out` never grows much past the clusters really in it.
  uint32_t saved = first;
  uint64_t power = 1, steps = 0;
  for (uint32_t c = first;;) {
    if (c < 2 || c > max_cluster())
      fail(path, "cluster chain points outside the data area (cluster " + std::to_string(c) + ")");
    // Before the cluster is taken: a directory's chain never grows past the limit in memory.
    if (out.size() >= max_clusters)
      fail(path, "directory's cluster chain holds more than " + std::to_string(kMaxDirBytes >> 20) +
                     " MiB, FAT's limit of " + std::to_string(kMaxDirSlots) + " entries (a damaged or hostile image?)");
    out.push_back(c);
    uint32_t next = fat_get(c);
    if (is_end_of_chain(next)) break;
    if (next == 0) fail(path, "cluster chain runs into a free cluster");
    if (next == bad) fail(path, "cluster chain runs into a bad cluster");
    // A chain longer than the number of clusters must visit one twice, too.
    if (next == saved || out.size() >= cluster_count_) fail(path, "cluster chain loops");
    if (++steps == power) saved = next, power *= 2, steps = 0;
    c = next;
  }
  return out;
}

void FatFs::Impl::check_space(uint64_t clusters, uint64_t reusable, std::string_view path) const {
  if (clusters <= free_count_ + reusable) return;
  throw Error(display_name_ + " is full: need " + std::to_string(clusters * cluster_size_) + " bytes, " +
              std::to_string((free_count_ + reusable) * cluster_size_) + " free (writing " + std::string(path) + ")");
}

std::vector<uint32_t> FatFs::Impl::allocate(uint32_t count) {
  std::vector<uint32_t> out;
  if (count == 0) return out;
  if (count > free_count_) throw Error(display_name_ + ": internal error: allocation without space");
  // First fit for one contiguous run, from the FSInfo hint to the end and then from the start.
  auto find_run = [&](uint32_t from, uint32_t to) -> uint32_t {
    uint32_t run = 0;
    for (uint32_t c = from; c <= to; ++c) {
      run = fat_get(c) == 0 ? run + 1 : 0;
      if (run == count) return c - count + 1;
    }
    return 0;
  };
  uint32_t hint = (next_free_ >= 2 && next_free_ <= max_cluster()) ? next_free_ : 2;
  uint32_t start = find_run(hint, max_cluster());
  if (start == 0 && hint > 2) start = find_run(2, max_cluster());
  if (start != 0) {
    for (uint32_t i = 0; i < count; ++i) out.push_back(start + i);
  } else {
    // Fragmented: take free clusters in order from the hint, wrapping once.
    for (uint64_t i = 0; i < cluster_count_ && out.size() < count; ++i) {
      uint32_t c = static_cast<uint32_t>(2 + (hint - 2 + i) % cluster_count_);
      if (fat_get(c) == 0) out.push_back(c);
    }
  }
  for (size_t i = 0; i < out.size(); ++i) fat_set(out[i], i + 1 < out.size() ? out[i + 1] : end_of_chain());
  free_count_ -= count;
  next_free_ = out.back() + 1 > max_cluster() ? 2 : out.back() + 1;
  return out;
}

void FatFs::Impl::free_chain(const std::vector<uint32_t>& clusters) {
  for (uint32_t c : clusters) fat_set(c, 0);
  free_count_ += static_cast<uint32_t>(clusters.size());
}

void FatFs::Impl::write_clusters(const std::vector<uint32_t>& clusters, std::string_view data) const {
  // One pwrite per contiguous run; the tail of the last cluster is zeroed so that images are
  // reproducible whatever the free space held before.
  size_t pos = 0;
  std::vector<uint8_t> zeros;
  for (size_t i = 0; i < clusters.size();) {
    size_t j = i + 1;
    while (j < clusters.size() && clusters[j] == clusters[j - 1] + 1) ++j;
    uint64_t run_bytes = static_cast<uint64_t>(j - i) * cluster_size_;
    size_t take = static_cast<size_t>(std::min<uint64_t>(run_bytes, data.size() - pos));
    if (take > 0) write_at(cluster_pos(clusters[i]), data.data() + pos, take);
    if (take < run_bytes) {
      zeros.assign(static_cast<size_t>(run_bytes - take), 0);
      write_at(cluster_pos(clusters[i]) + take, zeros.data(), zeros.size());
    }
    pos += take;
    i = j;
  }
}

std::string FatFs::Impl::read_clusters(const std::vector<uint32_t>& clusters, uint64_t size) const {
  std::string out(static_cast<size_t>(size), '\0');
  size_t pos = 0;
  for (size_t i = 0; i < clusters.size() && pos < out.size();) {
    size_t j = i + 1;
    while (j < clusters.size() && clusters[j] == clusters[j - 1] + 1) ++j;
    size_t take =
        static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(j - i) * cluster_size_, out.size() - pos));
    read_at(cluster_pos(clusters[i]), out.data() + pos, take);
    pos += take;
    i = j;
  }
  return out;
}

DosTime FatFs::Impl::now() const { return to_dos_time(timestamp_ != 0 ? timestamp_ : build_timestamp()); }

void FatFs::Impl::flush() {
  if (!writable_ || !fat_changed_) return;
  // Only the sectors that changed, to every FAT copy in use: untouched regions of a sparse
  // image stay holes, and the copies stay identical for fsck.
  for (size_t s = 0; s < fat_dirty_.size(); ++s) {
    if (!fat_dirty_[s]) continue;
    for (uint32_t f = 0; f < num_fats_; ++f) {
      if (!mirror_fats_ && f != active_fat_) continue;
      uint64_t sector = reserved_sectors_ + static_cast<uint64_t>(f) * fat_sectors_ + s;
      write_at(sector * bytes_per_sector_, &fat_[s * bytes_per_sector_], bytes_per_sector_);
    }
    fat_dirty_[s] = false;
  }
  if (fsinfo_sector_ != 0) {
    std::vector<uint8_t> fsi(bytes_per_sector_);
    uint64_t pos = static_cast<uint64_t>(fsinfo_sector_) * bytes_per_sector_;
    read_at(pos, fsi.data(), fsi.size());
    put32(&fsi[488], free_count_);
    put32(&fsi[492], next_free_);
    write_at(pos, fsi.data(), fsi.size());
  }
  fat_changed_ = false;
}

// --- Public interface ---

FatFs::FatFs(const std::string& image_path, uint64_t offset, uint64_t size, bool writable,
             const std::string& display_name, WriteLog* write_log)
    : impl_(std::make_unique<Impl>()) {
  impl_->write_log_ = write_log;
  impl_->image_path_ = image_path;
  impl_->shown_path_ = display_name.empty() ? image_path : display_name;
  impl_->offset_ = offset;
  impl_->writable_ = writable;
  impl_->open_and_parse(size);
}

FatFs::~FatFs() {
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pibake: changes to the FAT filesystem were not saved: %s\n", e.what());
  }
}

void FatFs::close() { impl_->flush(); }

int FatFs::fat_bits() const { return impl_->bits_; }

std::string FatFs::label() const { return impl_->root_label_.empty() ? impl_->boot_label_ : impl_->root_label_; }

uint64_t FatFs::free_bytes() const { return static_cast<uint64_t>(impl_->free_count_) * impl_->cluster_size_; }

void FatFs::set_timestamp(int64_t unix_seconds) { impl_->timestamp_ = unix_seconds; }

bool FatFs::exists(std::string_view path) const {
  std::vector<std::string> parts = impl_->split_path(path);
  if (parts.empty()) return true;
  auto dir = impl_->walk_dirs(parts, parts.size() - 1, false);
  return dir && impl_->find(*dir, parts.back()).has_value();
}

bool FatFs::is_directory(std::string_view path) const {
  std::vector<std::string> parts = impl_->split_path(path);
  if (parts.empty()) return true;
  auto dir = impl_->walk_dirs(parts, parts.size() - 1, false);
  if (!dir) return false;
  auto entry = impl_->find(*dir, parts.back());
  return entry && entry->is_directory();
}

std::string FatFs::read_file(std::string_view path, uint64_t max_bytes) const {
  std::vector<std::string> parts = impl_->split_path(path);
  if (parts.empty()) impl_->fail(path, "is a directory");
  FatDir dir = *impl_->walk_dirs(parts, parts.size() - 1, true);
  auto entry = impl_->find(dir, parts.back());
  if (!entry) impl_->fail(path, "no such file");
  if (entry->is_directory()) impl_->fail(path, "is a directory");
  if (entry->size > max_bytes) impl_->fail(path, too_large_to_read(entry->size, max_bytes));
  std::vector<uint32_t> clusters = impl_->chain(entry->first_cluster, path);
  // 64-bit: a size near 4 GiB plus a cluster would wrap in 32 bits and pass the check.
  uint64_t needed = (static_cast<uint64_t>(entry->size) + impl_->cluster_size_ - 1) / impl_->cluster_size_;
  if (clusters.size() < needed)
    impl_->fail(path, "file is " + std::to_string(entry->size) + " bytes but its cluster chain holds only " +
                          std::to_string(clusters.size() * static_cast<uint64_t>(impl_->cluster_size_)));
  return impl_->read_clusters(clusters, entry->size);
}

std::vector<FatEntry> FatFs::list(std::string_view dir_path) const {
  std::vector<std::string> parts = impl_->split_path(dir_path);
  FatDir dir = *impl_->walk_dirs(parts, parts.size(), true);
  std::vector<FatEntry> out;
  for (const FatDirent& e : impl_->entries(dir)) out.push_back({e.name, e.is_directory(), e.size});
  return out;
}

void FatFs::write_file(std::string_view path, std::string_view data) { impl_->write_file(path, data); }
void FatFs::mkdir_p(std::string_view path) { impl_->mkdir_p(path); }
bool FatFs::remove(std::string_view path) { return impl_->remove(path); }

}  // namespace pibake
