// Versions against the compatibility table (spec/compat.h): the Kubernetes release or channel
// pibake can build, containerd releases the kubelet can use, and the warnings for releases past
// their end of life. Rules listed in docs/spec.md, the data's sources in docs/versions.md.
#include <fmt/format.h>

#include <cstdio>
#include <ctime>

#include "spec/compat.h"
#include "spec/spec_internal.h"

namespace pibake::spec_detail {
namespace {

std::string known_range() {
  return fmt::format("1.{} to 1.{}", kKubernetesMinors.front().minor, newest_kubernetes_minor().minor);
}

// The minor of kubernetes.version, reporting a malformed or unsupported one; nullopt when there
// is none to check ("stable", resolved at build time, or a reported problem).
std::optional<int> check_kubernetes_version(const ClusterSpec& spec, Problems& out) {
  const KubernetesSpec& k = spec.kubernetes;
  const char* field = "kubernetes.version";
  if (k.version == "stable") return std::nullopt;
  std::optional<int> minor = kubernetes_minor_of(k.version);
  if (!minor) {
    if (!starts_with(k.version, "v") && kubernetes_minor_of("v" + k.version)) {
      out.push_back({field, fmt::format("{} is not a Kubernetes version: it needs the leading v (v{})",
                                        quote(k.version), k.version)});
    } else {
      out.push_back(
          {field, quote(k.version) + " is not a Kubernetes release like v1.37.1, nor a channel (stable, stable-1.37)"});
    }
    return std::nullopt;
  }
  if (*minor < kKubernetesMinors.front().minor) {
    out.push_back({field, fmt::format("{} is too old: pibake supports Kubernetes v1.{} and later (kubeadm's v1beta4 "
                                      "configuration)",
                                      quote(k.version), kKubernetesMinors.front().minor)});
    return std::nullopt;
  }
  if (find_kubernetes_minor(*minor) == nullptr && !k.allow_unknown_version) {
    int newest = newest_kubernetes_minor().minor;
    out.push_back({field, fmt::format("{} is newer than the Kubernetes releases pibake knows ({}): its pause image, "
                                      "kubeadm configuration API and containerd requirements are not checked. Use "
                                      "v1.{}.x or stable-1.{}, or set kubernetes.allow_unknown_version: true to "
                                      "build it with 1.{}'s settings",
                                      quote(k.version), known_range(), newest, newest, newest)});
    return std::nullopt;
  }
  return minor;
}

void check_containerd(const ClusterSpec& spec, std::optional<int> minor, Problems& out) {
  const std::string& v = spec.containerd.version;
  int config = containerd_config_version(v);
  if (!is_version(v)) return;  // reported by check_component
  int major = 0, ctd_minor = 0;
  std::sscanf(v.c_str(), "%d.%d", &major, &ctd_minor);
  if (config == 0 || (major == 1 && ctd_minor < kMinContainerdMinor1x)) {
    out.push_back({"containerd.version", fmt::format("{} is too old: Kubernetes 1.26 and later speak only CRI v1, "
                                                     "which containerd has from 1.{}",
                                                     quote(v), kMinContainerdMinor1x)});
    return;
  }
  if (major == 1 && minor && !kubernetes_minor_settings(*minor).containerd_1x) {
    int last = 0;
    for (const KubernetesMinor& k : kKubernetesMinors)
      if (k.containerd_1x) last = k.minor;
    out.push_back({"containerd.version",
                   fmt::format("{} cannot run Kubernetes {}: 1.{} was the last Kubernetes release that supports "
                               "containerd 1.x; use containerd 2.x ({} is the default)",
                               quote(v), spec.kubernetes.version, last, default_spec().containerd.version)});
  }
}

}  // namespace

void validate_versions(const ClusterSpec& spec, Problems& out) {
  std::optional<int> minor = check_kubernetes_version(spec, out);
  check_containerd(spec, minor, out);
}

}  // namespace pibake::spec_detail

namespace pibake {

std::vector<Diagnostic> version_warnings(const ClusterSpec& spec, std::string_view today) {
  std::vector<Diagnostic> out;
  const KubernetesSpec& k = spec.kubernetes;
  std::optional<int> minor = kubernetes_minor_of(k.version);
  if (!minor) return out;
  const KubernetesMinor* known = find_kubernetes_minor(*minor);
  if (known != nullptr && known->end_of_life <= today) {
    out.push_back({"kubernetes.version",
                   fmt::format("Kubernetes 1.{} reached its end of life on {} and gets no more security fixes: "
                               "{} (the default) is current",
                               *minor, known->end_of_life, default_spec().kubernetes.version)});
  } else if (known == nullptr && k.allow_unknown_version && *minor > newest_kubernetes_minor().minor) {
    const KubernetesMinor& used = newest_kubernetes_minor();
    out.push_back(
        {"kubernetes.version", fmt::format("{} is not known to pibake: built with Kubernetes 1.{}'s settings "
                                           "(pause {}, {}) as kubernetes.allow_unknown_version asks",
                                           spec_detail::quote(k.version), used.minor, used.pause, used.kubeadm_api)});
  }
  return out;
}

std::string utc_date_today() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

}  // namespace pibake
