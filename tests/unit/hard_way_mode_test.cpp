// Unit tests for kubernetes.mode: hard-way (issue 14): the spec's rules, the artifacts, the images
// and the pod ranges; docs/hard-way.md.
#include <algorithm>

#include "plan/artifacts.h"
#include "plan/images.h"
#include "spec_test_support.h"

namespace pibake {
namespace {

ClusterSpec hard_way_spec(const std::string& extra = "") {
  LoadResult r = load_spec_text("kubernetes: {mode: hard-way}\n" + extra, "cluster.yaml");
  INFO(r.problems.size());
  return r.spec;
}

TEST_CASE("kubernetes.mode is kubeadm or hard-way and hard-way defaults to the bridge CNI", "[hard-way]") {
  LoadResult kubeadm = load_spec_text("", "cluster.yaml");
  CHECK(kubeadm.spec.kubernetes.mode == "kubeadm");
  CHECK_FALSE(is_hard_way(kubeadm.spec));
  CHECK(kubeadm.spec.kubernetes.cni == "flannel-host-gw");
  LoadResult hard = load_spec_text("kubernetes: {mode: hard-way}\n", "cluster.yaml");
  CHECK(hard.problems.empty());
  CHECK(is_hard_way(hard.spec));
  CHECK(hard.spec.kubernetes.cni == "bridge");
  CHECK(problems_of("kubernetes: {mode: kubeadmin}\n") ==
        Lines{"cluster.yaml:1:20: kubernetes.mode: \"kubeadmin\" is not a mode: use kubeadm or hard-way"});
  CHECK(problems_of("kubernetes: {mode: hard-way, cni: flannel-vxlan}\n") ==
        Lines{"cluster.yaml:1:35: kubernetes.cni: \"flannel-vxlan\" is not for kubernetes.mode: hard-way, which "
              "routes pods itself (a /24 per node, static routes): use bridge or leave it out"});
  CHECK(problems_of("kubernetes: {cni: bridge}\n") ==
        Lines{"cluster.yaml:1:19: kubernetes.cni: \"bridge\" is not supported: use flannel-host-gw or flannel-vxlan "
              "(bridge is kubernetes.mode: hard-way's)"});
}

TEST_CASE("The hard way has one control plane reached at its own address", "[hard-way]") {
  CHECK(problems_of("kubernetes: {mode: hard-way}\nnodes: {count: 4, control_planes: 3}\n") ==
        Lines{"cluster.yaml:2:35: nodes.control_planes: kubernetes.mode: hard-way runs one control plane, this "
              "spec has 3 (node-1, node-2, node-3): nothing on a hard-way node joins a second one"});
  CHECK(problems_of("kubernetes: {mode: hard-way, api_vip: 10.0.0.254}\n") ==
        Lines{"cluster.yaml:1:39: kubernetes.api_vip: kubernetes.mode: hard-way has one control plane, reached at "
              "its own address: remove api_vip"});
}

TEST_CASE("etcd.version is the hard way's and defaults to kubeadm's etcd for the minor", "[hard-way]") {
  CHECK(etcd_version(hard_way_spec()) == "3.6.6");
  CHECK(etcd_version(hard_way_spec("etcd: {version: 3.6.7}\n")) == "3.6.7");
  CHECK(problems_of("etcd: {version: 3.6.7}\n") ==
        Lines{"cluster.yaml:1:17: etcd.version: is for kubernetes.mode: hard-way only: kubeadm runs the etcd image "
              "of its Kubernetes release"});
  CHECK(problems_of("kubernetes: {mode: hard-way}\netcd: {version: v3.6.7}\n") ==
        Lines{"cluster.yaml:2:17: etcd.version: \"v3.6.7\" has a leading \"v\": write 3.6.7 (the release tag "
              "without the v)"});
}

TEST_CASE("Each node's pod range is the /24 numbered by its address and stays with the address", "[hard-way]") {
  ClusterSpec spec = hard_way_spec();
  REQUIRE(spec.nodes.size() == 4);
  CHECK(hard_way_pod_range(spec, spec.nodes[0])->str() == "10.244.1.0/24");
  CHECK(hard_way_pod_range(spec, spec.nodes[3])->str() == "10.244.4.0/24");
  // Reordering or leaving out nodes changes nothing: the range follows the address.
  NodeSpec third = spec.nodes[2];
  spec.nodes.erase(spec.nodes.begin() + 1);
  CHECK(hard_way_pod_range(spec, third)->str() == "10.244.3.0/24");
  // A /25 has no whole /24; a /22 has four, numbered 0 to 3: none for address .4.
  spec.kubernetes.pod_cidr = "10.244.0.0/25";
  CHECK_FALSE(hard_way_pod_range(spec, spec.nodes[0]));
  CHECK(problems_of("kubernetes: {mode: hard-way, pod_cidr: 10.244.0.0/22}\n") ==
        Lines{"cluster.yaml:1:40: kubernetes.pod_cidr: \"10.244.0.0/22\" holds 4 /24 ranges (numbered from 0), and "
              "kubernetes.mode: hard-way gives each node the one its address numbers in network.subnet: node-4 "
              "(10.0.0.4) needs number 4; use a pod CIDR with more /24s"});
}

TEST_CASE("Hard-way artifacts have no kubeadm and keep the server binaries and etcd on the control plane",
          "[hard-way]") {
  std::vector<std::string> names, control_plane_only;
  for (const ArtifactSource& a : artifact_sources(hard_way_spec())) {
    names.push_back(a.name);
    if (a.control_plane_only) control_plane_only.push_back(a.name);
    if (a.name == "etcd") {
      CHECK(a.url == "https://github.com/etcd-io/etcd/releases/download/v3.6.6/etcd-v3.6.6-linux-arm64.tar.gz");
      CHECK(a.checksum_url == "https://github.com/etcd-io/etcd/releases/download/v3.6.6/SHA256SUMS");
      CHECK(a.archive);
      CHECK(a.member_prefix == "etcd-v3.6.6-linux-arm64/");
      CHECK(a.install_dir == kEtcdInstallDir);
    }
    if (a.name == "kube-apiserver") {
      CHECK(a.url == "https://dl.k8s.io/release/v1.37.1/bin/linux/arm64/kube-apiserver");
    }
  }
  CHECK(std::find(names.begin(), names.end(), "kubeadm") == names.end());
  CHECK(names == Lines{"kubelet", "kube-proxy", "kubectl", "kube-apiserver", "kube-controller-manager",
                       "kube-scheduler", "etcd", "crictl", "containerd", "runc", "cni-plugins"});
  CHECK(control_plane_only == Lines{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"});
  // kubeadm mode is unchanged.
  std::vector<std::string> kubeadm;
  for (const ArtifactSource& a : artifact_sources(load_spec_text("", "c.yaml").spec)) kubeadm.push_back(a.name);
  CHECK(kubeadm == Lines{"kubelet", "kubeadm", "kubectl", "crictl", "containerd", "runc", "cni-plugins"});
}

TEST_CASE("Hard-way nodes carry only the pause and CoreDNS images", "[hard-way]") {
  const ClusterSpec spec = hard_way_spec();
  const Lines want{"registry.k8s.io/coredns/coredns:v1.14.2", "registry.k8s.io/pause:3.10.2"};
  CHECK(node_images(spec, true) == want);
  CHECK(node_images(spec, false) == want);
  CHECK(coredns_image(spec) == "registry.k8s.io/coredns/coredns:v1.14.2");
}

}  // namespace
}  // namespace pibake
