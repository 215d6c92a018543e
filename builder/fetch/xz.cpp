// .xz → sparse raw image (see xz.h). lzma_stream_decoder_mt decodes independent blocks in
// parallel; single-block streams (xz without -T) fall back to one thread by themselves.
#include "fetch/xz.h"

#include <fcntl.h>
#include <lzma.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/unique_fd.h"

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
    if (!all_zero(p + i, len)) {
      size_t done = 0;
      while (done < len) {
        ssize_t w = pwrite(fd, p + i + done, len - done, static_cast<off_t>(pos + i + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw Error("while writing " + name + ": " + std::strerror(errno));
        done += static_cast<size_t>(w);
      }
    }
    i += len;
  }
}

}  // namespace

void decompress_xz_sparse(const std::string& xz_path, int dst_fd, const std::string& dst_name) {
  UniqueFd in(open(xz_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw Error(xz_path + ": " + std::strerror(errno));
  lzma_stream strm = LZMA_STREAM_INIT;
  lzma_mt mt{};
  mt.threads = std::max(1u, std::thread::hardware_concurrency());
  mt.memlimit_threading = 1ull << 30;
  mt.memlimit_stop = UINT64_MAX;
  mt.flags = LZMA_CONCATENATED;
  lzma_ret ret = lzma_stream_decoder_mt(&strm, &mt);
  if (ret != LZMA_OK) {
    throw Error("liblzma: cannot start the decoder (" + std::to_string(ret) + ")");
  }
  std::vector<uint8_t> inbuf(1 << 20), outbuf(4 << 20);
  uint64_t pos = 0;
  lzma_action action = LZMA_RUN;
  strm.avail_out = outbuf.size();
  strm.next_out = outbuf.data();
  try {
    for (;;) {
      if (interrupted()) throw Error("interrupted");
      if (strm.avail_in == 0 && action == LZMA_RUN) {
        ssize_t n = read(in.get(), inbuf.data(), inbuf.size());
        if (n < 0) throw Error(xz_path + ": " + std::strerror(errno));
        strm.next_in = inbuf.data();
        strm.avail_in = static_cast<size_t>(n);
        if (n == 0) action = LZMA_FINISH;
      }
      ret = lzma_code(&strm, action);
      if (strm.avail_out == 0 || ret == LZMA_STREAM_END) {
        size_t have = outbuf.size() - strm.avail_out;
        write_sparse(dst_fd, outbuf.data(), have, pos, dst_name);
        pos += have;
        strm.next_out = outbuf.data();
        strm.avail_out = outbuf.size();
      }
      if (ret == LZMA_STREAM_END) break;
      if (ret != LZMA_OK) {
        const char* why = ret == LZMA_FORMAT_ERROR ? "not an .xz file"
                          : ret == LZMA_DATA_ERROR ? "corrupt data"
                          : ret == LZMA_BUF_ERROR  ? "truncated file"
                          : ret == LZMA_MEM_ERROR  ? "out of memory"
                                                   : "decoder error";
        throw Error(xz_path + ": cannot decompress: " + why);
      }
    }
    if (ftruncate(dst_fd, static_cast<off_t>(pos)) != 0) throw Error(dst_name + ": " + std::strerror(errno));
  } catch (...) {
    lzma_end(&strm);
    throw;
  }
  lzma_end(&strm);
}

}  // namespace pibake
