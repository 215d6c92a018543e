// `pibake flash IMAGE DEVICE`: writes only an image's mapped blocks to a card (or a regular file),
// fsyncs, reads them back and compares checksums; refuses mounted, fixed or oversized disks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pibake {

// Larger than any SD card a Raspberry Pi cluster uses, smaller than most system disks.
inline constexpr uint64_t kDefaultFlashMaxBytes = 256ull << 30;

struct FlashOptions {
  std::string image;   // .img (its .bmap is used when next to it), .img.zst or .img.xz
  std::string target;  // a block device or a regular file (created or truncated)
  bool force = false;  // skip the mounted / removable / size refusals
  uint64_t max_bytes = kDefaultFlashMaxBytes;
  bool verify = true;
};

struct FlashResult {
  uint64_t image_size = 0;
  uint64_t written_bytes = 0;
  double seconds = 0;
  bool verified = false;
};

FlashResult run_flash(const FlashOptions& opts);

// What pibake knows about a target block device, read from sysfs (kept apart so that the refusal
// rules are tested on data, never on a real disk).
struct DeviceFacts {
  std::string path;                 // "/dev/sdb" as given
  std::string name;                 // kernel name, "sdb"
  bool partition = false;           // "sdb1": a partition, not a whole disk
  bool removable = false;           // /sys/block/<name>/removable is 1
  uint64_t size_bytes = 0;          // /sys/block/<name>/size × 512
  std::vector<std::string> mounts;  // "/dev/sdb1 on /media/card" for the disk and its partitions
};

// Every reason to refuse the device (empty: go ahead). An SD card in a built-in reader
// (mmcblk*) reports removable=0 yet is what one flashes, so it counts as removable.
std::vector<std::string> device_refusals(const DeviceFacts& dev, uint64_t max_bytes);

// Lines of /proc/self/mounts whose source is one of `device_paths` (canonical /dev paths), as
// "SOURCE on MOUNTPOINT". Octal escapes (\040) in mount points are decoded.
std::vector<std::string> mounts_of(std::string_view mounts_text, const std::vector<std::string>& device_paths);

// Reads sysfs and /proc/self/mounts for the block device at `path`.
DeviceFacts probe_device(const std::string& path);

}  // namespace pibake
