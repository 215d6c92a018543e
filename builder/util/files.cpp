// Small whole-file reads and base names (see files.h).
#include "util/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake {

bool read_file_if_exists(const std::string& path, std::string& out) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return false;
    throw Error(path + ": " + std::strerror(errno));
  }
  out.clear();
  char buf[65536];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  if (n < 0) throw Error(path + ": " + std::strerror(errno));
  return true;
}

std::string read_file(const std::string& path) {
  std::string out;
  if (!read_file_if_exists(path, out)) throw Error(path + ": " + std::strerror(ENOENT));
  return out;
}

std::string base_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace pibake
