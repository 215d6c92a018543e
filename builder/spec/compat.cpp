// Lookups in the compatibility table (compat.h).
#include "spec/compat.h"

#include <charconv>

namespace pibake {
namespace {

// A decimal number of at most 4 digits, the whole of `s`.
std::optional<int> small_number(std::string_view s) {
  int n = 0;
  if (s.empty() || s.size() > 4) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

// "1.37.1" -> {1, 37, 1}; nullopt unless three dot-separated numbers.
std::optional<std::array<int, 3>> three_numbers(std::string_view v) {
  std::array<int, 3> out{};
  for (int i = 0; i < 3; ++i) {
    size_t dot = i < 2 ? v.find('.') : v.size();
    if (dot == std::string_view::npos) return std::nullopt;
    std::optional<int> n = small_number(v.substr(0, dot));
    if (!n) return std::nullopt;
    out[i] = *n;
    v = i < 2 ? v.substr(dot + 1) : std::string_view();
  }
  return out;
}

constexpr std::string_view kChannel = "stable";
constexpr std::string_view kChannelPrefix = "stable-1.";

}  // namespace

const KubernetesMinor* find_kubernetes_minor(int minor) {
  for (const KubernetesMinor& k : kKubernetesMinors)
    if (k.minor == minor) return &k;
  return nullptr;
}

const KubernetesMinor& newest_kubernetes_minor() { return kKubernetesMinors.back(); }

const KubernetesMinor& kubernetes_minor_settings(int minor) {
  const KubernetesMinor* k = find_kubernetes_minor(minor);
  return k != nullptr ? *k : newest_kubernetes_minor();
}

bool is_kubernetes_channel(std::string_view version) {
  return version == kChannel ||
         (version.starts_with(kChannelPrefix) && small_number(version.substr(kChannelPrefix.size())));
}

std::optional<int> kubernetes_minor_of(std::string_view version) {
  if (version.starts_with(kChannelPrefix)) return small_number(version.substr(kChannelPrefix.size()));
  if (!version.starts_with("v")) return std::nullopt;
  std::optional<std::array<int, 3>> n = three_numbers(version.substr(1));
  if (!n || (*n)[0] != 1) return std::nullopt;
  return (*n)[1];
}

int containerd_config_version(std::string_view version) {
  std::optional<std::array<int, 3>> n = three_numbers(version);
  if (!n) return 0;
  int found = 0;
  for (const ContainerdConfig& c : kContainerdConfigs) {
    if ((*n)[0] > c.major || ((*n)[0] == c.major && (*n)[1] >= c.minor)) found = c.version;
  }
  return found;
}

}  // namespace pibake
