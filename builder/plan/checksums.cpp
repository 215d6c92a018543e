// Parsing sha256sum-format checksum files (see checksums.h).
#include "plan/checksums.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <string_view>

#include "util/text.h"

namespace pibake {


bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::optional<ChecksumEntry> find_newest_with_suffix(const std::string& text, const std::string& suffix) {
  std::istringstream in(text);
  std::string line;
  std::optional<ChecksumEntry> best;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string hex = line.substr(0, line.find_first_of(" \t"));
    if (!is_sha256_hex(hex) || hex.size() >= line.size()) continue;
    std::string name = line.substr(line.find_first_not_of(" \t", hex.size()) == std::string::npos
                                       ? line.size()
                                       : line.find_first_not_of(" \t", hex.size()));
    if (!name.empty() && name[0] == '*') name.erase(0, 1);
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    hex = ascii_lower(hex);
    if (!best || natural_less(best->name, name)) best = ChecksumEntry{name, hex};
  }
  return best;
}

std::optional<std::string> find_sha256(const std::string& text, const std::string& file_name) {
  std::istringstream in(text);
  std::string line;
  std::optional<std::string> bare;
  int lines = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    ++lines;
    std::string hex = line.substr(0, line.find_first_of(" \t"));
    if (!is_sha256_hex(hex)) continue;
    hex = ascii_lower(hex);
    std::string rest = hex.size() < line.size() ? line.substr(hex.size()) : "";
    size_t start = rest.find_first_not_of(" \t");
    if (start == std::string::npos) {
      bare = hex;
      continue;
    }
    std::string name = rest.substr(start);
    if (!name.empty() && name[0] == '*') name.erase(0, 1);  // binary-mode marker
    if (name.rfind("./", 0) == 0) name.erase(0, 2);
    std::string base = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
    if (name == file_name || base == file_name) return hex;
  }
  if (bare && lines == 1) return bare;
  return std::nullopt;
}

}  // namespace pibake
