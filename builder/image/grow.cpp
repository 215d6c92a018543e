// Growing the root partition and its ext4 without root privileges (see grow.h).
#include "image/grow.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/run.h"

namespace pibake {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
// GPT keeps a backup table in the last 33 sectors of the disk; leave room for it.
constexpr uint64_t kGptBackupBytes = 33 * 512 + kMiB;

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

}  // namespace

Partition grow_root_partition(const std::string& image_path, const Partition& root, uint64_t extra_bytes) {
  PartitionTable table = read_partition_table(image_path);
  uint64_t new_end = round_up(root.end() + extra_bytes, kMiB);
  uint64_t new_file_size = new_end + (table.label == "gpt" ? kGptBackupBytes : 0);
  if (new_file_size > table.image_size) {
    // truncate(2) extends with a hole: the added space costs nothing until written.
    if (truncate(image_path.c_str(), static_cast<off_t>(new_file_size)) != 0) {
      throw Error("while growing " + image_path + ": " + std::strerror(errno));
    }
  }
  grow_partition(image_path, root.number, new_end);

  // resize2fs opens the filesystem through the same unix io manager option as libext2fs
  // ("file?offset=N"), so no loop device is needed. -f: the image was never mounted here, and
  // its last-checked time is the base image's.
  //
  // resize2fs (resize/main.c) also opens a plain-file "device" itself and, when done, truncates
  // it to the filesystem's size, ignoring the offset: that would cut off the partition's tail.
  // It only does so when that descriptor is > 0, so it runs with standard input closed: its first
  // open() then returns 0 and the truncation is skipped. The size is checked afterwards anyway.
  uint64_t new_kib = (new_end - root.start) / 1024;
  RunResult r = run_command(
      {"resize2fs", "-f", image_path + "?offset=" + std::to_string(root.start), std::to_string(new_kib) + "K"},
      Stdin::kClosed);
  if (r.exit_code != 0) {
    throw Error("while growing the root filesystem of " + image_path + ": resize2fs failed (exit " +
                std::to_string(r.exit_code) + "):\n" + r.output);
  }
  struct stat st {};
  if (stat(image_path.c_str(), &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != std::max(new_file_size, table.image_size)) {
    throw Error("while growing the root filesystem of " + image_path +
                ": resize2fs changed the image file's size; the image is not usable");
  }
  for (const Partition& p : read_partition_table(image_path).partitions) {
    if (p.number == root.number) return p;
  }
  throw Error("internal error: partition " + std::to_string(root.number) + " vanished while growing");
}

}  // namespace pibake
