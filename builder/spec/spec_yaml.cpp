// Writing specs as YAML: to_yaml() (the spec used, next to the outputs) and init_template() (the
// commented cluster.yaml of `pibake init`). Both load back to the spec they describe.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "spec/spec.h"

namespace pibake {
namespace {

// Short lists (and empty ones) read best on one line: dns: [8.8.8.8, 8.8.4.4].
void emit_strings(YAML::Emitter& out, const char* key, const std::vector<std::string>& values, bool flow) {
  out << YAML::Key << key << YAML::Value;
  if (flow || values.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const std::string& v : values) out << v;
  out << YAML::EndSeq;
}

void emit_component(YAML::Emitter& out, const char* key, const ComponentSpec& c) {
  out << YAML::Key << key << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << c.version << YAML::EndMap;
}

}  // namespace

std::string to_yaml(const ClusterSpec& spec) {
  // yaml-cpp's emitter quotes whatever would not read back as the same string ("null", "a: b").
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << spec.cluster.name;
  out << YAML::Key << "domain" << YAML::Value << spec.cluster.domain << YAML::EndMap;

  out << YAML::Key << "base_image" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "url" << YAML::Value << spec.base_image.url;
  out << YAML::Key << "sha256" << YAML::Value << spec.base_image.sha256;
  out << YAML::Key << "sha256sums" << YAML::Value << spec.base_image.sha256sums << YAML::EndMap;

  // Always the explicit list: it states each node's address and role, whatever produced them.
  out << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
  for (const NodeSpec& node : spec.nodes) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << node.name;
    out << YAML::Key << "ip" << YAML::Value << node.ip;
    out << YAML::Key << "role" << YAML::Value << to_string(node.role) << YAML::EndMap;
  }
  out << YAML::EndSeq;

  const NetworkSpec& net = spec.network;
  out << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "subnet" << YAML::Value << net.subnet;
  out << YAML::Key << "gateway" << YAML::Value << net.gateway;
  out << YAML::Key << "uplink" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "interface" << YAML::Value << net.uplink.interface;
  if (net.uplink.wifi) {
    out << YAML::Key << "wifi" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "ssid" << YAML::Value << net.uplink.wifi->ssid;
    out << YAML::Key << "password" << YAML::Value << net.uplink.wifi->password;
    out << YAML::Key << "country" << YAML::Value << net.uplink.wifi->country << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::Key << "dhcp_range" << YAML::Value << net.dhcp_range;
  emit_strings(out, "dns", net.dns, true);
  out << YAML::Key << "dhcp_server" << YAML::Value << net.dhcp_server;
  out << YAML::EndMap;

  const KubernetesSpec& k = spec.kubernetes;
  out << YAML::Key << "kubernetes" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << k.version;
  out << YAML::Key << "pod_cidr" << YAML::Value << k.pod_cidr;
  out << YAML::Key << "service_cidr" << YAML::Value << k.service_cidr;
  emit_strings(out, "api_server_sans", k.api_server_sans, true);
  if (!k.api_vip.empty()) out << YAML::Key << "api_vip" << YAML::Value << k.api_vip;
  out << YAML::Key << "cni" << YAML::Value << k.cni;
  out << YAML::Key << "image_repository" << YAML::Value << k.image_repository;
  if (k.allow_unknown_version) out << YAML::Key << "allow_unknown_version" << YAML::Value << true;
  if (k.mode != kModeKubeadm) out << YAML::Key << "mode" << YAML::Value << k.mode;
  out << YAML::EndMap;

  emit_component(out, "containerd", spec.containerd);
  emit_component(out, "runc", spec.runc);
  emit_component(out, "cni_plugins", spec.cni_plugins);
  if (!spec.etcd.version.empty()) emit_component(out, "etcd", spec.etcd);

  out << YAML::Key << "access" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "user" << YAML::Value << spec.access.user;
  emit_strings(out, "ssh_authorized_keys", spec.access.ssh_authorized_keys, false);
  out << YAML::Key << "password_hash" << YAML::Value << spec.access.password_hash << YAML::EndMap;

  out << YAML::Key << "packages" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "archive" << YAML::Value << spec.packages.archive;
  emit_strings(out, "keyring", spec.packages.keyring, false);
  out << YAML::EndMap;

  out << YAML::Key << "mirrors" << YAML::Value;
  if (spec.mirrors.empty()) out << YAML::Flow;
  out << YAML::BeginMap;
  for (const auto& [prefix, replacement] : spec.mirrors) {
    out << YAML::Key << prefix << YAML::Value << replacement;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string init_template() {
  // Built from default_spec() so the template cannot drift from the defaults it documents.
  const ClusterSpec d = default_spec();
  return fmt::format(
      R"(# cluster.yaml: the cluster pibake builds. Every key is optional: a missing key keeps the
# default shown here. `pibake build --nodes N` overrides nodes.count. docs/spec.md has the full
# reference and every rule pibake checks.

cluster:
  # The cluster's name (kubeadm clusterName, kubeconfig context).
  name: {name}
  # DNS domain of the cluster network: nodes are node-1.{domain}, ...
  domain: {domain}

base_image:
  # The Ubuntu arm64 Raspberry Pi image every node image starts from: an https:// URL or a local
  # path, to an .img or .img.xz (--base-image overrides it).
  url: {url}
  # Its SHA-256. Empty: taken from sha256sums.
  sha256: ""
  # URL of the release's SHA256SUMS. Empty: the SHA256SUMS in the folder of url.
  sha256sums: ""

# How many nodes: node-1 ... node-N, node-k at the k-th address of network.subnet, node-1 the
# control plane and the gateway.
nodes:
  count: {count}
  # Control planes: node-1 ... node-K (1, 3, 5 or 7). With more than one, each runs a member of
  # etcd, the API server is reached through kubernetes.api_vip, and any of them can be rebuilt.
  # control_planes: 1
# Or name them. ip defaults to the subnet's address number <position in the list>, role to
# worker; the first node is the control plane when none says so (an odd number may be).
# nodes:
#   - {{name: node-1, ip: 10.0.0.1, role: control-plane}}
#   - {{name: node-2, ip: 10.0.0.2}}
#   - {{name: node-3, ip: 10.0.0.3}}

network:
  # The cluster network on every node's eth0.
  subnet: {subnet}
  # The node that serves DHCP on eth0 and routes to the uplink. Empty: the first node.
  gateway: ""
  # The gateway's way out (never eth0, the cluster network).
  uplink:
    interface: {interface}
    # The Wi-Fi network the uplink joins; without it the cluster has no internet on first boot.
    # wifi:
    #   ssid: home
    #   password: "..."   # WPA passphrase, 8 to 63 characters; "" for an open network
    #   country: GB       # regulatory domain, ISO 3166-1 alpha-2
  # Or a wired uplink, such as a USB Ethernet adapter on the gateway:
  # uplink:
  #   interface: eth1
  # Addresses the gateway leases on eth0 to other devices (never a node's address).
  dhcp_range: {dhcp_range}
  # DNS servers for the nodes and the DHCP clients.
  dns: [{dns}]
  # The gateway's DHCP server: isc-dhcp-server, kea (ISC Kea, its successor), or auto: by the
  # base image's release, isc-dhcp-server where the release still ships it, else kea.
  dhcp_server: {dhcp_server}

kubernetes:
  # Release of kubelet, kubeadm, kubectl and the control plane images, or a channel resolved at
  # the first build and then pinned in pibake-state/lock.yaml: stable (the newest release) or
  # stable-1.NN (the newest patch of 1.NN).
  version: {k8s_version}
  # A minor newer than this pibake knows is refused; true builds it with the newest known
  # minor's settings (pause image, kubeadm configuration API).
  # allow_unknown_version: false
  # Pod addresses; every node gets a /24 of it.
  pod_cidr: {pod_cidr}
  # Service cluster IPs.
  service_cidr: {service_cidr}
  # Extra DNS names and IP addresses in the API server certificate.
  api_server_sans: [{sans}]
  # The API server's virtual IP, held by one control plane at a time (keepalived). Empty: none
  # with one control plane; with several, the highest address of the subnet that is neither a
  # node's nor in dhcp_range.
  # api_vip: 10.0.0.254
  # The pod network: flannel-host-gw (routes on the one cluster network) or flannel-vxlan.
  cni: {cni}
  # Where the control plane images come from.
  image_repository: {image_repository}
  # kubeadm (kubeadm builds the control plane on first boot) or hard-way: pibake writes every
  # certificate, kubeconfig and systemd unit, node-1 runs etcd and the control plane as services,
  # pods get a fixed /24 per node (cni: bridge, static routes), nothing runs kubeadm
  # (docs/hard-way.md).
  # mode: kubeadm

# Component releases, as their release tags without the leading v.
containerd:
  version: {containerd}
runc:
  version: {runc}
cni_plugins:
  version: {cni_plugins}
# etcd's release in hard-way mode. Unset: the etcd kubeadm runs for the Kubernetes minor.
# etcd:
#   version: 3.6.6

access:
  # The login user cloud-init creates.
  user: {user}
  # Public keys allowed to log in as that user. Empty: pibake uses ~/.ssh/*.pub when building.
  ssh_authorized_keys: []
  # ssh_authorized_keys:
  #   - ssh-ed25519 AAAA... me@laptop
  # A crypt(3) hash (mkpasswd -m sha-512), never a plaintext password. Empty: no password is
  # set and Ubuntu's forced change on first login stays.
  password_hash: ""

# The .deb packages first boot needs (conntrack, the gateway's DHCP server, ...) are resolved with
# apt against the base image's own package list, fetched from this archive (the release pocket,
# -updates and -security of the base's release), verified through its signed InRelease, and put on
# the cards: first boot installs them with no network (docs/packages.md).
packages:
  archive: {archive}
  # Extra trusted OpenPGP public keys (binary or armored files) for a private archive.
  keyring: []

# Download mirrors: URL prefix -> replacement (a URL or an absolute path), applied to every
# download; the longest prefix wins. Checksums are verified either way.
mirrors: {{}}
# mirrors:
#   "https://dl.k8s.io": "http://127.0.0.1:8080/dl.k8s.io"
#   "https://github.com": "/srv/mirror/github.com"
)",
      fmt::arg("name", d.cluster.name), fmt::arg("domain", d.cluster.domain), fmt::arg("url", d.base_image.url),
      fmt::arg("archive", d.packages.archive), fmt::arg("count", d.node_count), fmt::arg("subnet", d.network.subnet),
      fmt::arg("interface", d.network.uplink.interface), fmt::arg("dhcp_range", d.network.dhcp_range),
      fmt::arg("dns", fmt::join(d.network.dns, ", ")), fmt::arg("dhcp_server", d.network.dhcp_server),
      fmt::arg("k8s_version", d.kubernetes.version), fmt::arg("pod_cidr", d.kubernetes.pod_cidr),
      fmt::arg("service_cidr", d.kubernetes.service_cidr),
      fmt::arg("sans", fmt::join(d.kubernetes.api_server_sans, ", ")), fmt::arg("cni", d.kubernetes.cni),
      fmt::arg("image_repository", d.kubernetes.image_repository), fmt::arg("containerd", d.containerd.version),
      fmt::arg("runc", d.runc.version), fmt::arg("cni_plugins", d.cni_plugins.version),
      fmt::arg("user", d.access.user));
}

}  // namespace pibake
