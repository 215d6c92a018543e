// An inode's block map (its extent tree, or its indirect blocks on ext2/ext3) checked before
// libext2fs is let walk it. libext2fs trusts the map: ext2fs_lookup and ext2fs_dir_iterate2 read
// every block a directory's extents map, whatever its size says, and walk the tree entry by
// entry, so a tree whose index entries share one lower block (a DAG: 16 KiB on disk) makes each
// lookup walk 340^depth leaf entries, and a leaf can map 32768 blocks an entry. The check walks
// the map itself once per inode and per Ext4Fs, with a budget derived from the inode's size,
// before ext2fs_lookup, ext2fs_dir_iterate2, ext2fs_file_read or ext2fs_block_iterate3 (freeing).

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "image/ext4_impl.h"
#include "util/error.h"

namespace pibake {
namespace {

// Linux's EXT4_MAX_EXTENT_DEPTH (fs/ext4/ext4_extents.h): the kernel refuses a deeper tree
// (ext4_ext_check_inode, "invalid extent depth"). With 4 KiB blocks 4 levels address every one of
// ext4's 2^32 logical blocks (libext2fs's ext2fs_max_extent_depth); mke2fs and the kernel build
// trees of 1 or 2 levels.
constexpr unsigned kMaxExtentDepth = 5;
// Entries a sound tree shows per block it maps: a leaf entry maps at least one block, and each
// level above it needs at most one index entry for it (a tree block is never empty:
// ext2fs_extent_get refuses one). Plus the 4 of the root, in the inode.
constexpr uint64_t kEntriesPerBlock = kMaxExtentDepth + 1;
constexpr uint64_t kRootEntries = 4;

struct ExtentHandleCloser {
  void operator()(ext2_extent_handle_t handle) const { ext2fs_extent_free(handle); }
};
using ExtentHandle = std::unique_ptr<std::remove_pointer_t<ext2_extent_handle_t>, ExtentHandleCloser>;

// What a walk of one inode's map has seen, against what the inode allows. Each step returns the
// problem it found, empty while the map is sound.
struct MapBudget {
  const char* map = "extent tree";  // or "indirect block map"
  uint64_t size = 0;                // i_size, for messages
  blk64_t first_block = 0;          // the filesystem's data blocks: [first_block, blocks_count)
  blk64_t blocks_count = 0;
  uint64_t max_initialized = 0;  // data blocks holding content
  uint64_t max_mapped = 0;       // data blocks, preallocated (uninitialized) ones included
  uint64_t max_entries = 0;      // tree blocks and extents (data blocks, for an indirect map)

  uint64_t initialized = 0, mapped = 0, entries = 0;
  std::unordered_set<blk64_t> tree_blocks;
  std::vector<std::pair<blk64_t, uint64_t>> runs;  // data blocks mapped: start, length
  std::string problem;                             // what stopped ext2fs_block_iterate3 (walk_indirect)

  bool in_fs(blk64_t start, uint64_t len) const {
    return start >= first_block && start < blocks_count && len <= blocks_count - start;
  }
  std::string count_entry() {
    if (++entries <= max_entries) return {};
    return fmt::format("its {} has more than {} entries, more than its size ({} bytes) can need", map, max_entries,
                       size);
  }
  // An index entry's child (extents) or an indirect block: read next by libext2fs.
  std::string tree_block(blk64_t block) {
    if (std::string problem = count_entry(); !problem.empty()) return problem;
    if (!in_fs(block, 1)) {
      return fmt::format("its {} points to block {}, outside the filesystem (blocks {} to {})", map, block, first_block,
                         blocks_count - 1);
    }
    if (!tree_blocks.insert(block).second) {
      return fmt::format("its {} reaches block {} twice, a tree that shares or loops through its own blocks", map,
                         block);
    }
    return {};
  }
  // `len` data blocks from `start` (an extent, or one block of an indirect map).
  std::string data_run(blk64_t start, uint64_t len, bool is_initialized) {
    if (std::string problem = count_entry(); !problem.empty()) return problem;
    if (len == 0) return fmt::format("its {} has an extent of no blocks", map);
    if (!in_fs(start, len)) {
      return fmt::format("its {} maps blocks {} to {}, outside the filesystem (blocks {} to {})", map, start,
                         start + (len - 1), first_block, blocks_count - 1);
    }
    mapped += len;
    if (is_initialized) initialized += len;
    if (initialized > max_initialized) {
      return fmt::format("its {} maps more than {} blocks, more than its size ({} bytes) allows", map, max_initialized,
                         size);
    }
    if (mapped > max_mapped) {
      return fmt::format("its {} maps more than {} blocks, more than {}", map, max_mapped,
                         max_mapped == blocks_count ? "the filesystem holds" : "its size allows");
    }
    if (!runs.empty() && runs.back().first + runs.back().second == start) {
      runs.back().second += len;  // contiguous with the last run, as a block-by-block map mostly is
    } else {
      runs.emplace_back(start, len);
    }
    return {};
  }
  // The same data block mapped twice: e2fsck's "multiply-claimed blocks", and a directory made
  // to look as large as its size allows out of one block read again and again.
  std::string shared_data() {
    std::sort(runs.begin(), runs.end());
    for (std::size_t i = 1; i < runs.size(); ++i) {
      if (runs[i].first < runs[i - 1].first + runs[i - 1].second) {
        return fmt::format("its {} maps block {} more than once", map, runs[i].first);
      }
    }
    return {};
  }
};

// Walks the extent tree as ext2fs_block_iterate3 would (ext2fs_extent_get, EXT2_EXTENT_NEXT), each
// index entry seen before libext2fs reads the block below it.
std::string walk_extents(ext2_filsys fs, ext2_ino_t ino, ext2_inode* inode, MapBudget& budget) {
  ext2_extent_handle_t raw = nullptr;
  errcode_t rc = ext2fs_extent_open2(fs, ino, inode, &raw);
  if (rc != 0) return std::string("its extent tree cannot be read: ") + error_message(rc);
  ExtentHandle handle(raw);
  ext2_extent_info info{};
  rc = ext2fs_extent_get_info(handle.get(), &info);
  if (rc != 0) return std::string("its extent tree cannot be read: ") + error_message(rc);
  if (static_cast<unsigned>(info.max_depth) > kMaxExtentDepth) {
    return fmt::format("its extent tree is {} levels deep, more than ext4's {}", info.max_depth, kMaxExtentDepth);
  }
  ext2fs_extent extent{};
  for (rc = ext2fs_extent_get(handle.get(), EXT2_EXTENT_ROOT, &extent); rc == 0;
       rc = ext2fs_extent_get(handle.get(), EXT2_EXTENT_NEXT, &extent)) {
    if (extent.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) continue;  // an index entry on the way back up
    std::string problem =
        (extent.e_flags & EXT2_EXTENT_FLAGS_LEAF)
            ? budget.data_run(extent.e_pblk, extent.e_len, !(extent.e_flags & EXT2_EXTENT_FLAGS_UNINIT))
            : budget.tree_block(extent.e_pblk);
    if (!problem.empty()) return problem;
  }
  if (rc != EXT2_ET_EXTENT_NO_NEXT) return std::string("its extent tree cannot be read: ") + error_message(rc);
  return budget.shared_data();
}

// An ext2/ext3 inode's indirect blocks (up to three levels), through ext2fs_block_iterate3, which
// hands each indirect block to the callback before reading it.
int count_block(ext2_filsys, blk64_t* block, e2_blkcnt_t blockcnt, blk64_t, int, void* priv) {
  auto* budget = static_cast<MapBudget*>(priv);
  budget->problem = blockcnt < 0 ? budget->tree_block(*block) : budget->data_run(*block, 1, true);
  return budget->problem.empty() ? 0 : BLOCK_ABORT;
}

std::string walk_indirect(ext2_filsys fs, ext2_ino_t ino, MapBudget& budget) {
  budget.map = "indirect block map";
  errcode_t rc = ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_READ_ONLY, nullptr, count_block, &budget);
  if (!budget.problem.empty()) return budget.problem;
  if (rc != 0) return std::string("its indirect block map cannot be read: ") + error_message(rc);
  return budget.shared_data();
}

}  // namespace

std::string Ext4Fs::Impl::block_map_problem(ext2_ino_t ino, std::string_view path) {
  ext2_filsys filesystem = fs();
  ext2_inode_large inode = read_inode(ino, path);
  auto* small = reinterpret_cast<ext2_inode*>(&inode);
  // Inline data, fast symlinks, devices: nothing for libext2fs to walk.
  if (!ext2fs_inode_has_valid_blocks2(filesystem, small)) return {};
  const ext2_super_block* sb = filesystem->super;
  const uint64_t bs = filesystem->blocksize;
  MapBudget budget;
  budget.size = EXT2_I_SIZE(small);
  budget.first_block = sb->s_first_data_block;
  budget.blocks_count = ext2fs_blocks_count(filesystem->super);
  if (LINUX_S_ISDIR(inode.i_mode)) {
    if (budget.size > kMaxDirectoryBytes) {
      return fmt::format("it claims {} bytes, more than the {} MiB pibake reads of a directory", budget.size,
                         kMaxDirectoryBytes >> 20);
    }
    // Every block of a directory is read at each lookup; e2fsck allows s_prealloc_dir_blocks
    // (normally 0) past its size.
    budget.max_initialized = budget.max_mapped = (budget.size + bs - 1) / bs + sb->s_prealloc_dir_blocks;
    budget.max_entries = kEntriesPerBlock * budget.max_mapped + kRootEntries;
  } else {
    // Content: up to i_size, and one block more (e2fsck's bound: no initialized block past the one
    // holding i_size); fs-verity keeps its Merkle tree past i_size. Preallocated (uninitialized)
    // extents past i_size are sound, counted by i_blocks; no file maps more blocks than exist.
    const bool verity = inode.i_flags & EXT4_VERITY_FL;
    budget.max_initialized = verity ? budget.blocks_count : budget.size / bs + 1;
    budget.max_mapped = budget.blocks_count;
    const uint64_t i_blocks = ext2fs_get_stat_i_blocks(filesystem, small) / (bs / 512);
    budget.max_entries =
        kEntriesPerBlock * std::min<uint64_t>(budget.blocks_count, std::max(budget.max_initialized, i_blocks)) +
        kRootEntries;
  }
  return (inode.i_flags & EXT4_EXTENTS_FL) ? walk_extents(filesystem, ino, small, budget)
                                           : walk_indirect(filesystem, ino, budget);
}

void Ext4Fs::Impl::require_sound_block_map(ext2_ino_t ino, std::string_view action, std::string_view path,
                                           std::string_view subject) {
  auto verdict = block_map_verdicts.find(ino);
  if (verdict == block_map_verdicts.end()) {
    verdict = block_map_verdicts.emplace(ino, block_map_problem(ino, path)).first;
  }
  if (verdict->second.empty()) return;
  const uint16_t mode = read_inode(ino, path).i_mode;
  const char* kind = LINUX_S_ISDIR(mode) ? "the directory" : LINUX_S_ISLNK(mode) ? "the symlink" : "the file";
  fail(action, path,
       fmt::format("{} {} (inode {}): {} (a damaged or hostile image?)", kind, subject, ino, verdict->second));
}

}  // namespace pibake
