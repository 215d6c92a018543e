// The files kept in overlays/, dhcp/, netplan/ and firmware/, built into the binary (docs/overlays.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pibake {

struct Resource {
  const char* path;  // relative to the source tree: "overlays/all/etc/hostname.tmpl"
  const char* data;
  std::size_t size;
};

extern const Resource kResources[];  // terminated by {nullptr, nullptr, 0}

// The content of a built-in resource; throws pibake::Error when there is none by that path.
std::string_view resource(std::string_view path);
// Every resource whose path starts with `prefix`, in path order.
std::vector<const Resource*> resources_under(std::string_view prefix);

}  // namespace pibake
