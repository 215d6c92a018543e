// Kubernetes and containerd versions against the compatibility table (spec/compat.h), and the
// table itself (issue 11, item 5).
#include <catch2/catch.hpp>

#include "plan/artifacts.h"
#include "spec/compat.h"
#include "spec/spec.h"
#include "spec_test_support.h"

using namespace pibake;

TEST_CASE("Kubernetes versions older than v1.31 are refused with the reason", "[spec]") {
  LoadResult r = load_spec_text("kubernetes: {version: v1.30.4}\n", "cluster.yaml");
  REQUIRE(r.problems.size() == 1);
  CHECK(format_diagnostic(r.spec, r.problems[0]) ==
        "cluster.yaml:1:23: kubernetes.version: \"v1.30.4\" is too old: pibake supports Kubernetes v1.31 "
        "and later (kubeadm's v1beta4 configuration)");
  CHECK(problems_of("kubernetes: {version: stable-1.30}\n").size() == 1);
  CHECK(problems_of("kubernetes: {version: v1.31.0}\ncontainerd: {version: 1.7.28}\n").empty());
}

TEST_CASE("The compatibility table: minors in order, each with its kubeadm facts", "[spec]") {
  // Consecutive minors, end-of-life dates rising, ISO dates.
  for (size_t i = 1; i < kKubernetesMinors.size(); ++i) {
    CHECK(kKubernetesMinors[i].minor == kKubernetesMinors[i - 1].minor + 1);
    CHECK(kKubernetesMinors[i].end_of_life > kKubernetesMinors[i - 1].end_of_life);
  }
  for (const KubernetesMinor& k : kKubernetesMinors) {
    CHECK(k.end_of_life.size() == 10);
    CHECK(k.kubeadm_api == "kubeadm.k8s.io/v1beta4");
  }
  // kubeadm's constants.PauseVersion per release branch.
  CHECK(find_kubernetes_minor(31)->pause == "3.10");
  CHECK(find_kubernetes_minor(33)->pause == "3.10");
  CHECK(find_kubernetes_minor(34)->pause == "3.10.1");
  CHECK(find_kubernetes_minor(35)->pause == "3.10.1");
  CHECK(find_kubernetes_minor(36)->pause == "3.10.2");
  CHECK(find_kubernetes_minor(37)->pause == "3.10.2");
  // containerd 1.x: up to 1.35.
  CHECK(find_kubernetes_minor(35)->containerd_1x);
  CHECK_FALSE(find_kubernetes_minor(36)->containerd_1x);
  CHECK(find_kubernetes_minor(30) == nullptr);
  CHECK(find_kubernetes_minor(38) == nullptr);
  CHECK(kubernetes_minor_settings(38).minor == 37);
  CHECK(find_kubernetes_minor(34)->end_of_life == "2026-10-27");
  CHECK(newest_kubernetes_minor().end_of_life == "2027-10-28");
}

TEST_CASE("Version strings: releases, channels and their minors", "[spec]") {
  CHECK(kubernetes_minor_of("v1.37.1") == 37);
  CHECK(kubernetes_minor_of("stable-1.36") == 36);
  CHECK(kubernetes_minor_of("stable") == std::nullopt);
  CHECK(kubernetes_minor_of("v2.0.0") == std::nullopt);
  CHECK(kubernetes_minor_of("v1.37") == std::nullopt);
  CHECK(kubernetes_minor_of("v1.37.1-rc.0") == std::nullopt);
  CHECK(is_kubernetes_channel("stable"));
  CHECK(is_kubernetes_channel("stable-1.37"));
  CHECK_FALSE(is_kubernetes_channel("stable-1."));
  CHECK_FALSE(is_kubernetes_channel("latest"));
  CHECK_FALSE(is_kubernetes_channel("v1.37.1"));
}

TEST_CASE("containerd's configuration version follows its release", "[spec]") {
  CHECK(containerd_config_version("1.6.39") == 2);
  CHECK(containerd_config_version("1.7.28") == 2);
  CHECK(containerd_config_version("2.0.10") == 3);
  CHECK(containerd_config_version("2.2.7") == 3);
  CHECK(containerd_config_version("2.3.0") == 4);
  CHECK(containerd_config_version("2.3.4") == 4);
  CHECK(containerd_config_version("2.4.0") == 4);
  CHECK(containerd_config_version("3.0.0") == 4);
  CHECK(containerd_config_version("1.2.13") == 0);
  CHECK(containerd_config_version("2.3") == 0);
}

TEST_CASE("containerd 1.x is refused for Kubernetes 1.36 and later", "[spec]") {
  CHECK(problems_of("kubernetes: {version: v1.36.0}\ncontainerd: {version: 1.7.28}\n") ==
        Lines{"cluster.yaml:2:23: containerd.version: \"1.7.28\" cannot run Kubernetes v1.36.0: 1.35 was the last "
              "Kubernetes release that supports containerd 1.x; use containerd 2.x (2.3.4 is the default)"});
  CHECK(problems_of("kubernetes: {version: stable-1.37}\ncontainerd: {version: 1.6.39}\n").size() == 1);
  CHECK(problems_of("kubernetes: {version: v1.35.9}\ncontainerd: {version: 1.7.28}\n").empty());
  CHECK(problems_of("kubernetes: {version: v1.36.0}\ncontainerd: {version: 2.2.0}\n").empty());
  CHECK(problems_of("containerd: {version: 1.5.18}\n") ==
        Lines{"cluster.yaml:1:23: containerd.version: \"1.5.18\" is too old: Kubernetes 1.26 and later speak only "
              "CRI v1, which containerd has from 1.6"});
}

TEST_CASE("An unknown newer minor is refused unless kubernetes.allow_unknown_version is set", "[spec]") {
  CHECK(problems_of("kubernetes: {version: v1.38.0}\n") ==
        Lines{"cluster.yaml:1:23: kubernetes.version: \"v1.38.0\" is newer than the Kubernetes releases pibake "
              "knows (1.31 to 1.37): its pause image, kubeadm configuration API and containerd requirements are not "
              "checked. Use v1.37.x or stable-1.37, or set kubernetes.allow_unknown_version: true to build it with "
              "1.37's settings"});
  CHECK(problems_of("kubernetes: {version: stable-1.38}\n").size() == 1);
  ClusterSpec spec = load_clean("kubernetes: {version: v1.38.0, allow_unknown_version: true}\n");
  CHECK(spec.kubernetes.allow_unknown_version);
  CHECK(sandbox_image(spec) == "registry.k8s.io/pause:3.10.2");
  CHECK(version_warnings(spec, "2026-11-30") ==
        std::vector<Diagnostic>{{"kubernetes.version",
                                 "\"v1.38.0\" is not known to pibake: built with Kubernetes 1.37's settings (pause "
                                 "3.10.2, kubeadm.k8s.io/v1beta4) as kubernetes.allow_unknown_version asks"}});
  // containerd 1.x stays refused for an unknown newer minor.
  CHECK(problems_of("kubernetes: {version: v1.38.0, allow_unknown_version: true}\ncontainerd: {version: 1.7.28}\n")
            .size() == 1);
  CHECK(problems_of("kubernetes: {allow_unknown_version: yes}\n") ==
        Lines{"cluster.yaml:1:37: kubernetes.allow_unknown_version: expected true or false, found \"yes\""});
  // It round-trips through the spec written next to the outputs.
  CHECK(load_clean(to_yaml(spec)).kubernetes.allow_unknown_version);
}

TEST_CASE("An end-of-life minor is a warning naming the date", "[spec]") {
  ClusterSpec spec = load_clean("kubernetes: {version: v1.34.2}\n");
  CHECK(version_warnings(spec, "2026-10-26").empty());
  CHECK(version_warnings(spec, "2026-11-30") ==
        std::vector<Diagnostic>{{"kubernetes.version",
                                 "Kubernetes 1.34 reached its end of life on 2026-10-27 and gets no more security "
                                 "fixes: v1.37.1 (the default) is current"}});
  CHECK(version_warnings(load_clean("kubernetes: {version: stable-1.33}\n"), "2026-11-30").size() == 1);
  CHECK(version_warnings(default_spec(), "2026-11-30").empty());
  CHECK(version_warnings(load_clean("kubernetes: {version: stable}\n"), "2026-11-30").empty());
  // spec_warnings() includes them, with today's date.
  CHECK(utc_date_today().size() == 10);
  bool found = false;
  for (const Diagnostic& d :
       spec_warnings(load_clean("kubernetes: {version: v1.31.0}\ncontainerd: {version: 2.3.4}\n")))
    found = found || d.message.starts_with("Kubernetes 1.31 reached its end of life on 2025-11-11");
  CHECK(found);
}

TEST_CASE("The defaults are a known, supported, compatible set", "[spec]") {
  ClusterSpec d = default_spec();
  CHECK(d.kubernetes.version == "v1.37.1");
  CHECK(kubernetes_minor_of(d.kubernetes.version) == newest_kubernetes_minor().minor);
  CHECK(d.containerd.version == "2.3.4");
  CHECK(containerd_config_version(d.containerd.version) == 4);
  CHECK(d.runc.version == "1.5.1");
  CHECK(d.cni_plugins.version == "1.9.1");
  CHECK(validate(d).empty());
  CHECK(sandbox_image(d) == "registry.k8s.io/pause:3.10.2");
  CHECK(kFlannelImage.starts_with("ghcr.io/flannel-io/flannel:v"));
  CHECK(kFlannelCniPluginImage.starts_with("ghcr.io/flannel-io/flannel-cni-plugin:v"));
}
