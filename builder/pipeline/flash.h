// `pibake flash IMAGE DEVICE`: writes only an image's mapped blocks to a card (or a regular file),
// fsyncs, reads them back and compares checksums; refuses mounted, fixed or oversized disks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
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
  uint64_t image_size = 0;     // bytes
  uint64_t written_bytes = 0;  // bytes written (the mapped ranges)
  size_t ranges = 0;           // ranges written
  double seconds = 0;
  bool verified = false;
};

// `pibake flash IMAGE TARGET`: refuses the target (pibake::Error listing every reason) unless it is
// a regular file or a removable, unmounted whole disk no larger than max_bytes (or opts.force);
// writes the image's mapped ranges (its .bmap, else SEEK_DATA; a .zst/.xz decompressed as a
// stream), checking each against the bmap's SHA-256, fsyncs, reads every range back and compares
// (opts.verify). Prints one summary line. Throws pibake::Error naming the file and range.
FlashResult run_flash(const FlashOptions& opts);

// The `*.img` files directly in `dir` (hidden temporaries skipped), as "dir/name", in natural
// order (node-2 before node-10). Throws pibake::Error when `dir` cannot be listed.
std::vector<std::string> images_in(const std::string& dir);

// `pibake flash DIR TARGET...`: the i-th image of images_in(`dir`) to the i-th target, all at once
// (one thread per card, one progress line per card), each as run_flash writes and verifies it
// (opts.image and opts.target are not used; write buffers share a 64 MiB budget). Everything is
// checked before anything is written to any card, each a pibake::Error: a count that differs from
// the images', an image without its .bmap (only pibake build's outputs are flashed this way), a
// target given twice or that is one of the images or maps, a target that cannot be written, and
// every device refusal (all listed at once). A card that fails does not stop the others; then
// pibake::Error names each failed card after all have finished.
std::vector<FlashResult> run_flash_many(const std::string& dir, const std::vector<std::string>& targets,
                                        const FlashOptions& opts);

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
