// fetch, for a Kubernetes channel: kubernetes.version "stable" or "stable-1.NN" becomes the
// release dl.k8s.io names in release/stable.txt or release/stable-1.NN.txt at the first build,
// and is pinned in the lock file from then on (docs/versions.md).
#pragma once

#include <string>
#include <string_view>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/artifacts.h"
#include "spec/spec.h"

namespace pibake {

// The lock file's entry for a resolved channel: version = the release, url = the channel file.
inline constexpr const char* kKubernetesLockName = "kubernetes";

// "stable-1.37" -> "https://dl.k8s.io/release/stable-1.37.txt" (before mirrors).
std::string kubernetes_channel_url(std::string_view channel);

// The release a channel file names: its first line, trimmed, when it is a release (vX.Y.Z) of the
// channel's minor ("stable-1.37" needs v1.37.*); nullopt otherwise.
std::optional<std::string> parse_channel_file(std::string_view text, std::string_view channel);

// spec.kubernetes.version as a release. A release is returned as it is. A channel is resolved:
// the lock's "kubernetes" entry when it was resolved from the same channel file (a different
// channel is refused, saying how to change it), else the channel file read through mirrors
// (afresh: an earlier cached copy is not reused, except with `offline`), then pinned in `lock`
// when it is given. Throws pibake::Error naming the URL when the file cannot be read or names no
// release of the channel.
std::string resolve_kubernetes_version(const ClusterSpec& spec, LockFile* lock, Cache& cache, Fetcher& fetcher,
                                       bool offline);

}  // namespace pibake
