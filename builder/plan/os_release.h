// The operating system release of a base image, from its /etc/os-release (os-release(5)).
#pragma once

#include <string>
#include <string_view>

namespace pibake {

// The fields pibake reads. Empty when the file does not set them.
struct OsRelease {
  std::string id;                // "ubuntu"
  std::string version_id;        // "26.04"
  std::string version_codename;  // "resolute"
  std::string pretty_name;       // "Ubuntu 26.04 LTS"
  // "Ubuntu 26.04 LTS (ubuntu 26.04, resolute)", or "unknown (no /etc/os-release)" when empty.
  std::string describe() const;
};

// Parses os-release(5) text: newline-separated shell-style assignments KEY=value, values
// optionally in double or single quotes, backslash escapes of $ " \ ` inside double quotes,
// '#' comment lines and blank lines ignored, unknown keys ignored. Never throws: a line that
// is not an assignment is skipped, as systemd's parser does.
OsRelease parse_os_release(std::string_view text);

}  // namespace pibake
