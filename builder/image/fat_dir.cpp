// FAT directories: loading the fixed FAT12/16 root or a cluster-chained directory, parsing its
// slots (VFAT long names, 8.3 entries), path walks, and the changes: write_file, mkdir_p, remove.
#include <algorithm>

#include "image/fat_impl.h"
#include "util/error.h"

namespace pibake {
namespace {

// LDIR_Ord goes up to 20 slots (255 characters, 13 per slot).
constexpr uint8_t kMaxLfnSlots = 20;

std::string join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

bool is_dot_entry(const uint8_t* s) { return s[0] == '.'; }  // "." and ".." (no other name starts so)

}  // namespace

FatDir FatFs::Impl::load_root() const {
  if (bits_ == 32) return load_dir(root_cluster_, "");
  FatDir dir;
  dir.bytes.resize(root_entries_ * kSlotSize);
  read_at((reserved_sectors_ + static_cast<uint64_t>(num_fats_) * fat_sectors_) * bytes_per_sector_, dir.bytes.data(),
          dir.bytes.size());
  return dir;
}

FatDir FatFs::Impl::load_dir(uint32_t first_cluster, const std::string& path) const {
  FatDir dir;
  dir.path = path;
  dir.first_cluster = first_cluster;
  // Bounded while it is walked: a chain looping through a whole partition is refused at 2 MiB,
  // not read (a crafted root directory through every cluster of 512 MiB took 135 s and 1 GB).
  dir.clusters = chain(first_cluster, path, ChainOf::kDirectory);
  if (dir.clusters.empty()) fail(path, "directory has no clusters");
  std::string bytes = read_clusters(dir.clusters, static_cast<uint64_t>(dir.clusters.size()) * cluster_size_);
  dir.bytes.assign(bytes.begin(), bytes.end());
  return dir;
}

std::vector<FatDirent> FatFs::Impl::entries(const FatDir& dir) const {
  std::vector<FatDirent> out;
  // The long name being collected: slots come last-part first, ordinals counting down to 1.
  std::u16string units;
  bool lfn_ok = false;
  uint8_t lfn_next = 0, lfn_sum = 0;
  size_t lfn_start = 0;
  for (size_t i = 0; i < dir.slot_count(); ++i) {
    const uint8_t* s = dir.slot(i);
    if (s[0] == kSlotEnd) break;
    if (s[0] == kSlotFree) {
      lfn_ok = false;
      continue;
    }
    uint8_t attr = s[11];
    if ((attr & 0x3F) == kAttrLongName) {
      uint8_t ord = s[0] & 0x1F;
      if (s[0] & kLfnLast) {
        lfn_ok = ord >= 1 && ord <= kMaxLfnSlots;
        units.assign(ord * kCharsPerLfn, u'\0');
        lfn_sum = s[13];
        lfn_start = i;
      } else {
        lfn_ok = lfn_ok && ord >= 1 && ord == lfn_next && s[13] == lfn_sum;
      }
      if (lfn_ok) {
        lfn_chars(s, &units[(ord - 1) * kCharsPerLfn]);
        lfn_next = static_cast<uint8_t>(ord - 1);
      }
      continue;
    }
    // Volume label, and "." / "..": not names the caller can see.
    if ((attr & kAttrVolumeId) || is_dot_entry(s)) {
      lfn_ok = false;
      continue;
    }
    FatDirent e;
    std::copy(s, s + 11, e.short_name.begin());
    e.short_slot = e.first_slot = i;
    e.attr = attr;
    e.first_cluster = entry_cluster(s);
    e.size = get32(s + 28);
    // Microsoft FAT spec: the long name belongs to this entry only if every ordinal was seen
    // and the checksum of this short name matches.
    if (lfn_ok && lfn_next == 0 && lfn_checksum(e.short_name) == lfn_sum) {
      size_t end = 0;
      while (end < units.size() && units[end] != 0 && units[end] != 0xFFFF) ++end;
      if (end > 0) {
        e.name = ucs2_to_utf8(std::u16string_view(units).substr(0, end));
        e.first_slot = lfn_start;
      }
    }
    if (e.name.empty()) e.name = short_name_to_string(e.short_name, s[12]);
    lfn_ok = false;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<FatDirent> FatFs::Impl::find(const FatDir& dir, std::string_view name) const {
  for (FatDirent& e : entries(dir)) {
    // FAT matches a name against both the long and the 8.3 form, ignoring case.
    if (names_equal(e.name, name) || names_equal(short_name_to_string(e.short_name, 0), name)) return e;
  }
  return std::nullopt;
}

std::vector<std::string> FatFs::Impl::split_path(std::string_view path) const {
  std::vector<std::string> parts;
  std::string_view rest = path;
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (rest.empty()) return parts;
  for (;;) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..")
      fail(path, "not a valid path (empty, \".\" and \"..\" components are not allowed)");
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return parts;
}

std::optional<FatDir> FatFs::Impl::walk_dirs(const std::vector<std::string>& parts, size_t n, bool must) const {
  FatDir dir = load_root();
  for (size_t k = 0; k < n; ++k) {
    std::string sub = join(parts, k + 1);
    auto e = find(dir, parts[k]);
    if (!e || !e->is_directory()) {
      if (!must) return std::nullopt;
      fail(sub, e ? "is not a directory" : "no such directory");
    }
    dir = load_dir(e->first_cluster, sub);
  }
  return dir;
}

uint32_t FatFs::Impl::slots_needed_growth(const FatDir& dir, size_t count, size_t* at,
                                          std::string_view for_path) const {
  // First fit over deleted slots; everything from the 0x00 end marker on is free as well.
  size_t n = dir.slot_count(), run = 0, start = n;
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = dir.slot(i)[0];
    if (b == kSlotEnd || b == kSlotFree) {
      if (run == 0) start = i;
      run = b == kSlotEnd ? run + (n - i) : run + 1;
      if (b == kSlotEnd || run >= count) break;
    } else {
      run = 0;
    }
  }
  if (run == 0) start = n;
  *at = start;
  if (run >= count) return 0;
  // Not enough: the free run at the end (maybe empty) continues into new clusters.
  if (dir.clusters.empty())
    fail(for_path,
         "the root directory is full (" + std::to_string(root_entries_) + " entries, and FAT12/16 cannot grow it)");
  size_t slots_per_cluster = cluster_size_ / kSlotSize;
  size_t extra = count - run;
  auto grow = static_cast<uint32_t>((extra + slots_per_cluster - 1) / slots_per_cluster);
  if (dir.slot_count() + grow * slots_per_cluster > kMaxDirSlots)
    fail(for_path, "its directory is full (FAT allows 65536 entries)");
  return grow;
}

void FatFs::Impl::grow_dir(FatDir& dir, uint32_t clusters) {
  std::vector<uint32_t> added = allocate(clusters);
  fat_set(dir.clusters.back(), added.front());
  write_clusters(added, "");  // a new directory cluster must be zeroed: 0x00 ends the listing
  dir.clusters.insert(dir.clusters.end(), added.begin(), added.end());
  dir.bytes.resize(dir.clusters.size() * static_cast<size_t>(cluster_size_), 0);
}

void FatFs::Impl::write_slots(const FatDir& dir, size_t first, size_t count) const {
  uint64_t root_pos = (reserved_sectors_ + static_cast<uint64_t>(num_fats_) * fat_sectors_) * bytes_per_sector_;
  for (size_t i = first; i < first + count; ++i) {
    uint64_t byte = i * kSlotSize;
    uint64_t pos =
        dir.clusters.empty() ? root_pos + byte : cluster_pos(dir.clusters[byte / cluster_size_]) + byte % cluster_size_;
    write_at(pos, dir.slot(i), kSlotSize);
  }
}

size_t FatFs::Impl::add_entry(FatDir& dir, const NewName& name, size_t at) {
  size_t end = 0;
  while (end < dir.slot_count() && dir.slot(end)[0] != kSlotEnd) ++end;
  for (size_t k = 0; k < name.slots.size(); ++k)
    std::copy(name.slots[k].begin(), name.slots[k].end(), dir.slot(at + k));
  size_t count = name.slots.size();
  // Slots past the old end marker were free by position only; keep the listing ending right
  // after the new entry so that stale bytes there never become visible.
  if (at + count > end && at + count < dir.slot_count() && dir.slot(at + count)[0] != kSlotEnd) {
    dir.slot(at + count)[0] = kSlotEnd;
    ++count;
  }
  write_slots(dir, at, count);
  return at + name.slots.size() - 1;
}

void FatFs::Impl::fill_short_entry(uint8_t* s, uint8_t attr, uint32_t cluster, uint32_t size, const DosTime& t,
                                   bool created) {
  s[11] = attr;
  if (created) {
    s[13] = t.tenths;
    put16(s + 14, t.time);
    put16(s + 16, t.date);
  }
  put16(s + 18, t.date);  // last access date
  set_entry_cluster(s, cluster);
  put16(s + 22, t.time);
  put16(s + 24, t.date);
  put32(s + 28, size);
}

void FatFs::Impl::set_entry_cluster(uint8_t* s, uint32_t cluster) const {
  put16(s + 26, static_cast<uint16_t>(cluster));
  // DIR_FstClusHI only exists on FAT32; FAT12/16 keep it 0.
  put16(s + 20, bits_ == 32 ? static_cast<uint16_t>(cluster >> 16) : 0);
}

uint32_t FatFs::Impl::entry_cluster(const uint8_t* s) const {
  return get16(s + 26) | (bits_ == 32 ? static_cast<uint32_t>(get16(s + 20)) << 16 : 0);
}

void FatFs::Impl::mark_deleted(FatDir& dir, const FatDirent& entry) {
  for (size_t i = entry.first_slot; i <= entry.short_slot; ++i) dir.slot(i)[0] = kSlotFree;
  write_slots(dir, entry.first_slot, entry.short_slot - entry.first_slot + 1);
}

bool FatFs::Impl::dir_is_empty(const FatDir& dir) const { return entries(dir).empty(); }

namespace {

std::vector<ShortName> short_names(const std::vector<FatDirent>& entries) {
  std::vector<ShortName> out;
  for (const FatDirent& e : entries) out.push_back(e.short_name);
  return out;
}

}  // namespace

void FatFs::Impl::write_file(std::string_view path, std::string_view data) {
  require_writable(path);
  std::vector<std::string> parts = split_path(path);
  if (parts.empty()) fail(path, "is the root directory");
  if (data.size() > 0xFFFFFFFFull) fail(path, "is larger than FAT's limit of 4 GiB - 1 bytes");
  FatDir dir = *walk_dirs(parts, parts.size() - 1, true);
  DosTime t = now();  // may throw (bad SOURCE_DATE_EPOCH): before anything changes
  auto needed = static_cast<uint32_t>((data.size() + cluster_size_ - 1) / cluster_size_);
  auto size = static_cast<uint32_t>(data.size());

  if (auto existing = find(dir, parts.back())) {
    if (existing->is_directory()) fail(path, "is a directory");
    // Replace in place: same directory entry (name, attributes, creation time), new chain.
    std::vector<uint32_t> old = chain(existing->first_cluster, path);
    check_space(needed, old.size(), path);
    free_chain(old);
    std::vector<uint32_t> clusters = allocate(needed);
    write_clusters(clusters, data);
    uint8_t* s = dir.slot(existing->short_slot);
    // Windows and Linux set the archive bit on every change.
    fill_short_entry(s, static_cast<uint8_t>(s[11] | kAttrArchive), clusters.empty() ? 0 : clusters.front(), size, t,
                     false);
    write_slots(dir, existing->short_slot, 1);
    return;
  }

  NewName name;
  try {
    check_long_name(parts.back());
    name = make_new_name(parts.back(), short_names(entries(dir)));
  } catch (const Error& e) {
    fail(path, std::string("the name ") + e.what());
  }
  size_t at = 0;
  uint32_t grow = slots_needed_growth(dir, name.slots.size(), &at, path);
  // Check all the space first so that a full filesystem leaves nothing half done.
  check_space(static_cast<uint64_t>(needed) + grow, 0, path);
  std::vector<uint32_t> clusters = allocate(needed);
  write_clusters(clusters, data);
  if (grow > 0) grow_dir(dir, grow);
  fill_short_entry(name.slots.back().data(), kAttrArchive, clusters.empty() ? 0 : clusters.front(), size, t, true);
  add_entry(dir, name, at);
}

void FatFs::Impl::mkdir_p(std::string_view path) {
  require_writable(path);
  std::vector<std::string> parts = split_path(path);
  DosTime t = now();
  FatDir dir = load_root();
  for (size_t k = 0; k < parts.size(); ++k) {
    std::string sub = join(parts, k + 1);
    if (auto e = find(dir, parts[k])) {
      if (!e->is_directory()) fail(sub, "exists and is not a directory");
      dir = load_dir(e->first_cluster, sub);
      continue;
    }
    NewName name;
    try {
      check_long_name(parts[k]);
      name = make_new_name(parts[k], short_names(entries(dir)));
    } catch (const Error& e) {
      fail(sub, std::string("the name ") + e.what());
    }
    size_t at = 0;
    uint32_t grow = slots_needed_growth(dir, name.slots.size(), &at, sub);
    check_space(1ull + grow, 0, sub);
    uint32_t cluster = allocate(1).front();
    // Microsoft FAT spec: a directory starts with "." (itself) and ".." (its parent, where 0
    // stands for the root, FAT32 included).
    std::string block(cluster_size_, '\0');
    auto* dot = reinterpret_cast<uint8_t*>(block.data());
    std::fill(dot, dot + 11, ' ');
    std::fill(dot + kSlotSize, dot + kSlotSize + 11, ' ');
    dot[0] = dot[kSlotSize] = dot[kSlotSize + 1] = '.';
    fill_short_entry(dot, kAttrDirectory, cluster, 0, t, true);
    fill_short_entry(dot + kSlotSize, kAttrDirectory, k == 0 ? 0 : dir.first_cluster, 0, t, true);
    write_clusters({cluster}, block);
    if (grow > 0) grow_dir(dir, grow);
    fill_short_entry(name.slots.back().data(), kAttrDirectory, cluster, 0, t, true);
    add_entry(dir, name, at);
    dir = load_dir(cluster, sub);
  }
}

bool FatFs::Impl::remove(std::string_view path) {
  require_writable(path);
  std::vector<std::string> parts = split_path(path);
  if (parts.empty()) fail(path, "is the root directory and cannot be removed");
  auto dir = walk_dirs(parts, parts.size() - 1, false);
  if (!dir) return false;
  auto entry = find(*dir, parts.back());
  if (!entry) return false;
  // Walk the chain before changing anything: a broken one is reported, not half freed.
  std::vector<uint32_t> clusters =
      chain(entry->first_cluster, path, entry->is_directory() ? ChainOf::kDirectory : ChainOf::kFile);
  if (entry->is_directory() && !dir_is_empty(load_dir(entry->first_cluster, join(parts, parts.size()))))
    fail(path, "directory is not empty");
  free_chain(clusters);
  mark_deleted(*dir, *entry);
  return true;
}

}  // namespace pibake
