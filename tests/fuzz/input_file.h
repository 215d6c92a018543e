// The fuzz input as a file: the image readers take a path (libfdisk, libext2fs and FatFs open
// files themselves), so each input is written to one memfd and read through /proc/self/fd/N.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

class InputFile {
 public:
  InputFile(const uint8_t* data, size_t size) : fd_(memfd_create("fuzz-input", MFD_CLOEXEC)) {
    if (fd_ >= 0 && ftruncate(fd_, 0) == 0 && write(fd_, data, size) == static_cast<ssize_t>(size)) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
  }
  ~InputFile() {
    if (fd_ >= 0) close(fd_);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};
