// The images each node's first boot runs (plan/images.h, issue 12 item 2): kubeadm's list per
// supported minor, workers' subset, and the agreement with containerd's sandbox image and
// kubeadm's configuration.
#include <catch2/catch.hpp>

#include <algorithm>

#include "plan/images.h"
#include "plan/plan.h"
#include "spec/compat.h"
#include "util/error.h"

using namespace pibake;

namespace {
using Images = std::vector<std::string>;

std::string root_file(const NodePlan& n, const std::string& path) {
  for (const FileOp& op : n.ops)
    if (op.fs == Fs::kRoot && op.path == path) return op.content;
  FAIL("no " << path << " in the plan of " << n.node.name);
  return "";
}
}  // namespace

TEST_CASE("node_images: kubeadm's list per supported minor, under the image repository", "[images]") {
  // What `kubeadm config images list --kubernetes-version vX` prints for the default repository,
  // with the etcd and CoreDNS tags of kubeadm's constants.go for that minor (docs/images.md).
  struct Want {
    int minor;
    const char* pause;
    const char* etcd;
    const char* coredns;
  };
  const Want wants[] = {{31, "3.10", "3.5.24-0", "v1.11.3"},  {32, "3.10", "3.5.24-0", "v1.11.3"},
                        {33, "3.10", "3.5.21-0", "v1.12.0"},  {34, "3.10.1", "3.6.4-0", "v1.12.1"},
                        {35, "3.10.1", "3.6.6-0", "v1.13.1"}, {36, "3.10.2", "3.6.6-0", "v1.14.2"},
                        {37, "3.10.2", "3.6.6-0", "v1.14.2"}};
  REQUIRE(std::size(wants) == kKubernetesMinors.size());
  for (const Want& w : wants) {
    ClusterSpec spec = default_spec();
    spec.kubernetes.version = "v1." + std::to_string(w.minor) + ".3";
    const std::string v = spec.kubernetes.version;
    INFO(v);
    CHECK(node_images(spec, true) ==
          Images{"registry.k8s.io/kube-apiserver:" + v, "registry.k8s.io/kube-controller-manager:" + v,
                 "registry.k8s.io/kube-scheduler:" + v, "registry.k8s.io/kube-proxy:" + v,
                 std::string("registry.k8s.io/coredns/coredns:") + w.coredns,
                 std::string("registry.k8s.io/pause:") + w.pause, std::string("registry.k8s.io/etcd:") + w.etcd,
                 "ghcr.io/flannel-io/flannel:v0.28.9", "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"});
    // Workers: pause, kube-proxy and the CNI; no control-plane image.
    CHECK(node_images(spec, false) ==
          Images{"registry.k8s.io/kube-proxy:" + v, std::string("registry.k8s.io/pause:") + w.pause,
                 "ghcr.io/flannel-io/flannel:v0.28.9", "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"});
  }
}

TEST_CASE("node_images: a custom repository holds CoreDNS at its top level, as kubeadm's GetDNSImage", "[images]") {
  ClusterSpec spec = default_spec();
  spec.kubernetes.version = "v1.37.1";
  spec.kubernetes.image_repository = "mirror.example:5000/k8s";
  Images cp = node_images(spec, true);
  CHECK(std::count(cp.begin(), cp.end(), "mirror.example:5000/k8s/coredns:v1.14.2") == 1);
  CHECK(std::count(cp.begin(), cp.end(), "mirror.example:5000/k8s/pause:3.10.2") == 1);
  CHECK(std::count(cp.begin(), cp.end(), "mirror.example:5000/k8s/etcd:3.6.6-0") == 1);
}

TEST_CASE("containerd's sandbox image and kubeadm's etcd/CoreDNS tags are the images on the card", "[images]") {
  ClusterSpec spec = default_spec();
  for (const KubernetesMinor& k : kKubernetesMinors) {
    spec.kubernetes.version = "v1." + std::to_string(k.minor) + ".0";
    // containerd 1.x is refused after 1.35: pick the config the minor allows.
    spec.containerd.version = k.containerd_1x ? "1.7.28" : "2.3.4";
    INFO(spec.kubernetes.version);
    BuildPlan plan = make_plan(spec);
    for (const NodePlan& n : plan.nodes) {
      const bool cp = n.node.role == NodeRole::kControlPlane;
      Images images = node_images(spec, cp);
      const std::string pause = "registry.k8s.io/pause:" + std::string(k.pause);
      REQUIRE(std::count(images.begin(), images.end(), pause) == 1);
      const std::string toml = root_file(n, "/etc/containerd/config.toml");
      CHECK(toml.find("\"" + pause + "\"") + toml.find("'" + pause + "'") != 2 * std::string::npos);
      if (cp) {
        const std::string kubeadm = root_file(n, "/etc/kubernetes/pibake/kubeadm-init.yaml");
        CHECK(kubeadm.find("    imageTag: \"" + std::string(k.etcd) + "\"\n") != std::string::npos);
        CHECK(kubeadm.find("\ndns:\n  imageTag: \"" + std::string(k.coredns) + "\"\n") != std::string::npos);
        CHECK(std::count(images.begin(), images.end(), "registry.k8s.io/etcd:" + std::string(k.etcd)) == 1);
        CHECK(std::count(images.begin(), images.end(), "registry.k8s.io/coredns/coredns:" + std::string(k.coredns)) ==
              1);
      }
    }
  }
}

TEST_CASE("parse_image_reference: registry, repository and tag, and malformed references named", "[images]") {
  ImageReference r = parse_image_reference("registry.k8s.io/coredns/coredns:v1.12.0");
  CHECK(r.registry == "registry.k8s.io");
  CHECK(r.repository == "coredns/coredns");
  CHECK(r.tag == "v1.12.0");
  CHECK(r.str() == "registry.k8s.io/coredns/coredns:v1.12.0");
  ImageReference p = parse_image_reference("127.0.0.1:5000/k8s/pause:3.10");
  CHECK(p.registry == "127.0.0.1:5000");
  CHECK(p.repository == "k8s/pause");
  CHECK(p.tag == "3.10");
  for (const char* bad :
       {"pause:3.10", "registry.k8s.io/pause", "registry.k8s.io/pause:", "/pause:1", "registry.k8s.io/Pause:1",
        "registry.k8s.io/pa use:1", "registry.k8s.io/pause@sha256:ab", "registry.k8s.io/a//b:1"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_image_reference(bad), Error);
    try {
      parse_image_reference(bad);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(bad) != std::string::npos);
    }
  }
}
