// Creating, filling, linking and freeing inodes in the ext4 image: regular files, directories and
// symlinks. The libext2fs call sequences mirror e2fsprogs: misc/create_inode.c (do_write_internal,
// copy_file_chunk, do_mkdir_internal, do_symlink_internal), debugfs (do_rm, kill_file_by_inode)
// and e2fsck (deallocate_inode), with workarounds for libext2fs 1.47 bugs noted where they apply.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "image/ext4_impl.h"

namespace pibake {
namespace {

bool all_zero(const char* data, std::size_t len) {
  return len == 0 || (data[0] == 0 && std::memcmp(data, data + 1, len - 1) == 0);
}

// e2fsck pass2's deallocate_inode_block: one block (or cluster, with bigalloc) back to the bitmap.
int release_block(ext2_filsys fs, blk64_t* block, e2_blkcnt_t, blk64_t, int, void* priv) {
  auto* last_cluster = static_cast<blk64_t*>(priv);
  if (*block == 0) return 0;
  blk64_t cluster = EXT2FS_B2C(fs, *block);
  if (cluster == *last_cluster) return 0;
  *last_cluster = cluster;
  if (*block < fs->super->s_first_data_block || *block >= ext2fs_blocks_count(fs->super)) return 0;
  ext2fs_block_alloc_stats2(fs, *block, -1);
  return 0;
}

struct DirBlock {
  e2_blkcnt_t logical;
  blk64_t physical;
};

// Lists a directory's blocks for scrub_split_leaves (read-only iteration, data blocks only).
int collect_block(ext2_filsys, blk64_t* block, e2_blkcnt_t logical, blk64_t, int, void* priv) {
  static_cast<std::vector<DirBlock>*>(priv)->push_back({logical, *block});
  return 0;
}

}  // namespace

// Names stored in an fscrypt or casefold directory are transformed (ciphertext, folded hashes);
// a plain ext2fs_link there would produce entries the kernel cannot find.
void Ext4Fs::Impl::require_plain_directory(ext2_ino_t dir, std::string_view action, std::string_view path) {
  ext2_inode_large inode = read_inode(dir, path);
  if (inode.i_flags & EXT4_ENCRYPT_FL) {
    fail(action, path, "its directory is encrypted (fscrypt); pibake cannot add names to it");
  }
  if (inode.i_flags & EXT4_CASEFOLD_FL) {
    fail(action, path, "its directory is case-insensitive (casefold); pibake cannot add names to it");
  }
}

// ext2fs_link, and on EXT2_ET_DIR_NO_SPACE ext2fs_expand_dir then ext2fs_link again, as
// do_write_internal does.
void Ext4Fs::Impl::link_entry(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int file_type,
                              std::string_view path) {
  ext2_filsys filesystem = fs();
  const uint64_t indexed_size = indexed_dir_size(dir, path);
  errcode_t rc = ext2fs_link(filesystem, dir, name.c_str(), ino, file_type);
  if (rc == EXT2_ET_DIR_NO_SPACE) {
    check(ext2fs_expand_dir(filesystem, dir), "growing the directory of", path);
    rc = ext2fs_link(filesystem, dir, name.c_str(), ino, file_type);
  }
  check(rc, "linking", path);
  scrub_split_leaves(dir, indexed_size);
}

uint64_t Ext4Fs::Impl::indexed_dir_size(ext2_ino_t dir, std::string_view path) {
  ext2_inode_large inode = read_inode(dir, path);
  if (!(inode.i_flags & EXT2_INDEX_FL)) return 0;
  return EXT2_I_SIZE(reinterpret_cast<ext2_inode*>(&inode));
}

// libext2fs (1.47.0 up to at least 1.47.4) splits a full htree leaf in dx_split_leaf by packing
// entries into a buffer from ext2fs_get_mem, i.e. malloc, never cleared: the bytes after the last
// entry of both halves are heap leftovers, written to the image. They break reproducible output
// (and leak process memory into the image), so once a link has grown an indexed directory, the
// slack after the last entry of every leaf block is zeroed. Every leaf is rewritten, whatever it
// held, so that even the superblock's s_kbytes_written does not depend on the leftovers. Best
// effort, and never throws: the new entry is already linked, and the slack is never read.
void Ext4Fs::Impl::scrub_split_leaves(ext2_ino_t dir, uint64_t indexed_size_before) noexcept {
  if (indexed_size_before == 0) return;
  try {
    ext2_filsys filesystem = fs();
    ext2_inode_large inode = read_inode(dir, "");
    if (EXT2_I_SIZE(reinterpret_cast<ext2_inode*>(&inode)) <= indexed_size_before) return;
    std::vector<DirBlock> blocks;
    if (ext2fs_block_iterate3(filesystem, dir, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY, nullptr, collect_block,
                              &blocks) != 0) {
      return;
    }
    const unsigned bs = filesystem->blocksize;
    const bool has_tail = ext2fs_has_feature_metadata_csum(filesystem->super);
    const unsigned end = bs - (has_tail ? sizeof(ext2_dir_entry_tail) : 0);  // entries end here
    std::vector<char> buf(bs);
    for (const DirBlock& block : blocks) {
      if (block.logical <= 0) continue;  // block 0 holds the htree root
      if (ext2fs_read_dir_block4(filesystem, block.physical, buf.data(), 0, dir) != 0) continue;
      // Walk to the last entry; an internal index node is a single empty entry spanning the
      // whole block (its "slack" holds the index: leave it alone).
      unsigned offset = 0, last = 0, rec_len = 0;
      while (offset < end) {
        auto* entry = reinterpret_cast<ext2_dir_entry*>(buf.data() + offset);
        if (ext2fs_get_rec_len(filesystem, entry, &rec_len) != 0 || rec_len < 8 || rec_len > end - offset) {
          break;
        }
        last = offset;
        offset += rec_len;
      }
      auto* first = reinterpret_cast<ext2_dir_entry*>(buf.data());
      if (offset != end || (last == 0 && first->inode == 0 && ext2fs_dirent_name_len(first) == 0)) {
        continue;
      }
      auto* entry = reinterpret_cast<ext2_dir_entry*>(buf.data() + last);
      std::size_t slack = std::min<std::size_t>(last + 8 + ext2fs_dirent_name_len(entry), offset);
      std::fill(buf.data() + slack, buf.data() + offset, 0);
      ext2fs_write_dir_block4(filesystem, block.physical, buf.data(), 0, dir);
    }
  } catch (...) {
  }
}

// Frees an inode whose last link is gone, like debugfs' kill_file_by_inode (dtime, blocks,
// ext2fs_inode_alloc_stats2 -1) plus the extended-attribute block that fuse2fs' remove_inode also
// releases (ext2fs_free_ext_attr drops its refcount). The blocks are freed the way e2fsck's
// deallocate_inode does, every block the inode maps (data, extent tree, indirect blocks) back to
// the bitmap through ext2fs_block_iterate3, not with ext2fs_punch as debugfs does: libext2fs
// before 1.47.4 (commit 509da989) refuses to punch an extent that ends on the filesystem's last
// block, after having already dropped it from the tree, so its blocks would leak.
void Ext4Fs::Impl::free_inode(ext2_ino_t ino, std::string_view path) {
  ext2_filsys filesystem = fs();
  require_sound_block_map(ino, "freeing the blocks of", path, path);
  ext2_inode_large inode = read_inode(ino, path);
  check(ext2fs_free_ext_attr(filesystem, ino, &inode), "freeing the attributes of", path);
  auto* small = reinterpret_cast<ext2_inode*>(&inode);
  if (ext2fs_inode_has_valid_blocks2(filesystem, small) && !(inode.i_flags & EXT4_INLINE_DATA_FL)) {
    blk64_t last_cluster = 0;
    check(ext2fs_block_iterate3(filesystem, ino, 0, nullptr, release_block, &last_cluster), "freeing the blocks of",
          path);
    ext2fs_iblk_set(filesystem, small, 0);
  }
  inode.i_links_count = 0;
  inode.i_dtime = static_cast<uint32_t>(timestamp);
  write_inode(ino, inode, path);
  ext2fs_inode_alloc_stats2(filesystem, ino, -1, LINUX_S_ISDIR(inode.i_mode));
  block_map_verdicts.erase(ino);  // the number may come back for a new inode
}

// Failure cleanup for an inode that was fully written but never (or no longer) linked: frees it
// so that e2fsck sees neither an unattached inode nor leaked blocks. Already failing, so quiet.
void Ext4Fs::Impl::discard_inode(ext2_ino_t ino, std::string_view path) noexcept {
  try {
    // An inode pibake just made, whose map libext2fs wrote, is freed without the block-map check
    // (a write cut short by a full filesystem may have mapped a block past its size).
    block_map_verdicts[ino] = "";
    free_inode(ino, path);
  } catch (...) {
  }
}

// ext2fs_mkdir and ext2fs_symlink return their inode and blocks to the bitmaps when they fail,
// but may leave the written inode in the table with a link count, which e2fsck would report as
// an unattached inode. Mark it deleted.
void Ext4Fs::Impl::scrub_failed_inode(ext2_ino_t ino, std::string_view path) noexcept {
  try {
    if (ext2fs_test_inode_bitmap2(fs()->inode_map, ino)) return;
    ext2_inode_large inode = read_inode(ino, path);
    if (inode.i_links_count == 0) return;
    inode.i_links_count = 0;
    inode.i_dtime = static_cast<uint32_t>(timestamp);
    write_inode(ino, inode, path);
  } catch (...) {
  }
}

// The inode half of do_write_internal: ext2fs_new_inode, ext2fs_inode_alloc_stats2, the extents
// (or inline data) flag through ext2fs_extent_open2, ext2fs_write_new_inode.
ext2_ino_t Ext4Fs::Impl::new_file_inode(ext2_ino_t parent, Ownership own, std::string_view path) {
  ext2_filsys filesystem = fs();
  ext2_inode_large inode{};
  set_owner(inode, LINUX_S_IFREG, own);
  ext2_ino_t ino = 0;
  check(ext2fs_new_inode(filesystem, parent, inode.i_mode, nullptr, &ino), "writing", path);
  ext2fs_inode_alloc_stats2(filesystem, ino, +1, 0);
  auto* small = reinterpret_cast<ext2_inode*>(&inode);
  inode.i_links_count = 1;
  set_times(inode);  // ext2fs_write_new_inode adds crtime from fs->now (our timestamp)
  errcode_t rc = 0;
  if (ext2fs_has_feature_inline_data(filesystem->super)) {
    inode.i_flags |= EXT4_INLINE_DATA_FL;
  } else if (ext2fs_has_feature_extents(filesystem->super)) {
    // Opening an extent handle on the blank in-memory inode writes the extent header into i_block
    // and sets EXT4_EXTENTS_FL, which ext2fs_write_new_inode then stores.
    ext2_extent_handle_t handle = nullptr;
    rc = ext2fs_extent_open2(filesystem, ino, small, &handle);
    if (rc == 0) ext2fs_extent_free(handle);
  }
  if (rc == 0) rc = ext2fs_write_new_inode(filesystem, ino, small);
  if (rc != 0) {
    ext2fs_inode_alloc_stats2(filesystem, ino, -1, 0);
    check(rc, "writing", path);
  }
  if (inode.i_flags & EXT4_INLINE_DATA_FL) {
    rc = ext2fs_inline_data_init(filesystem, ino);
    if (rc != 0) {
      discard_inode(ino, path);
      check(rc, "writing", path);
    }
  }
  return ino;
}

void Ext4Fs::Impl::write_run(ext2_file_t file, const char* data, std::size_t len, std::string_view path) {
  while (len > 0) {
    unsigned written = 0;
    check(ext2fs_file_write(file, data, static_cast<unsigned>(len), &written), "writing", path);
    if (written == 0) fail("writing", path, "libext2fs wrote nothing");
    data += written;
    len -= written;
  }
}

// create_inode.c's copy_file/copy_file_chunk, with whole runs of non-zero blocks handed to
// ext2fs_file_write at once rather than one block per call. Zero blocks are skipped (holes), as
// mke2fs -d does, except while the data is still inline, where a hole cannot exist.
void Ext4Fs::Impl::fill_file(ext2_ino_t ino, const ChunkSource& next, std::string_view path) {
  ext2_filsys filesystem = fs();
  ext2_file_t raw = nullptr;
  check(ext2fs_file_open(filesystem, ino, EXT2_FILE_WRITE, &raw), "writing", path);
  Ext2File file(raw);
  const std::size_t bs = filesystem->blocksize;
  uint64_t pos = 0;
  for (std::string_view chunk = next(); !chunk.empty(); chunk = next()) {
    std::size_t i = 0;
    while (i < chunk.size()) {
      auto block_at = [&](std::size_t at) { return std::min(bs, chunk.size() - at); };
      const bool is_inline = ext2fs_file_get_inode(file.get())->i_flags & EXT4_INLINE_DATA_FL;
      if (!is_inline && all_zero(chunk.data() + i, block_at(i))) {
        i += block_at(i);
        continue;
      }
      std::size_t end = i + block_at(i);
      // While the data is inline, one block per call and nothing skipped (so the first call is
      // at offset 0): libext2fs' inline write path copies the whole request into its 3-block
      // buffer and is only right from offset 0. Past one block it converts the inode to extents.
      while (!is_inline && end < chunk.size() && !all_zero(chunk.data() + end, block_at(end))) {
        end += block_at(end);
      }
      check(ext2fs_file_llseek(file.get(), pos + i, EXT2_SEEK_SET, nullptr), "writing", path);
      write_run(file.get(), chunk.data() + i, end - i, path);
      i = end;
    }
    pos += chunk.size();
  }
  __u64 size = 0;
  check(ext2fs_file_get_lsize(file.get(), &size), "writing", path);
  if (size != pos) check(ext2fs_file_set_size2(file.get(), pos), "writing", path);  // a tail hole
  check(ext2fs_file_close(file.release()), "writing", path);
}

// Where a new entry goes: the parent must exist, the name must not be a directory (a file or
// symlink there is replaced; resolve did not follow it).
Resolved Ext4Fs::Impl::target_entry(std::string_view path, std::string_view action) {
  require_writable(action, path);
  Resolved r = resolve(path, Follow::kNo);
  if (r.status == Resolved::Status::kNoParent) fail(action, path, r.problem);
  if (r.name.empty()) fail(action, path, "it is a directory");
  if (r.status == Resolved::Status::kFound && LINUX_S_ISDIR(read_inode(r.ino, path).i_mode)) {
    fail(action, path, "it is a directory");
  }
  require_plain_directory(r.parent, action, path);
  return r;
}

// The new inode is complete before the old name goes: a failure up to here leaves the old entry
// untouched. Drops the old entry (if any), then links the new inode under the same name.
void Ext4Fs::Impl::install(const Resolved& r, ext2_ino_t ino, int file_type, std::string_view path) {
  if (r.status == Resolved::Status::kFound) drop_link(r.parent, r.name, r.ino, path);
  link_entry(r.parent, r.name, ino, file_type, path);
}

void Ext4Fs::Impl::drop_link(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, std::string_view path) {
  // debugfs do_rm: unlink the name, drop one link, and free the inode with its last link. An inode
  // whose blocks cannot be freed (free_inode) is refused before its name is touched.
  require_sound_block_map(ino, "freeing the blocks of", path, path);
  ext2_inode_large inode = read_inode(ino, path);
  check(ext2fs_unlink(fs(), dir, name.c_str(), ino, 0), "unlinking", path);
  if (inode.i_links_count > 0) --inode.i_links_count;
  if (inode.i_links_count > 0) {
    inode.i_ctime = static_cast<uint32_t>(timestamp);
    write_inode(ino, inode, path);
    return;
  }
  free_inode(ino, path);
}

// do_write_internal, reordered in one respect: the name is linked after the data is written
// (create_inode.c links first), so that a failed write, e.g. a full filesystem, neither leaves a
// half-written file behind nor has already dropped the file it was meant to replace.
void Ext4Fs::Impl::write_regular(std::string_view path, const ChunkSource& next, Ownership own) {
  Resolved r = target_entry(path, "writing");
  ext2_ino_t ino = new_file_inode(r.parent, own, path);
  try {
    fill_file(ino, next, path);
    // Writing data does not touch the times; set them (and the _extra epoch bits) once more so
    // that the inode is final whatever ext2fs_write_new_inode chose.
    ext2_inode_large inode = read_inode(ino, path);
    set_times(inode);
    write_inode(ino, inode, path);
    install(r, ino, EXT2_FT_REG_FILE, path);  // nothing may fail after the link
  } catch (...) {
    if (ext2fs_test_inode_bitmap2(fs()->inode_map, ino)) discard_inode(ino, path);
    throw;
  }
}

// do_mkdir_internal: ext2fs_mkdir, ext2fs_expand_dir on EXT2_ET_DIR_NO_SPACE, ext2fs_mkdir again;
// then our mode, owner and times on the new inode.
ext2_ino_t Ext4Fs::Impl::make_directory(ext2_ino_t parent, const std::string& name, Ownership own,
                                        std::string_view path) {
  ext2_filsys filesystem = fs();
  require_plain_directory(parent, "creating directories for", path);
  // Allocated here rather than inside ext2fs_mkdir so that we know its number afterwards.
  ext2_ino_t ino = 0;
  check(ext2fs_new_inode(filesystem, parent, LINUX_S_IFDIR | 0755, nullptr, &ino), "creating directories for", path);
  const uint64_t indexed_size = indexed_dir_size(parent, path);
  errcode_t rc = ext2fs_mkdir(filesystem, parent, ino, name.c_str());
  if (rc == EXT2_ET_DIR_NO_SPACE) {
    rc = ext2fs_expand_dir(filesystem, parent);
    if (rc == 0) rc = ext2fs_mkdir(filesystem, parent, ino, name.c_str());
  }
  if (rc != 0) {
    scrub_failed_inode(ino, path);
    check(rc, "creating directories for", path);
  }
  scrub_split_leaves(parent, indexed_size);  // ext2fs_mkdir links through ext2fs_link
  ext2_inode_large inode = read_inode(ino, path);
  set_owner(inode, LINUX_S_IFDIR, own);
  set_times(inode);
  write_inode(ino, inode, path);
  return ino;
}

// do_symlink_internal, with ext2fs_symlink given no name (it then only builds the inode and its
// fast, inline or block target) so that the link step can replace an existing entry as
// write_regular does.
void Ext4Fs::Impl::make_symlink(std::string_view path, std::string_view target, Ownership own) {
  if (target.empty()) fail("creating the symlink", path, "the target is empty");
  if (target.find('\0') != std::string_view::npos) {
    fail("creating the symlink", path, "the target contains a NUL byte");
  }
  if (target.size() >= fs()->blocksize) {
    fail("creating the symlink", path,
         "the target is longer than a block (" + std::to_string(fs()->blocksize) + " bytes)");
  }
  Resolved r = target_entry(path, "creating the symlink");
  ext2_filsys filesystem = fs();
  ext2_ino_t ino = 0;
  check(ext2fs_new_inode(filesystem, r.parent, LINUX_S_IFLNK | 0777, nullptr, &ino), "creating the symlink", path);
  const std::string target_text(target);
  errcode_t rc = ext2fs_symlink(filesystem, r.parent, ino, nullptr, target_text.c_str());
  if (rc != 0) {
    scrub_failed_inode(ino, path);
    check(rc, "creating the symlink", path);
  }
  try {
    ext2_inode_large inode = read_inode(ino, path);
    set_owner(inode, LINUX_S_IFLNK, own);
    set_times(inode);
    write_inode(ino, inode, path);
    install(r, ino, EXT2_FT_SYMLINK, path);
  } catch (...) {
    if (ext2fs_test_inode_bitmap2(filesystem->inode_map, ino)) discard_inode(ino, path);
    throw;
  }
}

}  // namespace pibake
