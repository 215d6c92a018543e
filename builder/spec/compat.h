// The compatibility table: which Kubernetes minors pibake knows, until when each is supported,
// what kubeadm of that minor expects (pause image, configuration API), whether it still runs on
// containerd 1.x, and which containerd configuration version each containerd release reads
// natively. Everything version-dependent in pibake looks it up here; docs/versions.md gives the
// source of every value.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace pibake {

// One Kubernetes minor release (1.NN) as pibake builds it.
struct KubernetesMinor {
  int minor = 0;                 // NN of 1.NN
  std::string_view end_of_life;  // YYYY-MM-DD, kubernetes.io/releases (the release's page)
  std::string_view pause;        // kubeadm's constants.PauseVersion: the sandbox image's tag
  std::string_view kubeadm_api;  // the kubeadm configuration API pibake writes for it
  bool containerd_1x = false;    // whether the kubelet of this minor still supports containerd 1.x
  // kubeadm's etcd and CoreDNS image tags for this minor (constants.SupportedEtcdVersion,
  // constants.CoreDNSVersion). pibake writes both into kubeadm's ClusterConfiguration
  // (etcd.local.imageTag, dns.imageTag), so the images on the card are the ones kubeadm runs
  // whatever the patch release (docs/images.md).
  std::string_view etcd;
  std::string_view coredns;
};

// The minors pibake knows, oldest first. Older ones are refused (pibake writes kubeadm's v1beta4
// configuration, which kubeadm reads from 1.31); newer ones are refused unless the spec sets
// kubernetes.allow_unknown_version, and are then built with the newest entry's settings.
inline constexpr std::array<KubernetesMinor, 7> kKubernetesMinors = {{
    {31, "2025-11-11", "3.10", "kubeadm.k8s.io/v1beta4", true, "3.5.24-0", "v1.11.3"},
    {32, "2026-02-28", "3.10", "kubeadm.k8s.io/v1beta4", true, "3.5.24-0", "v1.11.3"},
    {33, "2026-06-28", "3.10", "kubeadm.k8s.io/v1beta4", true, "3.5.21-0", "v1.12.0"},
    {34, "2026-10-27", "3.10.1", "kubeadm.k8s.io/v1beta4", true, "3.6.4-0", "v1.12.1"},
    {35, "2027-02-28", "3.10.1", "kubeadm.k8s.io/v1beta4", true, "3.6.6-0", "v1.13.1"},
    {36, "2027-06-28", "3.10.2", "kubeadm.k8s.io/v1beta4", false, "3.6.6-0", "v1.14.2"},
    {37, "2027-10-28", "3.10.2", "kubeadm.k8s.io/v1beta4", false, "3.6.6-0", "v1.14.2"},
}};

// containerd's configuration version per release (containerd's RELEASES.md, "Daemon
// Configuration"): the newest version a release reads natively; older files are migrated at
// every start. A release reads the entry with the highest `from` not above it.
struct ContainerdConfig {
  int major = 0;
  int minor = 0;  // first containerd release (major.minor) of this config version
  int version = 0;
};
inline constexpr std::array<ContainerdConfig, 3> kContainerdConfigs = {{
    {1, 3, 2},  // config version 2: containerd 1.3 to 1.7
    {2, 0, 3},  // version 3: containerd 2.0 to 2.2 (CRI split into io.containerd.cri.v1.*)
    {2, 3, 4},  // version 4: containerd 2.3 and later (server listeners become plugins)
}};
// The oldest containerd pibake accepts: Kubernetes 1.26 and later speak only CRI v1, which
// containerd has from 1.6.
inline constexpr int kMinContainerdMinor1x = 6;

// Flannel, the CNI pibake applies: its images on the project's own registry (not Docker Hub,
// whose anonymous pull limit the nodes behind the gateway's one address would share), the pair
// flannel-io/flannel's Documentation/kube-flannel.yml of that release names.
inline constexpr std::string_view kFlannelImage = "ghcr.io/flannel-io/flannel:v0.28.9";
inline constexpr std::string_view kFlannelCniPluginImage = "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3";

// The entry for 1.`minor`, or nullptr when pibake does not know it.
const KubernetesMinor* find_kubernetes_minor(int minor);
// The settings to build 1.`minor` with: its entry, or the newest entry for a newer minor (only
// reached with kubernetes.allow_unknown_version). `minor` must not be older than the table.
const KubernetesMinor& kubernetes_minor_settings(int minor);
const KubernetesMinor& newest_kubernetes_minor();

// The minor of a Kubernetes release or channel: "v1.37.1" -> 37, "stable-1.36" -> 36; nullopt
// for "stable" (resolved at build time) and anything that is not one of these forms.
std::optional<int> kubernetes_minor_of(std::string_view version);
// True for the release channels pibake resolves through dl.k8s.io: "stable", "stable-1.NN".
bool is_kubernetes_channel(std::string_view version);

// The configuration version containerd `version` ("2.3.4") reads natively; 0 when it does not
// parse or is older than the table.
int containerd_config_version(std::string_view version);

}  // namespace pibake
