// Resolving a Kubernetes channel to a release (see resolve_version.h).
#include "pipeline/resolve_version.h"

#include <fmt/format.h>

#include "plan/mirrors.h"
#include "spec/compat.h"
#include "util/error.h"
#include "util/sha256.h"

namespace pibake {

std::string kubernetes_channel_url(std::string_view channel) {
  return fmt::format("https://dl.k8s.io/release/{}.txt", channel);
}

std::optional<std::string> parse_channel_file(std::string_view text, std::string_view channel) {
  std::string_view line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  std::optional<int> minor = kubernetes_minor_of(line);
  if (!minor || is_kubernetes_channel(line)) return std::nullopt;
  std::optional<int> wanted = kubernetes_minor_of(channel);
  if (wanted && *wanted != *minor) return std::nullopt;
  return std::string(line);
}

std::string resolve_kubernetes_version(const ClusterSpec& spec, LockFile* lock, Cache& cache, Fetcher& fetcher,
                                       bool offline) {
  const std::string& channel = spec.kubernetes.version;
  if (!is_kubernetes_channel(channel)) return channel;
  const std::string url = kubernetes_channel_url(channel);
  if (const LockedArtifact* pinned = lock ? lock->find(kKubernetesLockName) : nullptr) {
    if (pinned->url != url) {
      throw Error(fmt::format(
          "the lock file pins Kubernetes {} (from {}) but the spec asks for {}: the running cluster was built with the "
          "pinned one. To change it, remove the \"{}\" entry and those of kubelet, kubeadm, kubectl and crictl from "
          "pibake-state/lock.yaml and rebuild every node",
          pinned->version, pinned->url, channel, kKubernetesLockName));
    }
    return pinned->version;
  }
  const std::string from = apply_mirrors(url, spec.mirrors);
  // A channel moves: a copy cached by an earlier resolution (another cluster) would be stale.
  if (!offline) cache.drop_text(from);
  std::string text = cache.get_text(fetcher, from, offline, "the Kubernetes release channel " + channel,
                                    [](const std::string&) { return true; });  // parsed below
  std::optional<std::string> version = parse_channel_file(text, channel);
  if (!version) {
    cache.drop_text(from);
    std::string first = text.substr(0, std::min(text.find('\n'), size_t{60}));
    throw Error(
        fmt::format("{} names no Kubernetes release of {} (its first line is \"{}\"; not kept)", from, channel, first));
  }
  if (lock != nullptr) lock->artifacts.push_back({kKubernetesLockName, *version, url, sha256_hex(text)});
  return *version;
}

}  // namespace pibake
