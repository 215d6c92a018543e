// ext2/3/4 read and written in place inside a byte range of an image file, through libext2fs
// (the root partition, `writable`). Mirrors e2fsprogs' misc/create_inode.c call order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "image/read_limit.h"

namespace pibake {

class WriteLog;

struct Ownership {
  uint32_t mode = 0644;  // permission bits only (07777); the file type is implied by the call
  uint32_t uid = 0;
  uint32_t gid = 0;
};

class Ext4Fs {
 public:
  // Opens the filesystem at byte `offset` of `image_path` (libext2fs "offset=N" io option).
  // Throws pibake::Error naming the file when it is not ext2/3/4, needs recovery (journal), has
  // unsupported features for writing, or cannot be opened. Messages name the file `display_name`
  // (default: `image_path`): the image the user knows ("out/node-1.img") rather than the
  // temporary file being written (".node-1.img.tmp"); e2fsck hints keep the real path.
  // With `write_log`, every byte range libext2fs writes (image offsets) is added to it, so the
  // block map can take the base's hashes for the rest (write_log.h); it must outlive the object.
  Ext4Fs(const std::string& image_path, uint64_t offset, bool writable, const std::string& display_name = "",
         WriteLog* write_log = nullptr);
  ~Ext4Fs();  // closes like close() but never throws
  Ext4Fs(const Ext4Fs&) = delete;
  Ext4Fs& operator=(const Ext4Fs&) = delete;

  // Flushes bitmaps, group descriptors and superblock and closes; throws on error. Idempotent.
  void close();

  std::string label() const;
  uint64_t block_size() const;
  uint64_t blocks_count() const;
  uint64_t free_bytes() const;
  // The `bigalloc` feature (allocation in clusters of several blocks): resize2fs cannot grow
  // such a filesystem safely, so pibake refuses to grow it.
  bool has_bigalloc() const;

  // Timestamps (atime/mtime/ctime/crtime) given to inodes created or changed from now on, and to
  // the superblock's write time, so that builds are reproducible: the clock is never read.
  // Default: build_timestamp() (util/build_time.h), read by the constructor, which throws when
  // SOURCE_DATE_EPOCH is not a number of seconds.
  void set_timestamp(int64_t unix_seconds);

  // Paths are absolute inside the image ("/etc/hostname"). Every component is resolved inside the
  // image: "..", symlinks (relative or absolute) included, can never leave the image root; an
  // absolute symlink target is taken relative to the image root, as a chroot would.
  // Symlinks in intermediate components are followed (Ubuntu's /lib -> usr/lib); a symlink in the
  // final component is not followed: write_file/symlink replace it, read_file follows it.
  // exists() has lstat semantics (a dangling symlink exists); is_directory() follows a final
  // symlink, like `test -d`. Both throw only on a symlink loop, a bad path or a read error.
  bool exists(std::string_view path) const;
  bool is_directory(std::string_view path) const;
  // The whole content of a regular file (a final symlink followed). Throws pibake::Error if it is
  // missing, not a regular file, or larger than `max_bytes` (checked from the inode before any
  // memory is taken: an image is untrusted input, and a sparse file can claim terabytes).
  std::string read_file(std::string_view path, uint64_t max_bytes = kMaxWholeFileRead) const;
  // Streams a regular file's content to `chunk` in pieces of at most 1 MiB, so a file of any size
  // is read in constant memory (a card's binaries and image archives, to hash them). Throws as
  // read_file, without the size limit, and whatever `chunk` throws.
  void read_chunks(std::string_view path, const std::function<void(std::string_view)>& chunk) const;
  // Like `mkdir -p`: creates the missing directories with `own` (existing ones are left alone);
  // a symlink to a directory counts as a directory. Throws when a component is not a directory.
  void mkdir_p(std::string_view path, Ownership own = {0755, 0, 0});
  // Creates or replaces a regular file (replacing frees the old blocks). The parent must exist.
  // The new content is written before the old entry is dropped: when the write fails (say, the
  // filesystem is full) the old file is still there. Blocks of zeros become holes, as mke2fs -d.
  void write_file(std::string_view path, std::string_view data, Ownership own = {});
  // Same as write_file, streaming the content from `fd` (read to its end) in 1 MiB chunks, so
  // large binaries never sit in memory whole.
  void write_file_from(std::string_view path, int fd, Ownership own = {});
  // Same, with the content from `read(buf, size)` (bytes put into buf, 0 at the end; may throw),
  // as an archive member is read: 1 MiB in memory at a time, whatever the file's size.
  void write_file_stream(std::string_view path, const std::function<size_t(char*, size_t)>& read, Ownership own = {});
  // Creates or replaces `path` as a symlink to `target` (target stored verbatim).
  void symlink(std::string_view path, std::string_view target, Ownership own = {0777, 0, 0});
  bool remove(std::string_view path);  // a file or symlink; false when absent; directories refused
  // Like `rm -rf` (debugfs' rm/rmdir per entry): removes a file, a symlink, or a directory with
  // everything below it (a final symlink is removed, never followed); false when absent. Throws
  // for a directory that contains itself or a tree more than 128 directories deep.
  bool remove_tree(std::string_view path);
  // The names in directory `path` (a final symlink is followed), without "." and "..", sorted.
  // Throws when `path` is missing or not a directory.
  std::vector<std::string> list(std::string_view path) const;

  // Mode bits, uid, gid of `path` (lstat semantics); throws if missing.
  Ownership stat(std::string_view path) const;
  // The size in bytes of the regular file `path` (i_size, as stat(2)'s st_size; a final symlink
  // is followed, as read_file does), without reading its content. Throws pibake::Error if it is
  // missing or not a regular file.
  uint64_t file_size(std::string_view path) const;

  // What e2fsck -fn would report first among the state and structures pibake's writes rely on:
  // a journal needing recovery, an error or not-clean state, group descriptors that fail
  // ext2fs_check_desc, and per-group free block/inode counts that disagree with the bitmaps.
  // Empty when clean; at most 8 problems, one line each. Reads the bitmaps.
  std::vector<std::string> check() const;
  // The features present whose metadata pibake's writes would leave inconsistent ("quota",
  // "project", "encrypt", "verity", "mmp"), by their tune2fs names; empty when there are none.
  std::vector<std::string> unsupported_features() const;

 private:
  // remove_tree below the directories being removed (inode numbers, outermost first).
  bool remove_tree_below(std::string_view path, std::vector<uint32_t>& open_dirs);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pibake
