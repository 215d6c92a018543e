// `mirrors:` rewriting: every download URL passes through it (longest matching prefix wins).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pibake {

std::string apply_mirrors(const std::string& url, const std::vector<std::pair<std::string, std::string>>& mirrors);

// A local source: an absolute path or a file:// URL (a mirror may point at a directory).
bool is_local_source(const std::string& source);
std::string local_path(const std::string& source);  // strips file://

}  // namespace pibake
