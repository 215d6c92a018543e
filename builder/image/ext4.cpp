// Ext4Fs: opening, checking and closing the root filesystem through libext2fs, and the public
// calls. Path walking is in ext4_path.cpp, inode creation and removal in ext4_inode.cpp.
#include "image/ext4.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "image/ext4_impl.h"
#include "util/build_time.h"
#include "util/error.h"
#include "util/little_endian.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr std::size_t kChunkBytes = 1 << 20;  // unit of data handed to ext2fs_file_write
constexpr uint32_t kEpochMask = 3;            // EXT4_EPOCH_MASK: the 2 epoch bits of _extra

// error_message() only knows libext2fs codes once their com_err table is registered (e2fsck and
// debugfs call add_error_table(&et_ext2_error_table) at startup for the same reason).
void register_error_table() {
  static std::once_flag once;
  std::call_once(once, [] { initialize_ext2_error_table(); });
}

// Names the filesystem the way e2fsck and debugfs accept it, for hints in messages.
std::string fs_spec(const std::string& image, uint64_t offset) {
  return "'" + image + "?offset=" + std::to_string(offset) + "'";
}

// Time's low 32 bits and the _extra word (epoch bits above bit 31; nanoseconds are 0), as the
// kernel's ext4_encode_extra_time and e2fsprogs' ext2fs_set_tstamp split it.
uint32_t time_low(int64_t t) { return static_cast<uint32_t>(t); }
uint32_t time_extra(int64_t t) {
  int64_t above = t - static_cast<int32_t>(static_cast<uint32_t>(t));
  return static_cast<uint32_t>(above >> 32) & kEpochMask;
}

// Feeds a std::string_view to write_regular in kChunkBytes slices, without copying it.
ChunkSource view_source(std::string_view data) {
  auto rest = std::make_shared<std::string_view>(data);
  return [rest]() {
    std::string_view chunk = rest->substr(0, kChunkBytes);
    rest->remove_prefix(chunk.size());
    return chunk;
  };
}

}  // namespace

// --- Impl helpers shared by the other ext4 files ---

ext2_filsys Ext4Fs::Impl::fs() const {
  if (!handle) {
    throw Error(display_name + ": the ext4 filesystem at byte offset " + std::to_string(offset) +
                " was already closed");
  }
  return handle.get();
}

void Ext4Fs::Impl::fail(std::string_view action, std::string_view path, const std::string& why) const {
  throw Error("while " + std::string(action) + " " + std::string(path) + " in " + display_name + ": " + why);
}

void Ext4Fs::Impl::check(errcode_t rc, std::string_view action, std::string_view path) const {
  if (rc != 0) fail(action, path, error_message(rc));
}

void Ext4Fs::Impl::require_writable(std::string_view action, std::string_view path) const {
  fs();
  if (!writable) fail(action, path, "the filesystem was opened read-only");
}

ext2_inode_large Ext4Fs::Impl::read_inode(ext2_ino_t ino, std::string_view path) const {
  ext2_inode_large inode{};  // 128-byte inode filesystems leave the large part zero
  check(ext2fs_read_inode_full(fs(), ino, reinterpret_cast<ext2_inode*>(&inode), sizeof(inode)), "reading the inode of",
        path);
  return inode;
}

void Ext4Fs::Impl::write_inode(ext2_ino_t ino, ext2_inode_large& inode, std::string_view path) const {
  check(ext2fs_write_inode_full(fs(), ino, reinterpret_cast<ext2_inode*>(&inode), sizeof(inode)),
        "writing the inode of", path);
}

void Ext4Fs::Impl::set_times(ext2_inode_large& inode) const {
  inode.i_atime = inode.i_mtime = inode.i_ctime = time_low(timestamp);
  // The large-inode fields exist only as far as i_extra_isize says (kernel: EXT4_FITS_IN_INODE).
  if (EXT2_INODE_SIZE(fs()->super) <= EXT2_GOOD_OLD_INODE_SIZE) return;
  auto fits = [&](std::size_t field_end) {
    return std::size_t{EXT2_GOOD_OLD_INODE_SIZE} + inode.i_extra_isize >= field_end;
  };
  uint32_t extra = time_extra(timestamp);
  if (fits(offsetof(ext2_inode_large, i_ctime_extra) + 4)) inode.i_ctime_extra = extra;
  if (fits(offsetof(ext2_inode_large, i_mtime_extra) + 4)) inode.i_mtime_extra = extra;
  if (fits(offsetof(ext2_inode_large, i_atime_extra) + 4)) inode.i_atime_extra = extra;
  if (fits(offsetof(ext2_inode_large, i_crtime) + 4)) inode.i_crtime = time_low(timestamp);
  if (fits(offsetof(ext2_inode_large, i_crtime_extra) + 4)) inode.i_crtime_extra = extra;
}

void Ext4Fs::Impl::set_owner(ext2_inode_large& inode, uint16_t file_type, Ownership own) const {
  inode.i_mode = static_cast<uint16_t>(file_type | (own.mode & 07777));
  inode.i_uid = static_cast<uint16_t>(own.uid);
  inode.i_gid = static_cast<uint16_t>(own.gid);
  ext2fs_set_i_uid_high(inode, own.uid >> 16);
  ext2fs_set_i_gid_high(inode, own.gid >> 16);
}

// --- Ext4Fs ---

namespace {

// Refuses an ext4 superblock (1024 bytes at `offset` + 1024) that claims more bytes than the image
// file holds from `offset`, before ext2fs_open2 sizes its group descriptor table from it: a
// patched block count made libext2fs allocate 1 GiB for a filesystem in a 3 GiB sparse file. The
// fields are the on-disk superblock's (e2fsprogs lib/ext2fs/ext2_fs.h, struct ext2_super_block):
// s_blocks_count_lo at 4, s_log_block_size at 24, s_magic 0xEF53 at 56, s_feature_incompat at 96
// (INCOMPAT_64BIT 0x80), s_blocks_count_hi at 336, all little-endian. No ext magic: left to
// ext2fs_open2, which says so.
void check_superblock_size(const std::string& image_path, uint64_t offset, const std::string& where) {
  UniqueFd fd(open(image_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return;  // ext2fs_open2 reports why
  uint8_t sb[1024] = {};
  if (pread(fd.get(), sb, sizeof sb, static_cast<off_t>(offset + 1024)) != static_cast<ssize_t>(sizeof sb)) return;
  if (get16(sb + 56) != 0xEF53) return;
  const uint64_t log_block = get32(sb + 24);
  if (log_block > 6) throw Error(where + " claims a block size of 2^" + std::to_string(10 + log_block) + " bytes");
  uint64_t blocks = get32(sb + 4);
  if (get32(sb + 96) & 0x80) blocks |= uint64_t{get32(sb + 336)} << 32;
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return;
  const uint64_t held = static_cast<uint64_t>(st.st_size) > offset ? static_cast<uint64_t>(st.st_size) - offset : 0;
  uint64_t claimed = 0;
  if (__builtin_mul_overflow(blocks, uint64_t{1024} << log_block, &claimed) || claimed > held) {
    throw Error(where + " claims " + std::to_string(blocks) + " blocks of " + std::to_string(1024 << log_block) +
                " bytes, more than the image holds from there (" + std::to_string(held) +
                " bytes; a damaged or hostile image?)");
  }
}

}  // namespace

Ext4Fs::Ext4Fs(const std::string& image_path, uint64_t offset, bool writable, const std::string& display_name,
               WriteLog* write_log)
    : impl_(std::make_unique<Impl>()) {
  register_error_table();
  impl_->image_path = image_path;
  impl_->display_name = display_name.empty() ? image_path : display_name;
  const std::string& shown = impl_->display_name;
  impl_->offset = offset;
  impl_->writable = writable;
  impl_->timestamp = build_timestamp();

  const std::string where = shown + ": the partition at byte offset " + std::to_string(offset);
  const std::string io_options = "offset=" + std::to_string(offset);
  int flags = EXT2_FLAG_64BITS | (writable ? EXT2_FLAG_RW : 0);
  ext2_filsys fs = nullptr;
  io_manager manager = write_log != nullptr ? recording_io_manager(write_log) : unix_io_manager;
  check_superblock_size(image_path, offset, where);
  errcode_t rc = ext2fs_open2(image_path.c_str(), io_options.c_str(), flags, 0, 0, manager, &fs);
  if (rc == EXT2_ET_BAD_MAGIC) {
    throw Error(where + " is not an ext4 filesystem (no ext2/ext3/ext4 superblock found there)");
  }
  if (rc != 0) {
    throw Error("while opening the ext4 filesystem at byte offset " + std::to_string(offset) + " of " + shown + ": " +
                error_message(rc));
  }
  impl_->handle.reset(fs);
  if (!writable) return;

  // Writing over a journal that still holds transactions, or over known damage, would be lost or
  // make it worse; libext2fs does not replay journals (e2fsck does). The handle is discarded
  // unflushed on these paths, so the image is left byte-for-byte as it was.
  const std::string fsck_hint = "; run e2fsck -f " + fs_spec(image_path, offset) + " on it first";
  if (ext2fs_has_feature_journal_needs_recovery(fs->super)) {
    throw Error(where + " needs journal recovery (it was not cleanly unmounted)" + fsck_hint +
                ", or use a clean image");
  }
  if (fs->super->s_state & EXT2_ERROR_FS) {
    throw Error(where + " is marked as having errors" + fsck_hint);
  }
  if (!(fs->super->s_state & EXT2_VALID_FS)) {
    throw Error(where + " was not cleanly unmounted" + fsck_hint);
  }
  if (ext2fs_has_feature_mmp(fs->super)) {
    throw Error(where + " uses multi-mount protection (mmp), which pibake does not implement");
  }
  rc = ext2fs_read_bitmaps(fs);
  if (rc != 0) {
    throw Error("while reading the block and inode bitmaps of the ext4 filesystem at byte offset " +
                std::to_string(offset) + " of " + shown + ": " + error_message(rc));
  }
  fs->now = impl_->timestamp;  // superblock write time (ext2fs_flush) and ext2fs_write_new_inode
}

Ext4Fs::~Ext4Fs() {
  try {
    close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pibake: warning: %s\n", e.what());
  }
}

void Ext4Fs::close() {
  if (!impl_->handle) return;
  errcode_t rc = impl_->handle.close();
  if (rc != 0) {
    throw Error(
        "while writing the bitmaps, group descriptors and superblock of the ext4 "
        "filesystem at byte offset " +
        std::to_string(impl_->offset) + " of " + impl_->display_name + ": " + error_message(rc));
  }
}

std::string Ext4Fs::label() const {
  const auto& name = impl_->fs()->super->s_volume_name;
  return std::string(reinterpret_cast<const char*>(name), strnlen(reinterpret_cast<const char*>(name), sizeof(name)));
}

uint64_t Ext4Fs::block_size() const { return impl_->fs()->blocksize; }

uint64_t Ext4Fs::blocks_count() const { return ext2fs_blocks_count(impl_->fs()->super); }

uint64_t Ext4Fs::free_bytes() const {
  // Includes the root-reserved blocks: pibake writes as root would, and libext2fs allocates them.
  return ext2fs_free_blocks_count(impl_->fs()->super) * uint64_t{impl_->fs()->blocksize};
}

bool Ext4Fs::has_bigalloc() const { return ext2fs_has_feature_bigalloc(impl_->fs()->super); }

void Ext4Fs::set_timestamp(int64_t unix_seconds) {
  impl_->timestamp = unix_seconds;
  // fs->now == 0 means "ask the clock" to libext2fs; only the superblock write time is affected.
  if (impl_->handle) impl_->fs()->now = unix_seconds;
}

bool Ext4Fs::exists(std::string_view path) const {
  return impl_->resolve(path, Follow::kNo).status == Resolved::Status::kFound;
}

bool Ext4Fs::is_directory(std::string_view path) const {
  Resolved r = impl_->resolve(path, Follow::kYes);
  if (r.status != Resolved::Status::kFound) return false;
  return LINUX_S_ISDIR(impl_->read_inode(r.ino, path).i_mode);
}

std::string Ext4Fs::read_file(std::string_view path, uint64_t max_bytes) const {
  std::string out;
  impl_->read_regular(
      path, max_bytes, [&](uint64_t size) { out.reserve(size); }, [&](std::string_view chunk) { out.append(chunk); });
  return out;
}

void Ext4Fs::read_chunks(std::string_view path, const std::function<void(std::string_view)>& chunk) const {
  impl_->read_regular(
      path, UINT64_MAX, [](uint64_t) {}, chunk);
}

uint64_t Ext4Fs::file_size(std::string_view path) const {
  Resolved r = impl_->resolve(path, Follow::kYes);
  if (r.status != Resolved::Status::kFound) impl_->fail("reading the size of", path, r.problem);
  ext2_inode_large inode = impl_->read_inode(r.ino, path);
  if (!LINUX_S_ISREG(inode.i_mode)) impl_->fail("reading the size of", path, "it is not a regular file");
  return EXT2_I_SIZE(reinterpret_cast<ext2_inode*>(&inode));
}

void Ext4Fs::mkdir_p(std::string_view path, Ownership own) {
  impl_->require_writable("creating directories for", path);
  Resolved r = impl_->resolve(path, Follow::kYes, &own);
  if (r.status != Resolved::Status::kFound) impl_->fail("creating directories for", path, r.problem);
  if (!LINUX_S_ISDIR(impl_->read_inode(r.ino, path).i_mode)) {
    impl_->fail("creating directories for", path, "it exists and is not a directory");
  }
}

void Ext4Fs::write_file(std::string_view path, std::string_view data, Ownership own) {
  impl_->write_regular(path, view_source(data), own);
}

void Ext4Fs::write_file_from(std::string_view path, int fd, Ownership own) {
  Impl* impl = impl_.get();
  write_file_stream(
      path,
      [impl, fd, path](char* buf, size_t size) -> size_t {
        for (;;) {
          ssize_t n = ::read(fd, buf, size);
          if (n >= 0) return static_cast<size_t>(n);
          if (errno != EINTR)
            impl->fail("writing", path, std::string("cannot read the source: ") + std::strerror(errno));
        }
      },
      own);
}

void Ext4Fs::write_file_stream(std::string_view path, const std::function<size_t(char*, size_t)>& read, Ownership own) {
  auto buffer = std::make_shared<std::vector<char>>(kChunkBytes);
  // Fills whole chunks (a read may return less) so that zero blocks stay block-aligned.
  ChunkSource source = [buffer, &read]() {
    std::size_t got = 0;
    while (got < buffer->size()) {
      std::size_t n = read(buffer->data() + got, buffer->size() - got);
      if (n == 0) break;
      got += n;
    }
    return std::string_view(buffer->data(), got);
  };
  impl_->write_regular(path, source, own);
}

void Ext4Fs::symlink(std::string_view path, std::string_view target, Ownership own) {
  impl_->make_symlink(path, target, own);
}

bool Ext4Fs::remove(std::string_view path) {
  impl_->require_writable("removing", path);
  Resolved r = impl_->resolve(path, Follow::kNo);
  if (r.status != Resolved::Status::kFound) return false;
  if (r.name.empty() || LINUX_S_ISDIR(impl_->read_inode(r.ino, path).i_mode)) {
    impl_->fail("removing", path, "it is a directory (pibake only removes files and symlinks)");
  }
  impl_->drop_link(r.parent, r.name, r.ino, path);
  return true;
}

std::vector<std::string> Ext4Fs::list(std::string_view path) const {
  Resolved r = impl_->resolve(path, Follow::kYes);
  if (r.status != Resolved::Status::kFound) impl_->fail("listing", path, r.problem);
  if (!LINUX_S_ISDIR(impl_->read_inode(r.ino, path).i_mode)) impl_->fail("listing", path, "it is not a directory");
  impl_->require_sound_block_map(r.ino, "listing", path, path);
  std::vector<std::string> names;
  auto collect = [](ext2_ino_t, int, ext2_dir_entry* dirent, int, int, char*, void* priv) -> int {
    std::string name(dirent->name, ext2fs_dirent_name_len(dirent));
    if (name != "." && name != "..") static_cast<std::vector<std::string>*>(priv)->push_back(std::move(name));
    return 0;
  };
  impl_->check(ext2fs_dir_iterate2(impl_->fs(), r.ino, 0, nullptr, collect, &names), "listing", path);
  std::sort(names.begin(), names.end());
  return names;
}

// How deep remove_tree goes: the trees pibake removes (cloud-init's state, machine identity) are a
// few levels deep; a hostile image's 5000-deep tree or directory linked into itself would
// otherwise recurse until the stack or the memory gives out.
constexpr int kMaxRemoveDepth = 128;

bool Ext4Fs::remove_tree(std::string_view path) {
  std::vector<uint32_t> open_dirs;  // the directories being removed, outermost first
  return remove_tree_below(path, open_dirs);
}

bool Ext4Fs::remove_tree_below(std::string_view path, std::vector<uint32_t>& open_dirs) {
  impl_->require_writable("removing", path);
  Resolved r = impl_->resolve(path, Follow::kNo);
  if (r.status != Resolved::Status::kFound) return false;
  if (r.name.empty()) impl_->fail("removing", path, "it is the root directory or ends in \"..\"");
  if (!LINUX_S_ISDIR(impl_->read_inode(r.ino, path).i_mode)) {
    impl_->drop_link(r.parent, r.name, r.ino, path);
    return true;
  }
  if (std::find(open_dirs.begin(), open_dirs.end(), r.ino) != open_dirs.end()) {
    impl_->fail("removing", path,
                "the directory contains itself (a directory linked twice: a damaged or hostile image)");
  }
  if (open_dirs.size() >= kMaxRemoveDepth) {
    impl_->fail(
        "removing", path,
        "directories nested more than " + std::to_string(kMaxRemoveDepth) + " deep (a damaged or hostile image?)");
  }
  open_dirs.push_back(r.ino);
  std::string dir(path);
  for (const std::string& name : list(dir)) remove_tree_below(dir + "/" + name, open_dirs);
  open_dirs.pop_back();
  // debugfs do_rmdir: unlink, drop the parent's link from "..", free the empty directory.
  impl_->check(ext2fs_unlink(impl_->fs(), r.parent, r.name.c_str(), r.ino, 0), "unlinking", path);
  ext2_inode_large parent = impl_->read_inode(r.parent, path);
  if (parent.i_links_count > 1) --parent.i_links_count;
  impl_->write_inode(r.parent, parent, path);
  impl_->free_inode(r.ino, path);
  return true;
}

Ownership Ext4Fs::stat(std::string_view path) const {
  Resolved r = impl_->resolve(path, Follow::kNo);
  if (r.status != Resolved::Status::kFound) impl_->fail("reading the status of", path, r.problem);
  ext2_inode_large inode = impl_->read_inode(r.ino, path);
  return Ownership{static_cast<uint32_t>(inode.i_mode & 07777), inode_uid(inode), inode_gid(inode)};
}

}  // namespace pibake
