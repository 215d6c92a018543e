// os-release(5) parsing (see os_release.h).
#include "plan/os_release.h"

#include <sstream>

namespace pibake {
namespace {

// The value part of KEY=value as a shell would read it (the subset os-release(5) allows).
std::string unquote(const std::string& raw) {
  std::string out;
  char quote = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (quote == 0 && (c == '"' || c == '\'')) {
      quote = c;
    } else if (quote != 0 && c == quote) {
      quote = 0;
    } else if (c == '\\' && quote != '\'' && i + 1 < raw.size()) {
      out += raw[++i];
    } else if (quote == 0 && (c == ' ' || c == '\t' || c == '#')) {
      break;  // unquoted white space or a comment ends the value
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string OsRelease::describe() const {
  if (id.empty() && version_id.empty() && pretty_name.empty()) return "unknown (no /etc/os-release)";
  std::string out = pretty_name.empty() ? id + " " + version_id : pretty_name;
  out += " (" + id + " " + version_id;
  if (!version_codename.empty()) out += ", " + version_codename;
  return out + ")";
}

OsRelease parse_os_release(std::string_view text) {
  OsRelease os;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    size_t eq = line.find('=', start);
    if (eq == std::string::npos) continue;
    std::string key = line.substr(start, eq - start);
    std::string value = unquote(line.substr(eq + 1));
    if (key == "ID") os.id = value;
    if (key == "VERSION_ID") os.version_id = value;
    if (key == "VERSION_CODENAME") os.version_codename = value;
    if (key == "PRETTY_NAME") os.pretty_name = value;
  }
  return os;
}

}  // namespace pibake
