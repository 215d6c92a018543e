// Ext4Fs::check(): the state and structures pibake's writes through libext2fs rely on (see
// ext4.h), after what e2fsck -fn checks first (e2fsck/super.c check_super_block: group
// descriptor placement and free counts).
#include <fmt/format.h>

#include <vector>

#include "image/ext4_impl.h"
#include "util/error.h"

namespace pibake {
namespace {

constexpr size_t kMaxProblems = 8;

}  // namespace

std::vector<std::string> Ext4Fs::check() const {
  ext2_filsys fs = impl_->fs();
  ext2_super_block* sb = fs->super;
  std::vector<std::string> problems;
  auto problem = [&](std::string text) {
    if (problems.size() < kMaxProblems) problems.push_back(std::move(text));
  };

  // State: what the kernel or e2fsck left in the superblock.
  if (ext2fs_has_feature_journal_needs_recovery(sb)) {
    problem("the journal needs recovery (the filesystem was not cleanly unmounted)");
  }
  if (sb->s_state & EXT2_ERROR_FS) problem("the superblock is marked as having errors");
  if (!(sb->s_state & EXT2_VALID_FS)) problem("the superblock is not marked clean (not cleanly unmounted)");

  // Group descriptors: every bitmap and inode table inside its group's range, not overlapping
  // the superblock copies; checksums (libext2fs's own check, as e2fsck starts with).
  errcode_t rc = ext2fs_check_desc(fs);
  if (rc != 0) problem(std::string("the group descriptors are inconsistent: ") + error_message(rc));
  if (!problems.empty()) return problems;

  // Free counts per group against the bitmaps (e2fsck pass 5 "Free blocks count wrong for group").
  rc = ext2fs_read_bitmaps(fs);
  if (rc != 0) {
    problem(std::string("the block and inode bitmaps cannot be read: ") + error_message(rc));
    return problems;
  }
  for (dgrp_t g = 0; g < fs->group_desc_count && problems.size() < kMaxProblems; ++g) {
    blk64_t first = ext2fs_group_first_block2(fs, g), last = ext2fs_group_last_block2(fs, g);
    // With bigalloc, bitmaps and counts are in clusters.
    uint64_t free_blocks = 0;
    for (blk64_t b = first; b <= last; b += EXT2FS_CLUSTER_RATIO(fs)) {
      if (!ext2fs_fast_test_block_bitmap2(fs->block_map, b)) ++free_blocks;
    }
    if (free_blocks != ext2fs_bg_free_blocks_count(fs, g)) {
      problem(fmt::format("group {} says {} free blocks but its bitmap has {}", g, ext2fs_bg_free_blocks_count(fs, g),
                          free_blocks));
    }
    uint64_t free_inodes = 0;
    ext2_ino_t first_ino = g * sb->s_inodes_per_group + 1;
    for (ext2_ino_t i = first_ino; i < first_ino + sb->s_inodes_per_group; ++i) {
      if (!ext2fs_fast_test_inode_bitmap2(fs->inode_map, i)) ++free_inodes;
    }
    if (free_inodes != ext2fs_bg_free_inodes_count(fs, g)) {
      problem(fmt::format("group {} says {} free inodes but its bitmap has {}", g, ext2fs_bg_free_inodes_count(fs, g),
                          free_inodes));
    }
  }
  return problems;
}

std::vector<std::string> Ext4Fs::unsupported_features() const {
  ext2_super_block* sb = impl_->fs()->super;
  std::vector<std::string> out;
  // Features whose metadata libext2fs's file calls do not keep up to date: quota files (usage
  // would be wrong, e2fsck reports "quota ... inconsistent"), encryption and fs-verity (files
  // written in plain text into an encrypted directory, or with no Merkle tree), multi-mount
  // protection (no MMP block updates).
  struct Feature {
    bool present;
    const char* name;
  };
  for (const Feature& f :
       {Feature{ext2fs_has_feature_quota(sb) != 0, "quota"}, Feature{ext2fs_has_feature_project(sb) != 0, "project"},
        Feature{ext2fs_has_feature_encrypt(sb) != 0, "encrypt"}, Feature{ext2fs_has_feature_verity(sb) != 0, "verity"},
        Feature{ext2fs_has_feature_mmp(sb) != 0, "mmp"}}) {
    if (f.present) out.emplace_back(f.name);
  }
  return out;
}

}  // namespace pibake
