// The images each node runs (see images.h).
#include "plan/images.h"

#include "plan/artifacts.h"
#include "spec/compat.h"
#include "util/error.h"

namespace pibake {

ImageReference parse_image_reference(const std::string& reference) {
  auto bad = [&](const std::string& why) {
    return Error("image reference \"" + reference + "\": " + why +
                 " (expected a full reference such as registry.k8s.io/pause:3.10)");
  };
  for (char c : reference)
    if (c <= ' ' || c >= 0x7f) throw bad("holds a character a reference cannot have");
  size_t slash = reference.find('/');
  if (slash == std::string::npos || slash == 0) throw bad("has no registry host");
  ImageReference r;
  r.registry = reference.substr(0, slash);
  std::string rest = reference.substr(slash + 1);
  for (char c : rest)
    if (c >= 'A' && c <= 'Z') throw bad("has upper case in its repository name");
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size() || rest.find('@') != std::string::npos) {
    throw bad("has no tag");
  }
  r.repository = rest.substr(0, colon);
  r.tag = rest.substr(colon + 1);
  if (r.tag.find('/') != std::string::npos) throw bad("has no tag");
  if (r.repository.find("//") != std::string::npos || r.repository.back() == '/')
    throw bad("has an empty path component");
  return r;
}

std::vector<std::string> node_images(const ClusterSpec& spec, bool control_plane) {
  const std::string& repo = spec.kubernetes.image_repository;
  const std::string& version = spec.kubernetes.version;
  const KubernetesMinor& k = kubernetes_minor_settings(kubernetes_minor(version));
  std::vector<std::string> out;
  if (is_hard_way(spec)) return {coredns_image(spec), sandbox_image(spec)};
  if (control_plane) {
    for (const char* component : {"kube-apiserver", "kube-controller-manager", "kube-scheduler"})
      out.push_back(repo + "/" + component + ":" + version);
  }
  out.push_back(repo + "/kube-proxy:" + version);
  if (control_plane) out.push_back(coredns_image(spec));
  out.push_back(sandbox_image(spec));
  if (control_plane) out.push_back(repo + "/etcd:" + std::string(k.etcd));
  out.push_back(std::string(kFlannelImage));
  out.push_back(std::string(kFlannelCniPluginImage));
  return out;
}

std::string coredns_image(const ClusterSpec& spec) {
  const std::string& repo = spec.kubernetes.image_repository;
  const KubernetesMinor& k = kubernetes_minor_settings(kubernetes_minor(spec.kubernetes.version));
  // kubeadm's GetDNSImage: CoreDNS lives in a sub-repository of the default registry only.
  const std::string dns_repo = repo == kDefaultImageRepository ? repo + "/coredns" : repo;
  return dns_repo + "/coredns:" + std::string(k.coredns);
}

uint64_t PulledImage::bytes() const {
  uint64_t n = manifest.size;
  for (const OciBlob& b : blobs) n += b.size;
  return n;
}

std::string image_archive_name(const std::string& reference) {
  std::string name = reference;
  for (char& c : name)
    if (c == '/' || c == ':') c = '_';
  return name + ".tar";
}

}  // namespace pibake
