// Reading small whole files (lock file, checksum lists, kept kubeconfigs, /proc/self/mounts), and
// the last component of a path or URL.
#pragma once

#include <string>
#include <string_view>

namespace pibake {

// The whole file; throws pibake::Error naming the path when it cannot be opened or read.
std::string read_file(const std::string& path);
// Same, but a file that does not exist is `false` rather than an error.
bool read_file_if_exists(const std::string& path, std::string& out);

// "a/b/c.img" -> "c.img"; "https://h/x/y.tgz" -> "y.tgz"; a name without '/' is itself.
std::string base_name(std::string_view path);

}  // namespace pibake
