// FatFs::check(): the consistency of the structures pibake's writes rely on (see fat.h), after
// dosfstools' fsck.fat: the FAT copies, every cluster chain, cross-links, lost clusters, file
// sizes against their chains, and FSInfo's free count.
#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "image/fat_impl.h"
#include "util/error.h"

namespace pibake {
namespace {

constexpr size_t kMaxProblems = 8;  // the first few say enough; fsck.fat lists them all
constexpr uint32_t kFsInfoUnknown = 0xFFFFFFFF;

}  // namespace

std::vector<std::string> FatFs::check() const {
  const Impl& fs = *impl_;
  std::vector<std::string> problems;
  auto problem = [&](std::string text) {
    if (problems.size() < kMaxProblems) problems.push_back(std::move(text));
  };

  // The FAT copies agree (when mirrored): fsck.fat reports "FATs differ".
  if (fs.mirror_fats_) {
    std::vector<uint8_t> copy(fs.fat_.size());
    for (uint32_t k = 0; k < fs.num_fats_; ++k) {
      if (k == fs.active_fat_) continue;
      fs.read_at((fs.reserved_sectors_ + static_cast<uint64_t>(k) * fs.fat_sectors_) * fs.bytes_per_sector_,
                 copy.data(), copy.size());
      // Only the entries of real clusters: the bytes past the last one are unused padding.
      size_t used = static_cast<size_t>((static_cast<uint64_t>(fs.cluster_count_ + 2) * fs.bits_) / 8);
      if (std::memcmp(copy.data(), fs.fat_.data(), used) != 0)
        problem(fmt::format("FAT copy {} differs from FAT {}", k + 1, fs.active_fat_ + 1));
    }
  }

  // Every chain reachable from the root, each cluster owned by one name at most.
  std::vector<uint32_t> owner(static_cast<size_t>(fs.max_cluster()) + 1, 0);
  std::vector<std::string> names{""};  // names[owner]; 0 is "nobody"
  auto claim = [&](const std::vector<uint32_t>& chain, const std::string& path) {
    names.push_back(path.empty() ? "/" : path);
    uint32_t me = static_cast<uint32_t>(names.size() - 1);
    bool clean = true;
    for (uint32_t c : chain) {
      if (owner[c] != 0) {
        problem(fmt::format("{} and {} share cluster {} (cross-linked)", names[owner[c]], names[me], c));
        clean = false;
        break;
      }
      owner[c] = me;
    }
    return clean;
  };
  std::vector<FatDir> pending;
  try {
    FatDir root = fs.load_root();
    if (fs.bits_ == 32) claim(root.clusters, "");
    pending.push_back(std::move(root));
  } catch (const Error& e) {
    problem(std::string("the root directory: ") + e.what());
  }
  while (!pending.empty() && problems.size() < kMaxProblems) {
    FatDir dir = std::move(pending.back());
    pending.pop_back();
    for (const FatDirent& e : fs.entries(dir)) {
      std::string path = dir.path + "/" + e.name;
      try {
        std::vector<uint32_t> chain =
            fs.chain(e.first_cluster, path, e.is_directory() ? Impl::ChainOf::kDirectory : Impl::ChainOf::kFile);
        if (!claim(chain, path)) continue;  // not descended: a cross-linked directory may loop
        if (e.is_directory()) {
          if (e.first_cluster != 0) pending.push_back(fs.load_dir(e.first_cluster, path));
        } else {
          uint64_t need = (uint64_t{e.size} + fs.cluster_size_ - 1) / fs.cluster_size_;
          if (chain.size() != need) {
            problem(fmt::format("{} is {} bytes but its cluster chain has {} clusters ({} expected)", path, e.size,
                                chain.size(), need));
          }
        }
      } catch (const Error& err) {
        problem(err.what());
      }
    }
  }
  if (!problems.empty()) return problems;

  // Clusters in use that no name reaches are lost (fsck.fat would reclaim them).
  const uint32_t bad = fs.end_of_chain() - 8;
  uint64_t lost = 0;
  for (uint32_t c = 2; c <= fs.max_cluster(); ++c) {
    uint32_t v = fs.fat_get(c);
    if (v != 0 && v != bad && owner[c] == 0) ++lost;
  }
  if (lost != 0) problem(fmt::format("{} clusters are marked in use but belong to no file (lost clusters)", lost));

  // FSInfo's free count, when it claims to know it.
  if (fs.fsinfo_sector_ != 0) {
    std::vector<uint8_t> fsi(fs.bytes_per_sector_);
    fs.read_at(static_cast<uint64_t>(fs.fsinfo_sector_) * fs.bytes_per_sector_, fsi.data(), fsi.size());
    uint32_t said = get32(&fsi[488]);
    if (said != kFsInfoUnknown && said != fs.free_count_) {
      problem(fmt::format("the FSInfo free cluster count is {} but {} clusters are free", said, fs.free_count_));
    }
  }
  return problems;
}

}  // namespace pibake
