// Reading small whole files (lock file, checksum lists, kept kubeconfigs, /proc/self/mounts),
// positioned reads and writes that go on until done, and the last component of a path or URL.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pibake {

// The most a "small file" may hold (lock file, checksum lists, kubeconfigs): 16 MiB.
constexpr size_t kMaxSmallFile = size_t{16} << 20;

// The whole file; throws pibake::Error naming the path when it cannot be opened or read, is not a
// regular file (a FIFO is refused without blocking), or holds more than `max_bytes` bytes (memory
// stays bounded whatever the file).
std::string read_file(const std::string& path, size_t max_bytes = kMaxSmallFile);
// Same, but a file that does not exist is `false` rather than an error.
bool read_file_if_exists(const std::string& path, std::string& out, size_t max_bytes = kMaxSmallFile);

// "a regular file", "a directory", "a FIFO (named pipe)", ... for st_mode `mode`, for messages.
const char* file_kind(mode_t mode);
// Throws pibake::Error ("WHAT PATH is a FIFO (named pipe): expected a regular image file") unless
// `path` is a regular file (symlinks followed). stat() only: never blocks, whatever the file is.
// For user-given images, which libfdisk and open() would otherwise wait on forever.
void require_regular_file(const std::string& path, const std::string& what);

// What identifies one version of a file without reading it: "<dev> <inode> <size> <ctime> <mtime>"
// (nanoseconds). Any write, truncation, rename over it or utimes() changes one of these, and ctime
// cannot be set by a user. Empty when the file cannot be stat()ed. Follows symlinks.
std::string file_identity(const std::string& path);
// The same for a stat() result.
std::string file_identity(const struct stat& st);
// "<dev> <inode> <size> <mtime>": file_identity without ctime, for a file whose content is also
// hashed, so a chmod, chown, hard link or xattr change (ctime only) is not taken for a new version.
// Empty when the file cannot be stat()ed. Follows symlinks.
std::string file_content_identity(const std::string& path);
std::string file_content_identity(const struct stat& st);

// pread(2) until `n` bytes are read at byte `offset` (EINTR and short reads retried); returns
// fewer only at the end of the file. Throws pibake::Error naming `name` on a read error
// ("NAME: read error at byte N: ...").
size_t pread_up_to(int fd, void* buf, size_t n, uint64_t offset, const std::string& name);
// pread_up_to, but the file ending first is an error ("unexpected end of file at byte N").
void pread_exact(int fd, void* buf, size_t n, uint64_t offset, const std::string& name);
// pwrite(2) until all `n` bytes are written at byte `offset`; throws pibake::Error naming `name`
// otherwise ("NAME: write error at byte N: ..." with ENOSPC, EFBIG, EIO ...; a write of 0 bytes,
// a device's end, counts as ENOSPC).
void pwrite_exact(int fd, const void* buf, size_t n, uint64_t offset, const std::string& name);

// Whether anything (a file, a directory, a dangling symlink ...) is at `path`: lstat(2), links not
// followed. Never throws.
bool path_exists(const std::string& path);

// "a/b/c.img" -> "c.img"; "https://h/x/y.tgz" -> "y.tgz"; a name without '/' is itself.
std::string base_name(std::string_view path);

}  // namespace pibake
