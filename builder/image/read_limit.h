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

// How much of a FAT (the file allocation table, FatFs) pibake holds in memory, bytes. Its size
// comes from the boot sector, which an image can make claim a huge partition on a sparse file (a
// 130 GiB claim made pibake allocate 1 GiB for it), so a larger FAT is refused before any memory
// is taken. FAT32 takes 4 bytes a cluster: Ubuntu's 512 MiB system-boot (4 KiB clusters) needs
// 512 KiB; 64 MiB holds 16 Mi clusters, a 64 GiB FAT32 partition of 4 KiB clusters.
inline constexpr uint64_t kMaxFatBytes = uint64_t{64} << 20;

// How large an ext4 directory pibake looks names up in or lists, bytes (Ext4Fs). libext2fs reads
// every block of a directory at each lookup (ext2fs_lookup has no use for its htree index), and a
// directory's size and extents come from the image: a larger one is refused before it is read.
// 32 MiB holds some 800,000 entries of 30-byte names; the largest directory of Ubuntu's images,
// /var/lib/dpkg/info, holds some thousands (a few hundred KiB).
inline constexpr uint64_t kMaxDirectoryBytes = uint64_t{32} << 20;

// The reason given for refusing a file of `size` bytes (more than `max_bytes`).
inline std::string too_large_to_read(uint64_t size, uint64_t max_bytes) {
  const std::string limit = max_bytes % (uint64_t{1} << 20) == 0 ? std::to_string(max_bytes >> 20) + " MiB"
                                                                 : std::to_string(max_bytes) + " bytes";
  return "it claims " + std::to_string(size) + " bytes, more than the " + limit +
         " pibake reads of such a file (a damaged or hostile image?)";
}

}  // namespace pibake
