// Mirror prefix rewriting (see mirrors.h).
#include "plan/mirrors.h"

namespace pibake {

std::string apply_mirrors(const std::string& url, const std::vector<std::pair<std::string, std::string>>& mirrors) {
  const std::pair<std::string, std::string>* best = nullptr;
  for (const auto& m : mirrors) {
    if (url.compare(0, m.first.size(), m.first) == 0 && (best == nullptr || m.first.size() > best->first.size())) {
      best = &m;
    }
  }
  return best ? best->second + url.substr(best->first.size()) : url;
}

bool is_local_source(const std::string& source) {
  return source.rfind("file://", 0) == 0 || (!source.empty() && source[0] == '/') ||
         source.find("://") == std::string::npos;
}

std::string local_path(const std::string& source) {
  return source.rfind("file://", 0) == 0 ? source.substr(7) : source;
}

}  // namespace pibake
