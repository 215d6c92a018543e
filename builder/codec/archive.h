// Reading release tarballs (libarchive): the members pibake installs, with every entry checked so
// nothing can escape its destination (no absolute paths, no "..", no links or devices).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace pibake {

// Calls `fn(relative_path, content, mode)` for each regular file under `prefix` ("bin/" for
// containerd; "" for all). "./" is stripped; directories are skipped. Any entry that is absolute,
// has a ".." component, or is not a regular file or directory makes the whole archive an error
// (before a single member is handed out, so nothing of a bad archive is installed).
void for_each_archive_file(const std::string& archive_path, const std::string& prefix,
                           const std::function<void(const std::string&, std::string_view, uint32_t)>& fn);

// Total bytes of the files for_each_archive_file would hand out (validating the archive too).
uint64_t archive_install_bytes(const std::string& archive_path, const std::string& prefix);

}  // namespace pibake
