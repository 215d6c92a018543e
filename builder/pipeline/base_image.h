// Preparing the base image: find its boot (FAT "system-boot") and root (ext4 "writable")
// partitions and check they are what pibake can write, before any output is created.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/partitions.h"
#include "plan/boot_config.h"
#include "plan/os_release.h"

namespace pibake {

// A user's uid and primary gid, as passwd(5) gives them.
struct PasswdIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// The entry for `user` in passwd(5) text (name:password:UID:GID:GECOS:home:shell per line);
// nullopt when there is none or its UID/GID are not numbers. Never throws.
std::optional<PasswdIds> find_passwd_ids(std::string_view passwd, std::string_view user);

struct BaseImage {
  std::string path;
  PartitionTable table;
  Partition boot;
  Partition root;
  uint64_t root_block_size = 4096;
  uint64_t root_free_bytes = 0;
  bool root_bigalloc = false;  // resize2fs cannot grow it safely: pibake refuses to grow it
  OsRelease os;                // from the root's /etc/os-release (or /usr/lib/os-release)
  BootLayout boot_layout;      // from system-boot's config.txt and autoboot.txt
  std::string dpkg_status;     // the root's /var/lib/dpkg/status (empty when absent): what is installed
  // The systemd-timesync user's uid and primary gid in the root's /etc/passwd; absent when the base
  // has no such user (Ubuntu 25.10 and later ship chrony instead of systemd-timesyncd).
  std::optional<PasswdIds> timesync_user;
  // Traces of an earlier boot that would give every node the same identity ("/etc/machine-id
  // is set", ...); empty for a base that never booted. pibake resets them on every node.
  std::vector<std::string> booted_traces;
};

// Reads the partition table, opens both filesystems read-only, and reads the release and the boot
// layout. Throws pibake::Error saying what was expected and what was found when the image is not
// of the Ubuntu raspi shape, or when no kernel command line can be found (resolve_boot_layout).
BaseImage inspect_base_image(const std::string& path);

// One line for the build summary, --dry-run and inspect: "Ubuntu 26.04 LTS (...); boot: A/B ...".
std::string describe_base(const BaseImage& base);

}  // namespace pibake
