// Small whole-file reads and base names (see files.h).
#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake {

bool read_file_if_exists(const std::string& path, std::string& out, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait forever for a writer; fstat then refuses it.
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) return false;
    throw Error(path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw Error(path + " is " + file_kind(st.st_mode) + ", not a regular file");
  }
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  out.clear();
  char buf[65536];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      out.clear();
      throw Error(path + " is larger than " + std::to_string(max_bytes) + " bytes: not the small file expected here");
    }
  }
  if (n < 0) throw Error(path + ": " + std::strerror(errno));
  return true;
}

std::string read_file(const std::string& path, size_t max_bytes) {
  std::string out;
  if (!read_file_if_exists(path, out, max_bytes)) throw Error(path + ": " + std::strerror(ENOENT));
  return out;
}

const char* file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a file";
}

void require_regular_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw Error(what + " " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    throw Error(what + " " + path + " is " + file_kind(st.st_mode) + ": expected a regular image file");
  }
}

size_t pread_up_to(int fd, void* buf, size_t n, uint64_t offset, const std::string& name) {
  auto* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < n) {
    ssize_t got = pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw Error(name + ": read error at byte " + std::to_string(offset + done) + ": " + std::strerror(errno));
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

void pread_exact(int fd, void* buf, size_t n, uint64_t offset, const std::string& name) {
  if (size_t got = pread_up_to(fd, buf, n, offset, name); got != n) {
    throw Error(name + ": unexpected end of file at byte " + std::to_string(offset + got));
  }
}

void pwrite_exact(int fd, const void* buf, size_t n, uint64_t offset, const std::string& name) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t put = pwrite(fd, p, n, static_cast<off_t>(offset));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      throw Error(name + ": write error at byte " + std::to_string(offset) + ": " +
                  std::strerror(put < 0 ? errno : ENOSPC));
    }
    p += put, offset += static_cast<uint64_t>(put), n -= static_cast<size_t>(put);
  }
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string base_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return file_identity(st);
}

std::string file_identity(const struct stat& st) {
  return fmt::format("{} {} {} {}.{:09} {}.{:09}", st.st_dev, st.st_ino, st.st_size, st.st_ctim.tv_sec,
                     st.st_ctim.tv_nsec, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

std::string file_content_identity(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return file_content_identity(st);
}

std::string file_content_identity(const struct stat& st) {
  return fmt::format("{} {} {} {}.{:09}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

}  // namespace pibake
