// Reading release tarballs (libarchive): the members pibake installs, with every entry checked so
// nothing can escape its destination (no absolute paths, no "..", no links or devices).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace pibake {

// Reads the next bytes of the current member into `buf` (at most `size`); 0 at its end. Throws
// pibake::Error on a damaged archive.
using MemberReader = std::function<size_t(char* buf, size_t size)>;

// Calls `fn(relative_path, read, mode)` for each regular file under `prefix` ("bin/" for
// containerd; "" for all); `read` streams the member's content, so memory stays bounded whatever
// the member's size (what `fn` leaves unread is skipped). "./" is stripped; directories are
// skipped. Any entry that is absolute, has a ".." component, or is not a regular file or
// directory makes the whole archive an error (before a single member is handed out, so nothing
// of a bad archive is installed). With `validated` (the caller already ran archive_install_bytes
// on this verified content, as fetch_artifacts does), that first pass over the whole archive is
// skipped: each entry is still checked before it is handed out, so a bad one still throws, but
// members before it have been handed out (decompressing a release tarball costs a second or so).
void for_each_archive_file(const std::string& archive_path, const std::string& prefix,
                           const std::function<void(const std::string&, const MemberReader&, uint32_t)>& fn,
                           bool validated = false);

// Total bytes of the files for_each_archive_file would hand out (validating the archive too).
uint64_t archive_install_bytes(const std::string& archive_path, const std::string& prefix);

}  // namespace pibake
