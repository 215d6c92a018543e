// The one owner of a POSIX file descriptor (as systemd's fd-util.h `_cleanup_close_` and
// android-base's unique_fd): closed exactly once, when its owner goes away.
#pragma once

#include <sys/types.h>

#include <string>

namespace pibake {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives the descriptor up without closing it; the object is then empty (-1).
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the descriptor held (if any; close's errors are ignored, as nothing was written through
  // a descriptor whose data matters without an fsync first) and takes `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added. Throws pibake::Error "cannot open PATH: <strerror>" on failure.
UniqueFd open_fd(const std::string& path, int flags, mode_t mode = 0);

}  // namespace pibake
