// The container images a node's first boot runs (issue 12): kubeadm's list for the Kubernetes
// version plus the CNI's, per node role, and how an image reference is taken apart. Pure data
// from the spec (docs/images.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spec/spec.h"

namespace pibake {

// kubeadm's default imageRepository (kubeadm's DefaultImageRepository), the spec's default.
inline constexpr const char* kDefaultImageRepository = "registry.k8s.io";

// An image reference "registry.k8s.io/coredns/coredns:v1.12.0" taken apart as the distribution
// spec and containerd name it: the registry host (with its port), the repository within it, and
// the tag. References are always fully qualified (a registry host) and tagged.
struct ImageReference {
  std::string registry;    // "registry.k8s.io", "127.0.0.1:5000"
  std::string repository;  // "coredns/coredns"
  std::string tag;         // "v1.12.0"
  std::string str() const { return registry + "/" + repository + ":" + tag; }
};

// Parses "HOST[:PORT]/REPO[/...]:TAG". Throws pibake::Error naming `reference` when it has no
// registry host, no repository or no tag, or holds characters the distribution spec does not
// allow in a repository name (upper case, white space).
ImageReference parse_image_reference(const std::string& reference);

// Every image the first boot of a node with this role runs, in a fixed order, as full references:
// - the control plane (kubeadm init): kubeadm's `kubeadm config images list` for
//   spec.kubernetes.version under spec.kubernetes.image_repository: kube-apiserver,
//   kube-controller-manager, kube-scheduler, kube-proxy (tag = the Kubernetes version), CoreDNS
//   (under "<repository>/coredns" for the default registry.k8s.io, "<repository>" otherwise, as
//   kubeadm's GetDNSImage does), pause and etcd, their tags from the compatibility table
//   (spec/compat.h, the same tags the kubeadm configuration pins);
// - a worker: only pause (every pod sandbox) and kube-proxy (a DaemonSet on every node);
// - every node: the CNI's images (Flannel's daemon and its CNI plugin installer, compat.h).
// In hard-way mode (docs/hard-way.md) the control plane and kube-proxy run as services from
// binaries and pods need no CNI image: every node gets pause and CoreDNS (a Deployment the
// scheduler may place on any node), whatever its role.
// The version must be a resolved release ("v1.37.1"), not a channel.
std::vector<std::string> node_images(const ClusterSpec& spec, bool control_plane);

// CoreDNS's image for the spec as kubeadm's GetDNSImage names it: "<repository>/coredns/coredns:<tag>"
// on the default registry.k8s.io, "<repository>/coredns:<tag>" on another; the tag from the
// compatibility table for the Kubernetes minor. The version must be a resolved release.
std::string coredns_image(const ClusterSpec& spec);

// One blob of a pulled image (OCI image spec, "Descriptor"), verified in the cache.
struct OciBlob {
  std::string media_type;  // "application/vnd.oci.image.layer.v1.tar+gzip", ...
  std::string digest;      // "sha256:<64 hex>"
  uint64_t size = 0;       // bytes
  std::string path;        // the verified file in the cache (sha256/<hex>)
};

// An image pulled for linux/arm64: its manifest and every blob it names, all in the cache.
struct PulledImage {
  std::string reference;       // as the nodes know it: "registry.k8s.io/pause:3.10"
  std::string index_digest;    // the multi-platform index's digest; "" when the tag named a manifest
  OciBlob manifest;            // the linux/arm64 image manifest
  std::vector<OciBlob> blobs;  // its config, then its layers, in the manifest's order
  uint64_t bytes() const;      // manifest + config + layers
};

// One image's OCI layout archive (codec/oci_archive.h), made from the cache, for the plan.
struct ImageArchive {
  std::string reference;  // "registry.k8s.io/pause:3.10"
  std::string path;       // the archive, kept in the cache
  std::string sha256;     // of the archive
  uint64_t size = 0;      // bytes
};

// Where first boot finds the archives to import (overlays/all/usr/local/sbin/pibake-firstboot.tmpl).
inline constexpr const char* kImageArchiveDir = "/var/lib/pibake/images";

// The archive's file name on the card: the reference with '/' and ':' as '_'
// ("registry.k8s.io_pause_3.10.tar").
std::string image_archive_name(const std::string& reference);

}  // namespace pibake
