// One node's image, written into a temporary file and renamed when complete (see node_image.h).
#include "pipeline/node_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "codec/archive.h"
#include "image/bmap.h"
#include "image/ext4.h"
#include "image/fat.h"
#include "image/grow.h"
#include "image/in_place_edit.h"
#include "image/sparse_copy.h"
#include "image/undo_journal.h"
#include "image/write_log.h"
#include "pipeline/in_place.h"
#include "util/atomic_file.h"
#include "util/build_time.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

// Free space kept on the root filesystem after pibake's files: first boot writes logs, apt lists
// and packages before cloud-init grows the filesystem to the whole card.
constexpr uint64_t kRootHeadroom = 64ull << 20;

// A file the user gave (FileOp::source_identity set: an etcd snapshot), copied as it was checked:
// opened without waiting (a FIFO swapped in since is refused, not waited on), its identity
// (device, inode, size, mtime: file_content_identity) the one recorded at the check, exactly
// `op.size` bytes written, and their SHA-256 compared with the checked one. A file replaced,
// changed or grown since the check fails the node (its unfinished image is removed) instead of
// putting bytes nobody checked on the card.
void copy_checked_file(Ext4Fs& fs, const FileOp& op, const Ownership& own) {
  const std::string changed = op.source_path + " changed after pibake checked it (another program wrote to it)";
  UniqueFd fd(open(op.source_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw Error(op.source_path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != op.size ||
      file_content_identity(st) != op.source_identity) {
    throw Error(changed);
  }
  Sha256 hash;
  uint64_t pos = 0;
  fs.write_file_stream(
      op.path,
      [&](char* buf, size_t size) -> size_t {
        size_t want = static_cast<size_t>(std::min<uint64_t>(size, op.size - pos));
        if (want == 0) return 0;
        ssize_t n;
        do n = pread(fd.get(), buf, want, static_cast<off_t>(pos));
        while (n < 0 && errno == EINTR);
        if (n < 0) throw Error(op.source_path + ": " + std::strerror(errno));
        if (n == 0) throw Error(changed);  // shorter than when it was checked
        hash.update(buf, static_cast<size_t>(n));
        pos += static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
      },
      own);
  if (pos != op.size || hash.hex_digest() != op.sha256) throw Error(changed);
}

void apply_root_ops(Ext4Fs& fs, const NodePlan& plan) {
  for (const FileOp& op : plan.ops) {
    if (op.fs != Fs::kRoot) continue;
    Ownership own{op.mode, op.uid, op.gid};
    auto slash = op.path.rfind('/');
    std::string parent = slash == 0 ? "/" : op.path.substr(0, slash);
    switch (op.kind) {
      case FileOp::Kind::kWrite:
        fs.mkdir_p(parent);
        // A file whose time is its content (FileOp::mtime: the clock floor) gets that time; the
        // directory entry's parent gets it too, as `touch -d` in a new file's directory would.
        if (op.mtime != 0) fs.set_timestamp(op.mtime);
        fs.write_file(op.path, op.content, own);
        if (op.mtime != 0) fs.set_timestamp(build_timestamp());
        break;
      case FileOp::Kind::kMkdir:
        fs.mkdir_p(op.path, own);
        break;
      case FileOp::Kind::kSymlink:
        fs.mkdir_p(parent);
        fs.symlink(op.path, op.link_target, own);
        break;
      case FileOp::Kind::kRemove:
        fs.remove_tree(op.path);
        break;
      case FileOp::Kind::kCmdlineTokens:
        throw Error("internal error: the kernel command line lives on system-boot");
      case FileOp::Kind::kCopyFile: {
        fs.mkdir_p(parent);
        if (!op.source_identity.empty()) {
          copy_checked_file(fs, op, own);
          break;
        }
        UniqueFd fd(open(op.source_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) throw Error(op.source_path + ": " + std::strerror(errno));
        fs.write_file_from(op.path, fd.get(), own);
        break;
      }
      case FileOp::Kind::kExtractArchive:
        fs.mkdir_p(op.path);
        // fetch_artifacts checked every entry of this verified tarball (its install size); a bad
        // entry still throws here, and the node's image is then removed unfinished.
        for_each_archive_file(
            op.source_path, op.member_prefix,
            [&](const std::string& rel, const MemberReader& read, uint32_t) {
              fs.write_file_stream(op.path + "/" + rel, read, own);
            },
            /*validated=*/true);
        break;
    }
  }
}

void apply_boot_ops(FatFs& fat, const NodePlan& plan) {
  for (const FileOp& op : plan.ops) {
    if (op.fs != Fs::kBoot) continue;
    auto slash = op.path.rfind('/');
    switch (op.kind) {
      case FileOp::Kind::kWrite:
        if (slash > 0) fat.mkdir_p(op.path.substr(0, slash));
        fat.write_file(op.path, op.content);
        break;
      case FileOp::Kind::kMkdir:
        fat.mkdir_p(op.path);
        break;
      case FileOp::Kind::kRemove:
        fat.remove(op.path);
        break;
      case FileOp::Kind::kSymlink:
        throw Error("system-boot is FAT and cannot hold the symlink " + op.path);
      case FileOp::Kind::kCmdlineTokens:
        // The plan names only command lines the base's boot layout reads, which exist.
        if (!fat.exists(op.path)) throw Error("the kernel command line " + op.path + " is missing on system-boot");
        fat.write_file(op.path, ensure_cmdline_tokens(fat.read_file(op.path), op.cmdline_tokens));
        break;
      case FileOp::Kind::kCopyFile:
      case FileOp::Kind::kExtractArchive:
        throw Error("internal error: artifacts are installed on the root filesystem only");
    }
  }
}

}  // namespace

uint64_t root_growth_needed(const BaseImage& base, const NodePlan& plan) {
  uint64_t needed = plan.root_bytes_needed(base.root_block_size) + kRootHeadroom;
  return needed > base.root_free_bytes ? needed - base.root_free_bytes : 0;
}

void check_growth_possible(const BaseImage& base, const BuildPlan& plan) {
  if (!base.root_bigalloc) return;
  for (const NodePlan& node : plan.nodes) {
    if (uint64_t deficit = root_growth_needed(base, node); deficit > 0) {
      throw Error(base.path + ": the root filesystem (p" + std::to_string(base.root.number) +
                  ") uses the ext4 feature bigalloc, which resize2fs cannot grow safely, and " + node.node.name +
                  "'s files need " + std::to_string((deficit + (1 << 20) - 1) >> 20) +
                  " MiB more than it has free; use a base image with more free space on its root, or one "
                  "without bigalloc");
    }
  }
}

namespace {

// Writes the node's files into the image at `image_path` (named `display_name` in errors): its
// root filesystem at `root`, then system-boot. `step` says what is being done, for the caller's
// error message.
void write_node_files(const BaseImage& base, const NodePlan& plan, const std::string& image_path,
                      const std::string& display_name, const Partition& root, WriteLog& written, std::string& step) {
  step = "writing the root filesystem (writable)";
  {
    Ext4Fs fs(image_path, root.start, /*writable=*/true, display_name, &written);
    apply_root_ops(fs, plan);
    fs.close();
  }
  // boot partition: the cloud-init seed and firmware settings.
  step = "writing the boot filesystem (system-boot)";
  {
    FatFs fat(image_path, base.boot.start, base.boot.size, /*writable=*/true, display_name, &written);
    apply_boot_ops(fat, plan);
    fat.close();
  }
}

// Records what was written into the finished image, so that the next build can regenerate it in
// place (in_place.h). Without the record that build copies the base as usual: a record that
// cannot be written (a full disk) costs only that, so its error is not the build's.
void record_written(const std::string& image_path, const NodeWriteOptions& opts, const WriteLog& written) {
  if (opts.base_map == nullptr || written.all()) return;
  try {
    write_written_record(image_path, opts.base_map->identity, written.merged());
  } catch (const Error&) {
  }
}

// write_node_image over the node's previous image, whose record `previous` still holds
// (in_place.h): renamed to its in-place name, the node's files written through an InPlaceEdit
// (the writers see the base where the previous build wrote; writes that change nothing are left
// out), then the base's bytes put back where the previous build wrote and this one did not; every
// overwritten byte is saved to the undo journal first. On a failure the journal rolls the previous
// image back and it returns under its final name.
NodeImageResult write_node_image_in_place(const BaseImage& base, const NodePlan& plan, const std::string& out_dir,
                                          const WrittenRecord& previous, const NodeWriteOptions& opts) {
  NodeImageResult result;
  result.path = out_dir + "/" + plan.image_file;
  result.in_place = true;
  const std::string final_bmap = bmap_path_for(result.path);
  const std::string editing = in_place_image_path(result.path);
  const std::string journal = in_place_journal_path(result.path);
  const std::string previous_bmap = previous_bmap_path(result.path);
  WriteLog written;
  std::string bmap_text;
  std::string step = "moving the previous image aside";
  // From the image's rename until its rename back, no image has the final name. The previous
  // block map gets a second name first, so whenever a kill comes, recover_in_place_writes finds
  // one beside the image to check a rollback against.
  if (link(final_bmap.c_str(), previous_bmap.c_str()) != 0) {
    throw Error(plan.image_file + ": while " + step + ": " + previous_bmap + ": " + std::strerror(errno));
  }
  if (renameat2(AT_FDCWD, result.path.c_str(), AT_FDCWD, editing.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    unlink(previous_bmap.c_str());
    throw Error(plan.image_file + ": while " + step + ": " + editing + ": " + std::strerror(err));
  }
  bool journal_created = false;  // only a journal this call made may roll the image back
  bool final_bmap_removed = false;
  try {
    fsync_directory(out_dir);
    step = "opening the previous image";
    UniqueFd fd(open(editing.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    if (!fd || fstat(fd.get(), &st) != 0) throw Error(editing + ": " + std::strerror(errno));
    UniqueFd base_fd(open(base.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!base_fd) throw Error(base.path + ": " + std::strerror(errno));
    UndoJournal undo(fd.get(), static_cast<uint64_t>(st.st_size), journal);
    journal_created = true;
    InPlaceEdit edit(fd.get(), editing, base_fd.get(), base.path, previous.ranges, undo);
    written.set_edit(&edit);
    write_node_files(base, plan, editing, result.path, base.root, written, step);
    written.set_edit(nullptr);
    step = "putting back the base's bytes the previous build wrote";
    edit.finish();
    check_base_unchanged(base.path, *opts.base_map);
    step = "finishing the image";
    if (fsync(fd.get()) != 0) throw Error(editing + ": " + std::strerror(errno));
    result.image_size = static_cast<uint64_t>(st.st_size);
    result.rewritten_bytes = undo.saved_bytes();
    // The bytes put back from the base are not in `written`: they are the base's again, so the
    // block map may take the base's hashes for them.
    BmapReuse reuse{&opts.base_map->bmap, written.merged(), false};
    BmapWork work;
    bmap_text = render_bmap(make_bmap(editing, kBmapSplitBlocks, &reuse, &work));
    result.hashed_bytes = work.hashed_bytes;
    // The final block map describes the previous image: it goes before the new image takes the
    // final name (its other name stays for a rollback until then).
    if (unlink(final_bmap.c_str()) != 0 && errno != ENOENT) throw Error(final_bmap + ": " + std::strerror(errno));
    final_bmap_removed = true;
    if (rename(editing.c_str(), result.path.c_str()) != 0) throw Error(result.path + ": " + std::strerror(errno));
  } catch (...) {
    std::string what;
    try {
      throw;
    } catch (const std::exception& e) {
      what = e.what();
    }
    written.set_edit(nullptr);
    if (!written.failure().empty()) what += " (" + written.failure() + ")";
    std::string back;
    try {
      if (journal_created) roll_back_journal(editing, journal);
      if (final_bmap_removed && link(previous_bmap.c_str(), final_bmap.c_str()) != 0) {
        throw Error(final_bmap + ": " + std::strerror(errno));
      }
      if (rename(editing.c_str(), result.path.c_str()) != 0) throw Error(result.path + ": " + std::strerror(errno));
      if (journal_created) unlink(journal.c_str());
      unlink(previous_bmap.c_str());
      back = "; the previous image was put back";
      try {
        fsync_directory(out_dir);
      } catch (const Error&) {
        // Back under its name already; only a power loss now could undo the renames.
      }
    } catch (const Error& again) {
      back = "; the previous image could not be put back yet (" + std::string(again.what()) +
             "): the next build into " + out_dir + " puts it back";
    }
    // Errors name the image the user knows, not its in-place name.
    throw Error(plan.image_file + ": while " + step +
                " (regenerating in place): " + mention_final_path(what, result.path, editing) + back);
  }
  // Complete under its final name: the journal and the previous block map have done their work.
  try {
    step = "writing the block map";
    fsync_directory(out_dir);
    unlink(journal.c_str());
    unlink(previous_bmap.c_str());
    write_file_atomic(final_bmap, bmap_text, 0600);
  } catch (const Error& e) {
    throw Error(plan.image_file + ": while " + step + ": " + e.what());
  }
  record_written(result.path, opts, written);
  return result;
}

}  // namespace

NodeImageResult write_node_image(const BaseImage& base, const NodePlan& plan, const std::string& out_dir,
                                 const NodeWriteOptions& opts) {
  const std::string path = out_dir + "/" + plan.image_file;
  // The node's previous image can be edited in place when pibake's record of it still holds, it
  // has its block map (to check a rollback), and the root filesystem need not grow.
  std::optional<WrittenRecord> previous;
  if (opts.base_map != nullptr && root_growth_needed(base, plan) == 0 && path_exists(bmap_path_for(path))) {
    previous = read_written_record(path, opts.base_map->identity);
  }
  // A record describes only the image written with it.
  unlink(written_record_path(path).c_str());
  if (previous) return write_node_image_in_place(base, plan, out_dir, *previous, opts);

  NodeImageResult result;
  // Every byte written after the clone, so the block map rehashes only those (write_log.h).
  WriteLog written;
  result.path = path;
  std::string step = "cloning the base image";
  try {
    // 0600: the image holds this node's keys (node-1: every CA key), whatever modes are inside it.
    AtomicFile out(result.path, 0600);
    // clone: a sparse copy (or reflink) of the base; the base itself is only ever read.
    copy_sparse(base.path, out.fd(), result.path, opts.copy_threads, opts.start_writeback);
    if (opts.base_map != nullptr) check_base_unchanged(base.path, *opts.base_map);
    // Start writing the copy back now, without waiting: the final fsync then has little left to do
    // and the disk works while the filesystems are edited and the next node is copied.
    sync_file_range(out.fd(), 0, 0, SYNC_FILE_RANGE_WRITE);
    out.close_fd();

    // root partition: grow first when this node's files would not fit, then write them.
    Partition root = base.root;
    if (uint64_t deficit = root_growth_needed(base, plan); deficit > 0) {
      step = "growing the root partition";
      // New block groups bring their own inode tables and bitmaps: allow 1/8 plus 16 MiB for them.
      root = grow_root_partition(out.temp_path(), root, deficit + deficit / 8 + (16ull << 20));
      result.grown = true;
      written.mark_all();  // resize2fs and the partition table edit write outside the log
    }
    write_node_files(base, plan, out.temp_path(), result.path, root, written, step);
    // finalize: fsync and rename to the final name.
    step = "finishing the image";
    struct stat st {};
    if (stat(out.temp_path().c_str(), &st) == 0) result.image_size = static_cast<uint64_t>(st.st_size);
    // The block map is computed from the finished temporary (still in the page cache), hashing
    // only the pieces written since the clone and taking the base's hashes for the rest; a stale
    // .bmap is removed before the rename and the new one written after it, so a .bmap beside an
    // image always describes that image, or there is none.
    const Bmap* base_bmap = opts.base_map != nullptr ? &opts.base_map->bmap : nullptr;
    BmapReuse reuse{base_bmap, written.merged(), written.all() || base_bmap == nullptr};
    BmapWork work;
    std::string bmap_text = render_bmap(make_bmap(out.temp_path(), kBmapSplitBlocks, &reuse, &work));
    result.hashed_bytes = work.hashed_bytes;
    unlink(bmap_path_for(result.path).c_str());
    out.commit();
    step = "writing the block map";
    // 0600 like the image: its per-range checksums cover system-boot, whose seed holds the Wi-Fi
    // passphrase and password hash, so a readable .bmap would let guesses be tested offline.
    write_file_atomic(bmap_path_for(result.path), bmap_text, 0600);
  } catch (const Error& e) {
    throw Error(plan.image_file + ": while " + step + ": " + mention_final_path(e.what(), result.path));
  }
  record_written(result.path, opts, written);
  return result;
}

}  // namespace pibake
