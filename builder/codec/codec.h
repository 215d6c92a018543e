// The codec library (layer 2, with xz.h and archive.h): compressed images written as
// node-N.img.zst / .img.xz (multi-threaded zstd and xz) with their sha256sum files, and any .zst or
// .xz file read back as a stream (`pibake flash`, the base image's .img.xz).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace pibake {

enum class Compression { kNone, kZstd, kXz };

// "zstd" / "xz" / "none" (the --compress values); throws pibake::Error on anything else.
Compression parse_compression(const std::string& name);
// By file name: ".zst" → kZstd, ".xz" → kXz, anything else kNone.
Compression compression_of(const std::string& path);
const char* suffix_of(Compression c);  // ".zst", ".xz", ""

// A decompressing reader over a whole file.
class Decompressor {
 public:
  virtual ~Decompressor() = default;
  // Fills up to `size` bytes; returns 0 only at the end of the stream. Throws pibake::Error on a
  // corrupt or truncated stream, naming the file.
  virtual size_t read(char* buf, size_t size) = 0;
};
std::unique_ptr<Decompressor> open_decompressor(const std::string& path, Compression c);

struct CompressResult {
  std::string path;    // "<image>.zst"
  std::string sha256;  // of the compressed file
  uint64_t bytes = 0;  // compressed size
};

// Writes `image_path` + suffix (and that + ".sha256", in sha256sum format), each atomically, with
// one compression thread per core. Holes are read as the zeros they stand for.
CompressResult compress_image(const std::string& image_path, Compression c);

}  // namespace pibake
