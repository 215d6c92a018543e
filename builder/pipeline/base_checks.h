// Checks that the base image's filesystems are clean before anything is copied from it (issue 17,
// kind 2): a base that fsck.fat -n or e2fsck -fn would reject is refused, since pibake's writes
// (freeing a file's chain, allocating from the bitmaps) would make the damage worse.
#pragma once

#include <string>

#include "pipeline/base_image.h"

namespace pibake {

// Runs FatFs::check() on the boot and Ext4Fs::check() on the root filesystem of `base` and throws
// pibake::Error when either finds a problem. The message names `display_name` (the base image as
// the user gave it: a path or URL, never the cache's copy), the partition, the problems, and the
// tool that would reject it (fsck.fat -n, e2fsck -fn). An ext4 with features pibake's writes
// would leave inconsistent (Ext4Fs::unsupported_features: quota, ...) is refused too, naming the
// tune2fs command that removes them.
void check_base_filesystems(const BaseImage& base, const std::string& display_name);

// inspect_base_image(path) then check_base_filesystems(), with every message naming
// `display_name` instead of `path` (which may be the cache's decompressed copy of a download).
BaseImage open_base_image(const std::string& path, const std::string& display_name);

}  // namespace pibake
