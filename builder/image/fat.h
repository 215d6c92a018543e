// FAT (FAT32, and FAT16/FAT12 for small partitions) read and written in place inside a byte range
// of an image file: the boot partition (`system-boot`). No mtools, no mount.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "image/read_limit.h"

namespace pibake {

class WriteLog;

struct FatEntry {
  std::string name;  // long name when there is one, else the 8.3 name as "NAME.EXT"
  bool is_directory = false;
  uint64_t size = 0;
};

class FatFs {
 public:
  // Opens the FAT filesystem found at byte `offset` of `image_path`, `size` bytes long (the
  // partition's extent). Throws pibake::Error when the boot sector is not a FAT boot sector, the
  // geometry does not fit inside `size`, the FAT is larger than kMaxFatBytes (read_limit.h; checked
  // from the boot sector before it is allocated), or the file cannot be opened. Messages name the file
  // `display_name` (default: `image_path`): the image the user knows, not the temporary file.
  // With `write_log`, every byte range written (image offsets) is added to it (write_log.h); it
  // must outlive the object.
  FatFs(const std::string& image_path, uint64_t offset, uint64_t size, bool writable,
        const std::string& display_name = "", WriteLog* write_log = nullptr);
  ~FatFs();  // flushes like close() but never throws (an unflushed change is reported to stderr)
  FatFs(const FatFs&) = delete;
  FatFs& operator=(const FatFs&) = delete;

  // Writes every FAT copy and the FSInfo sector; throws on an I/O error. Idempotent.
  void close();

  int fat_bits() const;       // 12, 16 or 32
  std::string label() const;  // volume label (root-dir label entry, else the boot sector's), trimmed
  uint64_t free_bytes() const;

  // Timestamps given to entries created or modified from now on (Unix seconds, UTC).
  // Default: 0 means build_timestamp() (util/build_time.h): SOURCE_DATE_EPOCH when set, else
  // 2000-01-01 00:00:00; read when an entry is written, which throws when it is not a number.
  void set_timestamp(int64_t unix_seconds);

  // Paths are '/'-separated and relative to the filesystem root ("cmdline.txt",
  // "overlays/README"); a leading '/' is allowed. Names compare case-insensitively, as FAT does.
  // "..", "." and empty components are rejected with pibake::Error.
  bool exists(std::string_view path) const;
  bool is_directory(std::string_view path) const;
  // The whole content of a file. Throws if it is missing, a directory, or larger than `max_bytes`
  // (checked from its directory entry before any memory is taken; read_limit.h).
  std::string read_file(std::string_view path, uint64_t max_bytes = kMaxWholeFileRead) const;
  std::vector<FatEntry> list(std::string_view dir) const;         // excludes ".", "..", volume label
  void write_file(std::string_view path, std::string_view data);  // create or replace; parent must exist
  void mkdir_p(std::string_view path);                            // like mkdir -p
  bool remove(std::string_view path);  // removes a file or an empty directory; false if absent

  // What fsck.fat -n would report among the structures pibake's writes rely on: FAT copies that
  // differ, cluster chains that loop or run into free, bad or out-of-range clusters, chains shared
  // by two names (cross-links), files whose size does not match their chain, clusters in use
  // that no name reaches, and an FSInfo free count that is wrong. Empty when clean; at most 8
  // problems, each one line. Throws pibake::Error only on a read error. Reads the whole tree.
  std::vector<std::string> check() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pibake
