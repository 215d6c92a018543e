// .xz → sparse raw image (see xz.h), through the xz decoder of codec.h.
#include "codec/xz.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "codec/codec.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {
namespace {

constexpr size_t kBlock = 4096;  // holes are made at filesystem-block granularity

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

// Writes `n` bytes at `pos`, skipping all-zero 4 KiB blocks (the file is later extended with
// ftruncate so trailing holes count too).
void write_sparse(int fd, const uint8_t* p, size_t n, uint64_t pos, const std::string& name) {
  size_t i = 0;
  while (i < n) {
    size_t len = std::min(kBlock - static_cast<size_t>((pos + i) % kBlock), n - i);
    if (!all_zero(p + i, len)) pwrite_exact(fd, p + i, len, pos + i, name);
    i += len;
  }
}

}  // namespace

void decompress_xz_sparse(const std::string& xz_path, int dst_fd, const std::string& dst_name) {
  // The one xz decoder (codec.cpp): multi-threaded, its errors naming the file.
  std::unique_ptr<Decompressor> in = open_decompressor(xz_path, Compression::kXz);
  std::vector<char> buf(4 << 20);
  uint64_t pos = 0;
  for (;;) {
    if (interrupted()) throw Error("interrupted");
    size_t n = in->read(buf.data(), buf.size());
    if (n == 0) break;
    write_sparse(dst_fd, reinterpret_cast<const uint8_t*>(buf.data()), n, pos, dst_name);
    pos += n;
  }
  if (ftruncate(dst_fd, static_cast<off_t>(pos)) != 0) throw Error(dst_name + ": " + std::strerror(errno));
}

}  // namespace pibake
