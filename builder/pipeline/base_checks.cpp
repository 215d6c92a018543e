// Refusing a base image whose filesystems are not clean (see base_checks.h).
#include "pipeline/base_checks.h"

#include <fmt/format.h>

#include <vector>

#include "image/ext4.h"
#include "image/fat.h"
#include "util/error.h"

namespace pibake {
namespace {

[[noreturn]] void refuse(const std::string& display_name, const Partition& p, const char* fs, const char* tool,
                         const std::vector<std::string>& problems) {
  throw Error(fmt::format(
      "base image {}: its {} filesystem (p{}) is not clean, and pibake would make the damage worse: {}. {} would "
      "reject it too; use a fresh copy of the image",
      display_name, fs, p.number, fmt::join(problems, "; "), tool));
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty() || from == to) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The library's messages name the file they read (maybe the cache's copy): "the image" instead.
std::vector<std::string> without_path(std::vector<std::string> problems, const std::string& path) {
  for (std::string& p : problems) p = replace_all(p, path, "the image");
  return problems;
}

}  // namespace

void check_base_filesystems(const BaseImage& base, const std::string& display_name) {
  {
    FatFs boot(base.path, base.boot.start, base.boot.size, /*writable=*/false);
    std::vector<std::string> problems = without_path(boot.check(), base.path);
    if (!problems.empty()) refuse(display_name, base.boot, "FAT boot", "fsck.fat -n", problems);
  }
  Ext4Fs root(base.path, base.root.start, /*writable=*/false);
  if (std::vector<std::string> features = root.unsupported_features(); !features.empty()) {
    throw Error(fmt::format(
        "base image {}: its ext4 root filesystem (p{}) uses the feature{} {}, which pibake cannot keep consistent "
        "when it writes files (tune2fs -O ^{} removes it, on a copy of the image)",
        display_name, base.root.number, features.size() == 1 ? "" : "s", fmt::join(features, ", "),
        fmt::join(features, ",^")));
  }
  std::vector<std::string> problems = without_path(root.check(), base.path);
  if (!problems.empty()) refuse(display_name, base.root, "ext4 root", "e2fsck -fn", problems);
}

BaseImage open_base_image(const std::string& path, const std::string& display_name) {
  try {
    BaseImage base = inspect_base_image(path);
    check_base_filesystems(base, display_name);
    return base;
  } catch (const Error& e) {
    throw Error(replace_all(e.what(), path, display_name));
  }
}

}  // namespace pibake
