// Look-ups into the resources built into the binary (see cmake/embed_resources.cmake).
#include "util/resources.h"

#include <algorithm>

#include "util/error.h"

namespace pibake {

std::string_view resource(std::string_view path) {
  for (const Resource* r = kResources; r->path != nullptr; ++r) {
    if (path == r->path) return {r->data, r->size};
  }
  throw Error("internal error: no built-in resource " + std::string(path));
}

std::vector<const Resource*> resources_under(std::string_view prefix) {
  std::vector<const Resource*> out;
  for (const Resource* r = kResources; r->path != nullptr; ++r) {
    if (std::string_view(r->path).substr(0, prefix.size()) == prefix) out.push_back(r);
  }
  std::sort(out.begin(), out.end(),
            [](const Resource* a, const Resource* b) { return std::string_view(a->path) < b->path; });
  return out;
}

}  // namespace pibake
