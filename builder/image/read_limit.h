#pragma once
// How much pibake reads whole, into memory, from one file inside an image (Ext4Fs::read_file,
// FatFs::read_file). What it reads that way is configuration text: os-release, passwd, dpkg's
// status database (a few MiB on Ubuntu's images), cmdline.txt, config.txt, a card's node.json.
// An image is untrusted input: a file's size comes from its inode or directory entry, and a sparse
// file can claim terabytes, so a larger file is refused before any memory is taken. Large files
// (binaries, image archives) are streamed instead (Ext4Fs::read_chunks).

#include <cstdint>
#include <string>

namespace pibake {

inline constexpr uint64_t kMaxWholeFileRead = uint64_t{64} << 20;  // bytes

// The reason given for refusing a file of `size` bytes (more than `max_bytes`).
inline std::string too_large_to_read(uint64_t size, uint64_t max_bytes) {
  const std::string limit = max_bytes % (uint64_t{1} << 20) == 0 ? std::to_string(max_bytes >> 20) + " MiB"
                                                                 : std::to_string(max_bytes) + " bytes";
  return "it claims " + std::to_string(size) + " bytes, more than the " + limit +
         " pibake reads of such a file (a damaged or hostile image?)";
}

}  // namespace pibake
