// The flags each hard-way component documents for the versions pibake pins, for
// hard_way_files_test.cpp: transcribed from each component's reference page (cited per entry), so
// what it checks is checked only against documentation (docs/hard-way.md, "What is checked where").
#pragma once

#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace pibake::test {

// What each component documents, for the versions pibake pins (Kubernetes 1.35 to 1.37, etcd 3.6):
// the flags pibake may pass (a subset of the reference: a flag missing here must be looked up and
// added), the ones removed or deprecated (or ignored beside --config), and the ones issue 14 needs.
// Flag lists are written as space-separated names.
struct Component {
  std::string unit;       // path on the node
  std::string program;    // ExecStart's binary
  std::string reference;  // the page the table follows
  std::string documented;
  std::string refused;
  std::string required;
};

inline std::set<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::set<std::string> out;
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

// klog's flags, removed from every Kubernetes component in 1.26 (KEP-2845, "Deprecate klog specific
// flags in Kubernetes components").
inline const std::string kKlogFlags =
    " --logtostderr --alsologtostderr --log-dir --log-file --log-file-max-size --one-output --skip-headers "
    "--skip-log-headers --stderrthreshold --add-dir-header";

inline const std::vector<Component> kComponents = {
    {"/etc/systemd/system/etcd.service", "/usr/local/bin/etcd", "https://etcd.io/docs/v3.6/op-guide/configuration/",
     "--name --data-dir --wal-dir --snapshot-count --heartbeat-interval --election-timeout --listen-peer-urls "
     "--listen-client-urls --listen-metrics-urls --quota-backend-bytes --initial-advertise-peer-urls "
     "--initial-cluster --initial-cluster-state --initial-cluster-token --advertise-client-urls --client-cert-auth "
     "--trusted-ca-file --cert-file --key-file --peer-client-cert-auth --peer-trusted-ca-file --peer-cert-file "
     "--peer-key-file --cipher-suites --tls-min-version --log-level --logger --log-outputs --auto-compaction-mode "
     "--auto-compaction-retention",
     // Removed in 3.6 (the v2 store) or 3.5 (capnslog's flags); the --experimental-* flags 3.6
     // renamed or turned into feature gates (any --experimental- flag is refused below too); and
     // the self-signed --auto-tls, --peer-auto-tls (pibake's CA signs etcd's certificates).
     "--enable-v2 --experimental-enable-v2v3 --debug --log-package-levels --experimental-initial-corrupt-check "
     "--experimental-watch-progress-notify-interval --experimental-compact-hash-check-enabled "
     "--experimental-snapshot-catchup-entries --experimental-warning-apply-duration --auto-tls --peer-auto-tls",
     "--name --data-dir --listen-client-urls --advertise-client-urls --listen-peer-urls --initial-advertise-peer-urls "
     "--initial-cluster --initial-cluster-state --client-cert-auth --trusted-ca-file --cert-file --key-file "
     "--peer-client-cert-auth --peer-trusted-ca-file --peer-cert-file --peer-key-file"},
    {"/etc/systemd/system/kube-apiserver.service", "/usr/local/bin/kube-apiserver",
     "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
     "--advertise-address --allow-privileged --anonymous-auth --api-audiences --audit-log-path --audit-policy-file "
     "--authorization-mode --bind-address --client-ca-file --enable-admission-plugins --disable-admission-plugins "
     "--enable-aggregator-routing --encryption-provider-config --etcd-cafile --etcd-certfile --etcd-keyfile "
     "--etcd-servers --event-ttl --feature-gates --kubelet-certificate-authority --kubelet-client-certificate "
     "--kubelet-client-key --kubelet-preferred-address-types --kubelet-timeout --proxy-client-cert-file "
     "--proxy-client-key-file --requestheader-allowed-names --requestheader-client-ca-file "
     "--requestheader-extra-headers-prefix --requestheader-group-headers --requestheader-username-headers "
     "--runtime-config --secure-port --service-account-issuer --service-account-key-file "
     "--service-account-signing-key-file --service-cluster-ip-range --service-node-port-range --tls-cert-file "
     "--tls-private-key-file --tls-min-version --v",
     // Insecure serving (removed in 1.24), basic auth (1.19), --kubelet-https (1.22), the encryption
     // flag's experimental name, --admission-control (replaced by --enable-admission-plugins),
     // --service-account-api-audiences (by --api-audiences), and flags the reference marks deprecated.
     "--insecure-port --insecure-bind-address --port --address --kubelet-https --basic-auth-file "
     "--experimental-encryption-provider-config --admission-control --enable-swagger-ui "
     "--service-account-api-audiences --target-ram-mb --enable-logs-handler" +
         kKlogFlags,
     "--advertise-address --etcd-servers --etcd-cafile --etcd-certfile --etcd-keyfile --client-ca-file "
     "--tls-cert-file --tls-private-key-file --kubelet-client-certificate --kubelet-client-key "
     "--kubelet-certificate-authority --service-account-key-file --service-account-signing-key-file "
     "--service-account-issuer --service-cluster-ip-range --authorization-mode --enable-admission-plugins "
     "--encryption-provider-config --requestheader-client-ca-file --requestheader-allowed-names "
     "--requestheader-extra-headers-prefix --requestheader-group-headers --requestheader-username-headers "
     "--proxy-client-cert-file --proxy-client-key-file --enable-aggregator-routing --allow-privileged"},
    {"/etc/systemd/system/kube-controller-manager.service", "/usr/local/bin/kube-controller-manager",
     "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
     "--allocate-node-cidrs --authentication-kubeconfig --authorization-kubeconfig --bind-address --client-ca-file "
     "--cluster-cidr --cluster-name --cluster-signing-cert-file --cluster-signing-key-file --cluster-signing-duration "
     "--controllers --feature-gates --kubeconfig --leader-elect --node-cidr-mask-size --requestheader-client-ca-file "
     "--root-ca-file --secure-port --service-account-private-key-file --service-cluster-ip-range "
     "--use-service-account-credentials --v",
     // Insecure serving (removed in 1.24), --experimental-cluster-signing-duration (1.25),
     // --pod-eviction-timeout (1.27), --enable-taint-manager (1.29).
     "--port --address --experimental-cluster-signing-duration --pod-eviction-timeout --enable-taint-manager "
     "--horizontal-pod-autoscaler-use-rest-clients" +
         kKlogFlags,
     "--kubeconfig --authentication-kubeconfig --authorization-kubeconfig --cluster-signing-cert-file "
     "--cluster-signing-key-file --root-ca-file --service-account-private-key-file --use-service-account-credentials "
     "--cluster-cidr --service-cluster-ip-range --allocate-node-cidrs --leader-elect --bind-address "
     "--requestheader-client-ca-file"},
    {"/etc/systemd/system/kube-scheduler.service", "/usr/local/bin/kube-scheduler",
     "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
     "--config --authentication-kubeconfig --authorization-kubeconfig --bind-address --secure-port --client-ca-file "
     "--requestheader-client-ca-file --feature-gates --v",
     // The reference's "deprecated" flags (ignored beside --config), and the scheduler policy flags
     // removed in 1.23.
     "--kubeconfig --kube-api-qps --kube-api-burst --kube-api-content-type --lock-object-name "
     "--lock-object-namespace --profiling --contention-profiling --port --address --policy-config-file "
     "--policy-configmap --policy-configmap-namespace --use-legacy-policy-config --algorithm-provider "
     "--scheduler-name" +
         kKlogFlags,
     "--config --authentication-kubeconfig --authorization-kubeconfig --bind-address"},
    {"/etc/systemd/system/kubelet.service.d/10-pibake-hard-way.conf", "/usr/local/bin/kubelet",
     "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
     // The flags that have no KubeletConfiguration field.
     "--config --config-dir --kubeconfig --bootstrap-kubeconfig --node-ip --hostname-override --node-labels "
     "--cert-dir --root-dir --v",
     // Deprecated: "should be set via the config file specified by the Kubelet's --config flag";
     // removed with dockershim in 1.24 (--network-plugin, --cni-*, and --dynamic-config-dir) or
     // later (--container-runtime in 1.27); --pod-infra-container-image (deprecated in 1.27).
     "--anonymous-auth --authentication-token-webhook --authorization-mode --client-ca-file --cgroup-driver "
     "--cluster-dns --cluster-domain --container-runtime-endpoint --fail-swap-on --pod-cidr --pod-manifest-path "
     "--resolv-conf --rotate-certificates --tls-cert-file --tls-private-key-file --register-with-taints --max-pods "
     "--network-plugin --cni-bin-dir --cni-conf-dir --cni-cache-dir --container-runtime --dynamic-config-dir "
     "--pod-infra-container-image --cadvisor-port --allow-privileged" +
         kKlogFlags,
     "--config --kubeconfig"},
    {"/etc/systemd/system/kube-proxy.service", "/usr/local/bin/kube-proxy",
     "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/", "--config --v",
     // Held by the configuration file instead (the reference: ignored beside --config).
     "--kubeconfig --cluster-cidr --proxy-mode --master --bind-address" + kKlogFlags, "--config"},
};

}  // namespace pibake::test
