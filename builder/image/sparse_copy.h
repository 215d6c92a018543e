// Copying a disk image so that holes stay holes: reflink when the filesystem can share extents,
// else only the data ranges (SEEK_DATA/SEEK_HOLE) with copy_file_range.
#pragma once

#include <cstdint>
#include <string>

namespace pibake {

enum class CopyMethod { kReflink, kSparseRanges };

struct CopyStats {
  CopyMethod method = CopyMethod::kSparseRanges;
  uint64_t data_bytes = 0;  // bytes actually copied (0 for a reflink)
};

// Copies the whole of `src` into the open, empty, writable file `dst_fd` (same size, same holes).
// Without a reflink, the data is copied by `threads` threads (each a share of about equal bytes):
// the kernel's copy costs CPU, so a single node uses every core a multi-node build would. With
// `start_writeback`, writeback of every 32 MiB copied is started at once (sync_file_range), so the
// disk works during the copy; that helps a file copied alone and slows several copied at once.
// Throws pibake::Error with both names on failure (ENOSPC included).
CopyStats copy_sparse(const std::string& src, int dst_fd, const std::string& dst_name, unsigned threads = 1,
                      bool start_writeback = false);

}  // namespace pibake
