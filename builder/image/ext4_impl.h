// Internals of Ext4Fs shared by ext4.cpp (open, close, the public calls), ext4_path.cpp (path
// resolution inside the image) and ext4_inode.cpp (creating, filling and freeing inodes).
#pragma once

#include <ext2fs/ext2fs.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "image/ext4.h"
#include "image/write_log.h"
#include "util/build_time.h"

namespace pibake {

// The one owner of an open ext2_filsys. close() flushes through ext2fs_close_free and returns its
// error code. The destructor only discards (ext2fs_free): it runs with a live handle when the
// constructor gave up (bad state, unreadable bitmaps), where nothing may be written to the image;
// Ext4Fs closes explicitly otherwise.
class Ext2FsHandle {
 public:
  Ext2FsHandle() = default;
  ~Ext2FsHandle() {
    if (fs_ != nullptr) ext2fs_free(fs_);
  }
  Ext2FsHandle(const Ext2FsHandle&) = delete;
  Ext2FsHandle& operator=(const Ext2FsHandle&) = delete;

  void reset(ext2_filsys fs) {
    if (fs_ != nullptr) ext2fs_free(fs_);
    fs_ = fs;
  }
  ext2_filsys get() const { return fs_; }
  explicit operator bool() const { return fs_ != nullptr; }
  // ext2fs_close_free frees and clears the handle even when flushing fails.
  errcode_t close() { return fs_ != nullptr ? ext2fs_close_free(&fs_) : 0; }

 private:
  ext2_filsys fs_ = nullptr;
};

// A libext2fs io manager that passes every call to unix_io_manager and adds the bytes each write,
// discard and zeroout touches (image offsets, the "offset" io option included) to `log`. The log
// is bound to the next open on this thread: call it in the ext2fs_open2 call itself. Opening
// through it without a log fails with EXT2_ET_BAD_DEVICE_NAME. (ext4_write_log.cpp)
io_manager recording_io_manager(WriteLog* log);

// Closes an ext2_file_t on scope exit when an error unwinds; the success path closes explicitly
// (ext2fs_file_close(file.release())) to see the flush error.
struct Ext2FileCloser {
  void operator()(ext2_file_t file) const { ext2fs_file_close(file); }
};
using Ext2File = std::unique_ptr<std::remove_pointer_t<ext2_file_t>, Ext2FileCloser>;

// Where a path leads inside the image, as far as it could be followed.
struct Resolved {
  enum class Status {
    kFound,     // `ino` is the entry `name` in directory `parent`
    kMissing,   // `parent` exists, `name` is not in it
    kNoParent,  // an intermediate component is missing or not a directory (see `problem`)
  };
  Status status = Status::kNoParent;
  ext2_ino_t parent = 0;
  std::string name;  // empty when the path ends at a directory itself ("/", ".", "..")
  ext2_ino_t ino = 0;
  std::string problem;  // for kMissing/kNoParent: "/run/systemd does not exist" (image path)
};

enum class Follow { kNo, kYes };  // whether a symlink in the final component is followed

// Hands out a new file's content a chunk at a time; an empty view marks the end.
using ChunkSource = std::function<std::string_view()>;

struct Ext4Fs::Impl {
  std::string image_path;
  std::string display_name;  // what messages call image_path
  uint64_t offset = 0;
  bool writable = false;
  int64_t timestamp = kDefaultTimestamp;
  Ext2FsHandle handle;

  // --- ext4.cpp: errors and inode I/O ---
  ext2_filsys fs() const;  // throws once closed
  // "while <action> <path> in <image>: <why>", the shape every pibake error message has.
  [[noreturn]] void fail(std::string_view action, std::string_view path, const std::string& why) const;
  void check(errcode_t rc, std::string_view action, std::string_view path) const;
  void require_writable(std::string_view action, std::string_view path) const;
  // The whole on-disk inode (large when the filesystem has 256-byte inodes), zero-padded.
  ext2_inode_large read_inode(ext2_ino_t ino, std::string_view path) const;
  void write_inode(ext2_ino_t ino, ext2_inode_large& inode, std::string_view path) const;
  // atime/mtime/ctime, crtime and their _extra words (epoch bits, nanoseconds 0).
  void set_times(ext2_inode_large& inode) const;
  void set_owner(ext2_inode_large& inode, uint16_t file_type, Ownership own) const;

  // --- ext4_path.cpp ---
  // Walks `path` from the root inode, component by component (never ext2fs_namei): ".." stops at
  // the root, symlinks are followed inside the image (an absolute target starts again at the
  // image root), at most 40 hops. With `create_dirs`, missing components that come from `path`
  // itself (not from a symlink target) are created as directories, for mkdir_p.
  Resolved resolve(std::string_view path, Follow follow, const Ownership* create_dirs = nullptr);
  std::string read_symlink(ext2_ino_t ino, const ext2_inode_large& inode, std::string_view path);
  // An inode's content whole, at most kMaxWholeFileRead bytes (a long symlink's target).
  std::string read_content(ext2_ino_t ino, std::string_view path);
  // An inode's content: `sized` gets its size once it is known to be at most `max_bytes` (else
  // pibake::Error, nothing read), then `chunk` the content in pieces of at most 1 MiB.
  void read_inode_content(ext2_ino_t ino, std::string_view path, uint64_t max_bytes,
                          const std::function<void(uint64_t)>& sized,
                          const std::function<void(std::string_view)>& chunk);
  // read_inode_content for the regular file at `path` (a final symlink followed); throws when it is
  // missing or not a regular file.
  void read_regular(std::string_view path, uint64_t max_bytes, const std::function<void(uint64_t)>& sized,
                    const std::function<void(std::string_view)>& chunk);

  // --- ext4_block_map.cpp ---
  // Throws (pibake::Error naming `subject`, the inode's path for messages, and why) unless the
  // blocks inode `ino` maps can be walked in time bounded by its size: an extent tree at most 5
  // levels deep that reaches no block twice, extents inside the filesystem mapping no block twice
  // and no more blocks than the size allows (a directory: its size in blocks, itself at most
  // kMaxDirectoryBytes), no more entries than that needs. Called before libext2fs looks up in,
  // lists, reads or frees an inode; the verdict is kept per inode number (free_inode forgets it).
  void require_sound_block_map(ext2_ino_t ino, std::string_view action, std::string_view path,
                               std::string_view subject);
  std::string block_map_problem(ext2_ino_t ino, std::string_view path);  // empty when sound
  std::unordered_map<ext2_ino_t, std::string> block_map_verdicts;        // inode -> problem ("": sound)

  // --- ext4_inode.cpp ---
  ext2_ino_t make_directory(ext2_ino_t parent, const std::string& name, Ownership own, std::string_view path);
  void write_regular(std::string_view path, const ChunkSource& next, Ownership own);
  void make_symlink(std::string_view path, std::string_view target, Ownership own);
  // Drops the entry `name` -> `ino` from `dir`; frees the inode when that was its last link.
  void drop_link(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, std::string_view path);

  // Steps of the above (see ext4_inode.cpp for which e2fsprogs function each mirrors).
  Resolved target_entry(std::string_view path, std::string_view action);
  void require_plain_directory(ext2_ino_t dir, std::string_view action, std::string_view path);
  ext2_ino_t new_file_inode(ext2_ino_t parent, Ownership own, std::string_view path);
  void fill_file(ext2_ino_t ino, const ChunkSource& next, std::string_view path);
  void write_run(ext2_file_t file, const char* data, std::size_t len, std::string_view path);
  void install(const Resolved& r, ext2_ino_t ino, int file_type, std::string_view path);
  void link_entry(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int file_type, std::string_view path);
  uint64_t indexed_dir_size(ext2_ino_t dir, std::string_view path);  // 0 when not htree
  void scrub_split_leaves(ext2_ino_t dir, uint64_t indexed_size_before) noexcept;
  void free_inode(ext2_ino_t ino, std::string_view path);
  void discard_inode(ext2_ino_t ino, std::string_view path) noexcept;
  void scrub_failed_inode(ext2_ino_t ino, std::string_view path) noexcept;
};

}  // namespace pibake
