// The subnet size limits kubeadm itself enforces when it reads the spec's kubernetes.pod_cidr and
// kubernetes.service_cidr (its validation runs only at first boot on the Pi, where a refusal
// would leave the bootstrap retrying forever). Rules listed in docs/spec.md.
#include <fmt/format.h>

#include "spec/spec_internal.h"

namespace pibake::spec_detail {
namespace {

// kubeadm, cmd/kubeadm/app/constants/constants.go: MaximumBitsForServiceSubnet = 20 ("the largest
// supported service subnet is /12 for IPv4"), checked by ValidateServiceSubnetSize.
constexpr int kMaximumBitsForServiceSubnet = 20;
// kubeadm, same file: PodSubnetNodeMaskMaxDiff = 16 ("the node subnet mask size must be no more
// than the pod subnet mask size + 16"), checked by ValidatePodSubnetNodeMask.
constexpr int kPodSubnetNodeMaskMaxDiff = 16;

}  // namespace

void validate_kubeadm_subnet_limits(const std::optional<Cidr>& pods, const std::optional<Cidr>& services,
                                    Problems& out) {
  if (services && 32 - services->prefix > kMaximumBitsForServiceSubnet) {
    out.push_back(
        {"kubernetes.service_cidr",
         fmt::format("{} is too large: kubeadm allows at most {} host bits in the service subnet "
                     "(MaximumBitsForServiceSubnet), so it must be a /{} or smaller",
                     quote(services->str()), kMaximumBitsForServiceSubnet, 32 - kMaximumBitsForServiceSubnet)});
  }
  if (pods && kNodePodPrefix - pods->prefix > kPodSubnetNodeMaskMaxDiff) {
    out.push_back({"kubernetes.pod_cidr",
                   fmt::format("{} is too large: kubeadm allows the per-node /{} to be at most {} bits narrower "
                               "than the pod subnet (PodSubnetNodeMaskMaxDiff), so it must be a /{} or smaller",
                               quote(pods->str()), kNodePodPrefix, kPodSubnetNodeMaskMaxDiff,
                               kNodePodPrefix - kPodSubnetNodeMaskMaxDiff)});
  }
}

}  // namespace pibake::spec_detail
