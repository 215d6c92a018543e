// Sparse-preserving image copies (see sparse_copy.h).
#include "image/sparse_copy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

#include "image/bmap.h"

#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& src, const std::string& dst) {
  int e = errno;
  std::string msg = "while copying " + src + " to " + dst + ": " + what + ": " + std::strerror(e);
  if (e == ENOSPC) msg += " (the output directory's filesystem is full)";
  throw Error(msg);
}

// Bytes copied between two writeback starts: the disk writes one step while the next is copied.
constexpr uint64_t kWritebackStep = 32u << 20;

// Copies [off, off+len) with copy_file_range, falling back to read/write where the kernel or the
// filesystems refuse (EXDEV on old kernels, ENOSYS, EINVAL on some filesystems). With
// `start_writeback`, writeback of each step is started at once (sync_file_range), so the disk
// works during the copy instead of at the first fsync.
void copy_range(int in, int out, uint64_t off, uint64_t len, const std::string& src, const std::string& dst,
                bool start_writeback) {
  bool use_cfr = true;
  std::vector<char> buf;
  while (len > 0) {
    if (use_cfr) {
      loff_t in_off = static_cast<loff_t>(off), out_off = static_cast<loff_t>(off);
      ssize_t n = copy_file_range(in, &in_off, out, &out_off, std::min(len, kWritebackStep), 0);
      if (n > 0) {
        if (start_writeback) sync_file_range(out, static_cast<off_t>(off), n, SYNC_FILE_RANGE_WRITE);
        off += static_cast<uint64_t>(n);
        len -= static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) fail("unexpected end of file", src, dst);
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) {
        fail("copy_file_range", src, dst);
      }
      use_cfr = false;
      buf.resize(4 << 20);
    }
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(len, buf.size()));
    ssize_t n = pread(in, buf.data(), chunk, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("read", src, dst);
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(out, buf.data() + done, static_cast<size_t>(n - done), static_cast<off_t>(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("write", src, dst);
      done += w;
    }
    off += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
}

}  // namespace

CopyStats copy_sparse(const std::string& src, int dst_fd, const std::string& dst_name, unsigned threads,
                      bool start_writeback) {
  UniqueFd in(open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) fail("open", src, dst_name);
  struct stat st {};
  if (fstat(in.get(), &st) != 0) fail("stat", src, dst_name);
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  CopyStats stats;
  // A reflink shares every extent (btrfs, xfs, bcachefs): instant and takes no space.
  if (ioctl(dst_fd, FICLONE, in.get()) == 0) {
    stats.method = CopyMethod::kReflink;
    return stats;
  }
  if (ftruncate(dst_fd, static_cast<off_t>(size)) != 0) fail("truncate", src, dst_name);
  // The base's data ranges, as a block map finds them (SEEK_DATA/SEEK_HOLE).
  const std::vector<ByteRange> ranges = data_ranges(in.get(), src);
  for (const ByteRange& r : ranges) stats.data_bytes += r.end - r.start;
  // The data cut into `threads` shares of about equal bytes (whole MiBs); the kernel's copy is a
  // memcpy per page, so each share keeps one core busy.
  threads = std::max(1u, threads);
  constexpr uint64_t kMiB = 1u << 20;
  const uint64_t share = std::max(kMiB, (stats.data_bytes / threads + kMiB - 1) / kMiB * kMiB);
  std::vector<std::vector<ByteRange>> shares(1);
  uint64_t filled = 0;
  for (ByteRange r : ranges) {
    while (r.start < r.end) {
      if (filled == share && shares.size() < threads) {
        shares.emplace_back();
        filled = 0;
      }
      uint64_t take = shares.size() < threads ? std::min(r.end - r.start, share - filled) : r.end - r.start;
      shares.back().push_back({r.start, r.start + take});
      filled += take;
      r.start += take;
    }
  }
  auto copy_share = [&](const std::vector<ByteRange>& list) {
    for (const ByteRange& r : list)
      copy_range(in.get(), dst_fd, r.start, r.end - r.start, src, dst_name, start_writeback);
  };
  std::vector<std::exception_ptr> errors(shares.size());
  std::vector<std::thread> workers;
  for (size_t i = 1; i < shares.size(); ++i) {
    workers.emplace_back([&, i] {
      try {
        copy_share(shares[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  try {
    copy_share(shares[0]);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (std::thread& t : workers) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return stats;
}

}  // namespace pibake
