// Path resolution inside the ext4 image, chroot-style, and reading symlink targets and file
// content. Security matters here: whatever the image holds (symlinks to "/../../etc", "..",
// loops), a path can only ever reach inodes of this filesystem, and never loop forever.

#include <algorithm>
#include <cstddef>
#include <deque>
#include <vector>

#include "image/ext4_impl.h"

namespace pibake {
namespace {

constexpr int kMaxSymlinkHops = 40;             // Linux's MAXSYMLINKS
constexpr unsigned kReadChunkBytes = 1u << 20;  // unit of ext2fs_file_read calls

struct Component {
  std::string name;
  bool from_link = false;  // comes from a symlink target: mkdir_p does not create those
};

// Puts the components of `text` in front of `pending`, in order. Empty components ("a//b",
// a trailing "/") are dropped, as POSIX path resolution does.
void push_components(std::deque<Component>& pending, std::string_view text, bool from_link) {
  std::vector<Component> parts;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = std::min(text.find('/', start), text.size());
    if (end > start) parts.push_back({std::string(text.substr(start, end - start)), from_link});
    start = end + 1;
  }
  pending.insert(pending.begin(), parts.begin(), parts.end());
}

std::string join(const std::vector<std::string>& names) {
  if (names.empty()) return "/";
  std::string out;
  for (const auto& n : names) out += "/" + n;
  return out;
}

}  // namespace

Resolved Ext4Fs::Impl::resolve(std::string_view path, Follow follow, const Ownership* create_dirs) {
  const std::string_view action = create_dirs ? "creating directories for" : "looking up";
  if (path.empty() || path.front() != '/') {
    fail(action, path.empty() ? "\"\"" : path, "paths inside the image must be absolute (start with /)");
  }
  if (path.find('\0') != std::string_view::npos) fail(action, path, "the path contains a NUL byte");
  ext2_filsys filesystem = fs();

  // The directories walked so far, root first: ".." pops one (never the root), which is how the
  // walk stays inside the image without trusting the image's own ".." entries. `names` mirrors
  // it for messages.
  std::vector<ext2_ino_t> dirs = {EXT2_ROOT_INO};
  std::vector<std::string> names;
  std::deque<Component> pending;
  push_components(pending, path, false);
  int hops = 0;

  while (!pending.empty()) {
    Component comp = std::move(pending.front());
    pending.pop_front();
    const bool last = pending.empty();
    if (comp.name == ".") continue;
    if (comp.name == "..") {
      if (dirs.size() > 1) {
        dirs.pop_back();
        names.pop_back();
      }
      continue;
    }
    const ext2_ino_t dir = dirs.back();
    // ext2fs_lookup reads every block the directory maps, through its extent tree.
    require_sound_block_map(dir, action, path, join(names));
    names.push_back(comp.name);
    if (comp.name.size() > EXT2_NAME_LEN) {
      fail(action, path, "the name " + join(names) + " is longer than 255 bytes");
    }
    ext2_ino_t ino = 0;
    errcode_t rc = ext2fs_lookup(filesystem, dir, comp.name.data(), static_cast<int>(comp.name.size()), nullptr, &ino);
    if (rc == EXT2_ET_FILE_NOT_FOUND) {
      if (create_dirs != nullptr && !comp.from_link) {
        dirs.push_back(make_directory(dir, comp.name, *create_dirs, path));
        continue;
      }
      Resolved missing;
      missing.status = last ? Resolved::Status::kMissing : Resolved::Status::kNoParent;
      missing.parent = last ? dir : 0;
      missing.name = comp.name;
      missing.problem = join(names) + " does not exist";
      return missing;
    }
    check(rc, action, path);

    ext2_inode_large inode = read_inode(ino, path);
    if (LINUX_S_ISLNK(inode.i_mode) && (!last || follow == Follow::kYes)) {
      if (++hops > kMaxSymlinkHops) {
        fail(action, path, "too many levels of symbolic links (a symlink loop?) at " + join(names));
      }
      require_sound_block_map(ino, action, path, join(names));  // a slow symlink's target is in a block
      std::string target = read_symlink(ino, inode, path);
      names.pop_back();
      // An absolute target starts again at the image root, as it would inside a chroot.
      if (target.front() == '/') {
        dirs.resize(1);
        names.clear();
      }
      push_components(pending, target, true);
      continue;
    }
    if (last) {
      Resolved found;
      found.status = Resolved::Status::kFound;
      found.parent = dir;
      found.name = comp.name;
      found.ino = ino;
      return found;
    }
    if (!LINUX_S_ISDIR(inode.i_mode)) {
      Resolved blocked;
      blocked.problem = join(names) + " is not a directory";
      return blocked;
    }
    dirs.push_back(ino);
  }

  // The walk ended on a directory itself: "/", a trailing "." or "..", or a followed symlink
  // whose target ends that way.
  Resolved found;
  found.status = Resolved::Status::kFound;
  found.parent = dirs.back();
  found.ino = dirs.back();
  return found;
}

// Mirrors the three ways e2fsprogs stores a target (debugfs dump_inode / e2fsck pass1
// check_symlink): in i_block for fast symlinks, in the inline "system.data" area for inline-data
// symlinks, else in the first data block.
std::string Ext4Fs::Impl::read_symlink(ext2_ino_t ino, const ext2_inode_large& inode, std::string_view path) {
  ext2_filsys filesystem = fs();
  ext2_inode* small = const_cast<ext2_inode*>(reinterpret_cast<const ext2_inode*>(&inode));
  const uint64_t size = EXT2_I_SIZE(small);
  if (size == 0 || size >= filesystem->blocksize) {
    fail("looking up", path,
         "a symlink on the way has an invalid length (" + std::to_string(size) + " bytes); run e2fsck on the image");
  }
  if (inode.i_flags & EXT4_ENCRYPT_FL) {
    fail("looking up", path, "a symlink on the way is encrypted (fscrypt)");
  }
  std::string target;
  if (inode.i_flags & EXT4_INLINE_DATA_FL) {
    std::string buf(EXT4_MIN_INLINE_DATA_SIZE + EXT2_INODE_SIZE(filesystem->super), '\0');
    std::size_t got = 0;
    check(ext2fs_inline_data_get(filesystem, ino, small, buf.data(), &got), "reading a symlink to resolve", path);
    target = buf.substr(0, std::min<std::size_t>(got, size));
  } else if (ext2fs_is_fast_symlink(small)) {
    target.assign(reinterpret_cast<const char*>(inode.i_block), size);
  } else {
    target = read_content(ino, path);
  }
  target.resize(std::min(target.size(), static_cast<std::size_t>(size)));
  // A NUL ends the target for the kernel too; an empty target resolves to nothing (ENOENT).
  target.resize(std::min(target.size(), target.find('\0')));
  if (target.empty()) fail("looking up", path, "a symlink on the way has an empty target");
  return target;
}

std::string Ext4Fs::Impl::read_content(ext2_ino_t ino, std::string_view path) {
  std::string out;
  read_inode_content(
      ino, path, kMaxWholeFileRead, [&](uint64_t size) { out.reserve(size); },
      [&](std::string_view chunk) { out.append(chunk); });
  return out;
}

void Ext4Fs::Impl::read_regular(std::string_view path, uint64_t max_bytes, const std::function<void(uint64_t)>& sized,
                                const std::function<void(std::string_view)>& chunk) {
  Resolved r = resolve(path, Follow::kYes);
  if (r.status != Resolved::Status::kFound) fail("reading", path, r.problem);
  ext2_inode_large inode = read_inode(r.ino, path);
  if (LINUX_S_ISDIR(inode.i_mode)) fail("reading", path, "it is a directory");
  if (!LINUX_S_ISREG(inode.i_mode)) fail("reading", path, "it is not a regular file");
  read_inode_content(r.ino, path, max_bytes, sized, chunk);
}

void Ext4Fs::Impl::read_inode_content(ext2_ino_t ino, std::string_view path, uint64_t max_bytes,
                                      const std::function<void(uint64_t)>& sized,
                                      const std::function<void(std::string_view)>& chunk) {
  require_sound_block_map(ino, "reading", path, path);
  ext2_file_t raw = nullptr;
  check(ext2fs_file_open(fs(), ino, 0, &raw), "reading", path);
  Ext2File file(raw);
  __u64 size = 0;
  check(ext2fs_file_get_lsize(file.get(), &size), "reading", path);
  if (size > max_bytes) fail("reading", path, too_large_to_read(size, max_bytes));
  sized(size);
  std::string buf(static_cast<size_t>(std::min<uint64_t>(size, kReadChunkBytes)), '\0');
  uint64_t done = 0;
  while (done < size) {
    unsigned want = static_cast<unsigned>(std::min<uint64_t>(size - done, kReadChunkBytes));
    unsigned got = 0;
    check(ext2fs_file_read(file.get(), buf.data(), want, &got), "reading", path);
    if (got == 0) fail("reading", path, "the file ended before its recorded size");
    chunk(std::string_view(buf.data(), got));
    done += got;
  }
  check(ext2fs_file_close(file.release()), "reading", path);
}

}  // namespace pibake
