// The Kubernetes version floor: pibake writes kubeadm v1beta4 configuration (kubeadm 1.31+).
#include <catch2/catch.hpp>

#include "spec/spec.h"

using namespace pibake;

TEST_CASE("Kubernetes versions older than v1.31 are refused with the reason", "[spec]") {
  LoadResult r = load_spec_text("kubernetes: {version: v1.30.4}\n", "cluster.yaml");
  REQUIRE(r.problems.size() == 1);
  CHECK(format_diagnostic(r.spec, r.problems[0]) ==
        "cluster.yaml:1:23: kubernetes.version: \"v1.30.4\" is too old: pibake supports Kubernetes v1.31 "
        "and later (kubeadm's v1beta4 configuration)");
  CHECK(load_spec_text("kubernetes: {version: v1.31.0}\n", "cluster.yaml").problems.empty());
  CHECK(load_spec_text("kubernetes: {version: v1.40.1}\n", "cluster.yaml").problems.empty());
}
