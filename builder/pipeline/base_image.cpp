// Finding and checking the base image's partitions (see base_image.h).
#include "pipeline/base_image.h"

#include <charconv>
#include <memory>
#include <cstdint>
#include <optional>
#include <sstream>
#include <vector>

#include "image/ext4.h"
#include "image/fat.h"
#include "util/error.h"
#include "util/text.h"

namespace pibake {
namespace {

constexpr const char* kBootLabel = "system-boot";
constexpr const char* kRootLabel = "writable";
constexpr const char* kDpkgStatus = "/var/lib/dpkg/status";

// Identity an earlier boot leaves behind (machine-id(5), systemd-random-seed.service(8),
// cloud-init's per-instance state in /var/lib/cloud, sshd's host keys).
std::vector<std::string> booted_traces(const Ext4Fs& fs) {
  std::vector<std::string> traces;
  auto nonempty = [&](const char* path) {
    if (!fs.exists(path) || fs.is_directory(path)) return false;
    std::string text = fs.read_file(path);
    return !text.empty() && text != "uninitialized\n";
  };
  if (nonempty("/etc/machine-id")) traces.push_back("/etc/machine-id is set");
  if (fs.exists("/var/lib/systemd/random-seed")) traces.push_back("/var/lib/systemd/random-seed exists");
  if (fs.exists("/var/lib/cloud/instance") ||
      (fs.is_directory("/var/lib/cloud/instances") && !fs.list("/var/lib/cloud/instances").empty())) {
    traces.push_back("cloud-init has per-instance state in /var/lib/cloud");
  }
  if (fs.is_directory("/etc/ssh")) {
    for (const std::string& name : fs.list("/etc/ssh")) {
      if (name.rfind("ssh_host_", 0) == 0) {
        traces.push_back("/etc/ssh holds SSH host keys");
        break;
      }
    }
  }
  return traces;
}

OsRelease read_os_release(const Ext4Fs& fs) {
  // os-release(5): /etc/os-release, else /usr/lib/os-release.
  for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
    if (fs.exists(path) && !fs.is_directory(path)) return parse_os_release(fs.read_file(path));
  }
  return {};
}

}  // namespace

std::optional<PasswdIds> find_passwd_ids(std::string_view passwd, std::string_view user) {
  std::istringstream in{std::string(passwd)};
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string_view> fields;
    std::string_view rest = line;
    for (size_t colon; (colon = rest.find(':')) != std::string_view::npos; rest.remove_prefix(colon + 1)) {
      fields.push_back(rest.substr(0, colon));
    }
    fields.push_back(rest);
    if (fields.size() < 4 || fields[0] != user) continue;
    PasswdIds ids;
    auto number = [](std::string_view text, uint32_t& out) {
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
      return ec == std::errc() && end == text.data() + text.size() && !text.empty();
    };
    if (!number(fields[2], ids.uid) || !number(fields[3], ids.gid)) return std::nullopt;
    return ids;
  }
  return std::nullopt;
}

BaseImage inspect_base_image(const std::string& path) {
  BaseImage base;
  base.path = path;
  base.table = read_partition_table(path);
  const std::string shape = describe(base.table);

  // Boot: a FAT filesystem, preferably labelled system-boot; root: ext4, preferably "writable".
  // Labels win over position, as Ubuntu's fstab and cmdline.txt refer to them by label.
  std::optional<Partition> boot, root;
  std::unique_ptr<Ext4Fs> root_fs;  // the root's filesystem, open from its choice to its reading
  std::string boot_problem, root_problem;
  uint64_t root_fs_bytes = 0;
  for (const Partition& p : base.table.partitions) {
    if (p.is_fat_type()) {
      try {
        FatFs fat(path, p.start, p.size, /*writable=*/false);
        if (!boot || ascii_lower(fat.label()) == kBootLabel) boot = p;
      } catch (const Error& e) {
        // Not FAT after all (or larger than its partition); reported if no boot partition is found.
        boot_problem = std::string("; p") + std::to_string(p.number) + ": " + e.what();
      }
    }
    if (p.is_linux_type()) {
      // First the choice, from each filesystem's label alone; the chosen one is read below.
      try {
        auto fs = std::make_unique<Ext4Fs>(path, p.start, /*writable=*/false);
        if (!root || ascii_lower(fs->label()) == kRootLabel) {
          root = p;
          root_fs = std::move(fs);
        }
      } catch (const Error& e) {
        // Not ext4 after all; reported if no root partition is found.
        root_problem = std::string("; p") + std::to_string(p.number) + ": " + e.what();
      }
    }
  }
  // The chosen root is read whole or not at all: what is wrong in it (a file too large to read, a
  // damaged inode) is the image's fault, said as such, never a root taken with half its facts.
  if (root) {
    try {
      const Ext4Fs& fs = *root_fs;
      base.root_block_size = fs.block_size();
      base.root_free_bytes = fs.free_bytes();
      base.root_bigalloc = fs.has_bigalloc();
      base.os = read_os_release(fs);
      base.booted_traces = booted_traces(fs);
      base.dpkg_status = fs.exists(kDpkgStatus) && !fs.is_directory(kDpkgStatus) ? fs.read_file(kDpkgStatus) : "";
      if (fs.exists("/etc/passwd") && !fs.is_directory("/etc/passwd")) {
        base.timesync_user = find_passwd_ids(fs.read_file("/etc/passwd"), "systemd-timesync");
      }
      if (__builtin_mul_overflow(fs.blocks_count(), fs.block_size(), &root_fs_bytes)) root_fs_bytes = UINT64_MAX;
    } catch (const Error& e) {
      throw Error(path + ": the root filesystem (p" + std::to_string(root->number) + "): " + e.what());
    }
  }
  if (!boot) {
    throw Error(path +
                ": no FAT boot partition found (expected one labelled \"system-boot\", as in "
                "Ubuntu's preinstalled Raspberry Pi images); " +
                shape + boot_problem);
  }
  // libext2fs trusts the superblock's block count: writes past the partition's end would land in
  // whatever follows it (or grow the file).
  if (root && root_fs_bytes > root->size) {
    throw Error(path + ": the ext4 filesystem in p" + std::to_string(root->number) + " claims " +
                std::to_string(root_fs_bytes) + " bytes but its partition has " + std::to_string(root->size) + "; " +
                shape);
  }
  if (!root) {
    throw Error(path + ": no ext4 root partition found (expected one labelled \"writable\"); " + shape + root_problem);
  }
  base.boot = *boot;
  base.root = *root;
  FatFs fat(path, base.boot.start, base.boot.size, /*writable=*/false);
  // A file, not a directory: found by its directory entry, its content not read (the kernel's
  // existence is all the os_prefix viability test needs, and it may exceed kMaxWholeFileRead).
  auto is_file = [&](const std::string& file) { return fat.exists(file) && !fat.is_directory(file); };
  try {
    base.boot_layout = resolve_boot_layout(
        [&](const std::string& file) -> std::optional<std::string> {
          if (!is_file(file)) return std::nullopt;
          return fat.read_file(file);
        },
        is_file, base.boot.number);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return base;
}

std::string describe_base(const BaseImage& base) {
  return base.os.describe() + "; boot: " + base.boot_layout.describe();
}

}  // namespace pibake
