// .xz decompression (liblzma, multi-threaded when the stream has several blocks) into a sparse file.
#pragma once

#include <string>

namespace pibake {

// Decompresses `xz_path` into the empty file `dst_fd`; runs of zero blocks become holes.
void decompress_xz_sparse(const std::string& xz_path, int dst_fd, const std::string& dst_name);

}  // namespace pibake
