// Checksum files as releases publish them: SHA256SUMS ("<hex> *name" or "<hex>  name" per line),
// and single-asset files (".sha256": the hex alone, or "<hex>  name").
#pragma once

#include <optional>
#include <string>

namespace pibake {

// The lower-case hex sha256 listed for `file_name` (matched on the base name), if any.
// A file holding exactly one bare hash matches any name.
std::optional<std::string> find_sha256(const std::string& text, const std::string& file_name);

bool is_sha256_hex(const std::string& s);

struct ChecksumEntry {
  std::string name;
  std::string sha256;
};
// The entry with the greatest name among those ending in `suffix` ("...-preinstalled-server-arm64
// +raspi.img.xz"): the newest point release of a release folder.
std::optional<ChecksumEntry> find_newest_with_suffix(const std::string& text, const std::string& suffix);

}  // namespace pibake
