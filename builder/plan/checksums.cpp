// Parsing sha256sum-format checksum files (see checksums.h).
#include "plan/checksums.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <string_view>

#include "util/text.h"

namespace pibake {

namespace {
// "ubuntu-24.04.10-…" after "ubuntu-24.04.9-…": digits compare as numbers.
bool version_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      // Compared as numbers of any length (std::stoull would throw on 21 digits): without their
      // leading zeros, the shorter is the smaller, then digit by digit.
      std::string_view x(a.data() + i, i2 - i), y(b.data() + j, j2 - j);
      x.remove_prefix(std::min(x.find_first_not_of('0'), x.size()));
      y.remove_prefix(std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}
}  // namespace

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
    if (!best || version_less(best->name, name)) best = ChecksumEntry{name, hex};
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
