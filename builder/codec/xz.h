// .xz decompression (liblzma, multi-threaded when the stream has several blocks) into a sparse file.
#pragma once

#include <string>

namespace pibake {

// Decompresses `xz_path` into the empty file `dst_fd` (named `dst_name` in messages); runs of zero
// 4 KiB blocks become holes. Throws pibake::Error naming the file when it is not .xz, is corrupt or
// truncated, or on a write error or an interrupt.
void decompress_xz_sparse(const std::string& xz_path, int dst_fd, const std::string& dst_name);

}  // namespace pibake
