// The refusal rules of `pibake flash` and the sysfs / /proc/self/mounts reading behind them.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/flash.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Mount table fields escape space, tab, newline and backslash as \ooo.
std::string unescape_mount_field(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string canonical_or_same(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

}  // namespace

std::vector<std::string> device_refusals(const DeviceFacts& dev, uint64_t max_bytes) {
  std::vector<std::string> out;
  for (const std::string& m : dev.mounts) out.push_back("it is mounted: " + m);
  if (dev.partition)
    out.push_back(dev.path + " is a partition, not a whole card (flash the disk, not one of its partitions)");
  bool sd_card = dev.name.rfind("mmcblk", 0) == 0;
  if (!dev.removable && !sd_card) out.push_back(dev.path + " is not a removable device (sysfs removable=0)");
  if (dev.size_bytes > max_bytes) {
    out.push_back(fmt::format("{} holds {:.1f} GiB, more than the {:.1f} GiB limit for a card (see --max-size)",
                              dev.path, dev.size_bytes / double(1ull << 30), max_bytes / double(1ull << 30)));
  }
  return out;
}

std::vector<std::string> mounts_of(std::string_view mounts_text, const std::vector<std::string>& device_paths) {
  std::vector<std::string> out;
  std::istringstream in{std::string(mounts_text)};
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string source, target;
    if (!(fields >> source >> target)) continue;
    source = unescape_mount_field(source);
    for (const std::string& dev : device_paths) {
      if (source == dev) out.push_back(source + " on " + unescape_mount_field(target));
    }
  }
  return out;
}

DeviceFacts probe_device(const std::string& path) {
  DeviceFacts dev;
  dev.path = path;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) throw Error(path + " is not a block device");
  std::string sys = canonical_or_same(fmt::format("/sys/dev/block/{}:{}", major(st.st_rdev), minor(st.st_rdev)));
  std::filesystem::path sys_path(sys);
  dev.name = sys_path.filename();
  std::error_code ec;
  dev.partition = std::filesystem::exists(sys_path / "partition", ec);
  std::filesystem::path disk = dev.partition ? sys_path.parent_path() : sys_path;
  dev.removable = read_line(disk / "removable") == "1";
  std::string sectors = read_line(sys_path / "size");
  dev.size_bytes = sectors.empty() ? 0 : std::stoull(sectors) * 512;  // sysfs counts 512-byte units
  // The disk and every partition of it: a mounted partition makes the whole card busy.
  std::vector<std::string> paths{"/dev/" + disk.filename().string()};
  for (const auto& entry : std::filesystem::directory_iterator(disk, ec)) {
    if (std::filesystem::exists(entry.path() / "partition", ec))
      paths.push_back("/dev/" + entry.path().filename().string());
  }
  // Sources may be symlinks (/dev/disk/by-uuid/…, /dev/mapper/…): compare canonical paths.
  std::string mounts;
  read_file_if_exists("/proc/self/mounts", mounts);
  std::istringstream in(mounts);
  std::string canonical_text;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string source, rest;
    fields >> source;
    std::getline(fields, rest);
    if (source.rfind("/dev/", 0) == 0) source = canonical_or_same(unescape_mount_field(source));
    canonical_text += source + rest + "\n";
  }
  dev.mounts = mounts_of(canonical_text, paths);
  return dev;
}

}  // namespace pibake
