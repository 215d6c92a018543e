// The upstream artifacts a cluster needs (Kubernetes binaries, containerd, runc, CNI plugins,
// crictl), where they come from and where they go in the image: pure data from the spec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/packages.h"
#include "spec/spec.h"

namespace pibake {

struct ArtifactSource {
  std::string name;           // "kubelet", "containerd", ...: the lock file's key
  std::string version;        // as the spec names it ("v1.34.2", "2.1.5")
  std::string url;            // upstream URL (mirrors are applied when fetching)
  std::string checksum_url;   // the release's checksum file for it
  bool archive = false;       // a .tar.gz whose members are installed
  std::string install_dir;    // where the binary, or the archive's selected members, go
  std::string member_prefix;  // archive members installed: those under this prefix ("bin/"); "" = all
  bool control_plane_only = false;  // installed on control planes only (hard-way's server binaries, etcd)
};

// Every artifact for the spec, in a fixed order. kubeadm mode: kubelet, kubeadm, kubectl, crictl,
// containerd, runc, the CNI plugins. Hard-way mode (docs/hard-way.md): no kubeadm; kubelet,
// kube-proxy, kubectl on every node, kube-apiserver, kube-controller-manager, kube-scheduler and
// etcd's release tarball (etcd_version(): extracted into kEtcdInstallDir) on the control plane.
std::vector<ArtifactSource> artifact_sources(const ClusterSpec& spec);

// Where a hard-way control plane gets etcd's release tarball (etcd, etcdctl, etcdutl and its
// READMEs, as the release lays them out); /usr/local/bin/etcd* link into it.
inline constexpr const char* kEtcdInstallDir = "/opt/etcd";

// The pause (sandbox) image kubeadm pulls for this Kubernetes version (the compatibility table's
// pause tag for its minor, spec/compat.h): containerd must use the same one, or kubeadm's
// preflight warns and pods wait for a second pull. The version must be a resolved release.
std::string sandbox_image(const ClusterSpec& spec);

// "v1.34.2" -> 34; 0 when the version does not parse.
int kubernetes_minor(const std::string& version);

// An artifact fetched and verified: what the plan installs from.
struct ResolvedArtifact {
  ArtifactSource source;
  std::string sha256;
  std::string path;            // the verified blob in the cache
  uint64_t install_bytes = 0;  // bytes it adds to the root filesystem
};

// One resolved artifact, as the lock file records it.
struct LockedArtifact {
  std::string name;
  std::string version;
  std::string url;
  std::string sha256;
};

// One container image as the lock file pins it (docs/images.md): later builds pull the linux/arm64
// manifest by this digest, so a regenerated node gets the same bytes even if the tag moved.
struct LockedImage {
  std::string reference;        // "registry.k8s.io/pause:3.10"
  std::string index_digest;     // "sha256:…" of the multi-platform index; "" when there was none
  std::string manifest_digest;  // "sha256:…" of the linux/arm64 image manifest
};

struct LockFile {
  std::vector<LockedArtifact> artifacts;
  std::vector<LockedImage> images;
  const LockedArtifact* find(const std::string& name) const;
  const LockedImage* find_image(const std::string& reference) const;
  // First-boot .debs (docs/packages.md): every package once, and each set's closure by name.
  std::vector<LockedPackage> packages;
  std::vector<LockedPackageSet> package_sets;
  const LockedPackage* find_package(const std::string& name) const;
  const LockedPackageSet* find_package_set(const std::string& name) const;
};

// lock.yaml in the state dir. parse_lock throws pibake::Error naming `display_path` on bad input.
LockFile parse_lock(const std::string& text, const std::string& display_path);
std::string render_lock(const LockFile& lock);

}  // namespace pibake
