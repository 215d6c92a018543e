// The build plan (see plan.h): which files each node gets, rendered from the built-in templates.
// Every template folder holds trees named after the nodes that get them; inside a tree a file has
// its path on a running Pi (docs/overlays.md):
//   overlays/<all|control-plane|worker|gateway>/…  → the root filesystem, same path
//   overlays/kubeadm/…                              → every node in kubernetes.mode: kubeadm (control-plane,
//                                                     worker and control-plane-vip are that mode's too)
//   overlays/hard-way[-control-plane]/…             → every node (the control plane) in kubernetes.mode: hard-way
//   overlays/containerd-<1.x|2.x>/…                 → the root filesystem, by containerd's major version
//   overlays/*/_manifest                            → modes and symlinks for that tree
//   dhcp/gateway/…                                  → the gateway's DHCP server start script, root filesystem
//   dhcp/<isc-dhcp-server|kea>/…                    → that DHCP server's configuration and unit (dhcp_server.h)
//   netplan/<gateway|non-gateway>/boot/firmware/    → the cloud-init network-config on system-boot
//   firmware/all/boot/firmware/                     → the rest of the cloud-init seed on system-boot
#include "plan/plan.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>
#include <tuple>

#include "plan/dhcp_server.h"
#include "plan/hard_way.h"
#include "plan/template.h"
#include "spec/compat.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json.h"
#include "util/resources.h"
#include "util/sha256.h"
#include "util/yaml_text.h"

namespace pibake {
namespace {

constexpr std::string_view kTemplateSuffix = ".tmpl";
constexpr std::string_view kManifest = "/_manifest";

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : std::string(sep)) + i;
  return out;
}

// The cloud-config lines for the login user. Keys switch password SSH off; with neither keys nor
// a hash, Ubuntu's own policy stays: password "ubuntu" that must be changed at first login.
std::string render_access(const ClusterSpec& spec) {
  const auto& a = spec.access;
  std::string out = "users:\n  - name: " + yaml_quote(a.user) +
                    "\n    groups: [adm, sudo, users]\n    shell: /bin/bash\n"
                    "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n";
  if (!a.password_hash.empty()) {
    out += "    lock_passwd: false\n    passwd: " + yaml_quote(a.password_hash) + "\n";
  } else {
    out += a.ssh_authorized_keys.empty() ? "    lock_passwd: false\n" : "    lock_passwd: true\n";
  }
  if (!a.ssh_authorized_keys.empty()) {
    out += "    ssh_authorized_keys:\n";
    for (const auto& k : a.ssh_authorized_keys) out += "      - " + yaml_quote(k) + "\n";
  }
  if (a.ssh_authorized_keys.empty() && a.password_hash.empty()) {
    out +=
        "chpasswd:\n  expire: true\n  users:\n    - {name: " + yaml_quote(a.user) + ", password: ubuntu, type: text}\n";
  }
  out += a.ssh_authorized_keys.empty() ? "ssh_pwauth: true\n" : "ssh_pwauth: false\n";
  return out;
}

bool is_wifi(const UplinkSpec& uplink) { return uplink.interface.rfind("wl", 0) == 0; }

// The gateway's uplink in netplan: Wi-Fi (with the regulatory domain) or a wired interface. A
// Wi-Fi interface with no network to join (network.uplink.wifi unset, the default) gets no entry at
// all, only a comment: an access point with an empty SSID would have wpa_supplicant search for a
// network that does not exist, and netplan-wpa-<if>.service waits for the interface at every boot
// (on a board without it, systemd's device timeout; found by the e2e test with no uplink).
std::string render_uplink(const UplinkSpec& uplink) {
  if (!is_wifi(uplink)) {
    return fmt::format("    {}:\n      dhcp4: true\n      optional: true\n", uplink.interface);
  }
  if (!uplink.wifi) {
    return fmt::format("  # no uplink: {} has no Wi-Fi network to join (network.uplink.wifi in cluster.yaml)\n",
                       uplink.interface);
  }
  const WifiSpec& wifi = *uplink.wifi;
  std::string ap = "        " + yaml_quote(wifi.ssid) + ":";
  ap += wifi.password.empty() ? " {}\n" : "\n          password: " + yaml_quote(wifi.password) + "\n";
  std::string out = fmt::format("  wifis:\n    {}:\n      dhcp4: true\n      optional: true\n", uplink.interface);
  if (!wifi.country.empty()) out += "      regulatory-domain: " + yaml_quote(wifi.country) + "\n";
  return out + "      access-points:\n" + ap;
}

// The spec's secrets as the seed files spell them (YAML-quoted): the login password hash and the
// Wi-Fi passphrase. Empty values are no secret.
std::vector<std::string> seed_secrets(const ClusterSpec& spec) {
  std::vector<std::string> out;
  if (!spec.access.password_hash.empty()) out.push_back(yaml_quote(spec.access.password_hash));
  const auto& wifi = spec.network.uplink.wifi;
  if (wifi && !wifi->password.empty()) out.push_back(yaml_quote(wifi->password));
  return out;
}

bool holds_secret(const std::string& text, const std::vector<std::string>& secrets) {
  return std::any_of(secrets.begin(), secrets.end(),
                     [&](const std::string& s) { return text.find(s) != std::string::npos; });
}

// `text` with every secret replaced by "<secret>": what may be digested into a readable value
// (the instance-id) without letting anyone test a guessed secret against it offline.
std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at)) {
      text.replace(at, s.size(), "<secret>");
      at += 8;
    }
  }
  return text;
}

std::string render_hosts_entries(const ClusterSpec& spec) {
  std::string out;
  for (const NodeSpec& n : spec.nodes) out += fmt::format("{} {}.{} {}\n", n.ip, n.name, spec.cluster.domain, n.name);
  if (!out.empty()) out.pop_back();
  return out;
}

const NodeSpec& gateway_node(const ClusterSpec& spec) {
  const NodeSpec* gateway = find_node(spec, gateway_name(spec));
  return gateway ? *gateway : spec.nodes.front();
}

// The DHCP lease times, seconds: dhcpd.conf's default-lease-time / max-lease-time, Kea's
// valid-lifetime / max-valid-lifetime (seed 001's values).
constexpr int kDhcpLeaseSeconds = 600;
constexpr int kDhcpMaxLeaseSeconds = 7200;

TemplateVars node_vars(const ClusterSpec& spec, const NodeSpec& node, int number, DhcpServer dhcp_server) {
  const DhcpServerFacts& dhcp = dhcp_server_facts(dhcp_server);
  const Cidr subnet = Cidr::parse(spec.network.subnet).value_or(Cidr{});
  const std::string& range = spec.network.dhcp_range;
  const auto dash = range.find('-');
  TemplateVars v;
  v["hostname"] = node.name;
  v["fqdn"] = node.name + "." + spec.cluster.domain;
  v["domain"] = spec.cluster.domain;
  v["cluster_name"] = spec.cluster.name;
  v["node_number"] = std::to_string(number);
  v["node_ip"] = node.ip;
  v["node_cidr"] = node.ip + "/" + std::to_string(subnet.prefix);
  v["role"] = to_string(node.role);
  v["gateway_ip"] = gateway_node(spec).ip;
  v["subnet"] = spec.network.subnet;
  v["subnet_address"] = subnet.base.str();
  v["netmask"] = subnet.netmask_address().str();
  v["broadcast"] = subnet.broadcast().str();
  v["range_first"] = range.substr(0, dash);
  v["range_last"] = dash == std::string::npos ? range : range.substr(dash + 1);
  v["dns_servers"] = join(spec.network.dns, ", ");
  v["lease_time"] = std::to_string(kDhcpLeaseSeconds);
  v["max_lease_time"] = std::to_string(kDhcpMaxLeaseSeconds);
  v["dhcp_server"] = std::string(dhcp.name);
  v["dhcp_service"] = std::string(dhcp.service);
  v["uplink"] = spec.network.uplink.interface;
  v["uplink_block"] = render_uplink(spec.network.uplink);
  v["hosts_entries"] = render_hosts_entries(spec);
  v["access"] = render_access(spec);
  v["sandbox_image"] = sandbox_image(spec);
  const KubernetesMinor& minor = kubernetes_minor_settings(kubernetes_minor(spec.kubernetes.version));
  v["kubeadm_api_version"] = std::string(minor.kubeadm_api);
  v["etcd_image_tag"] = std::string(minor.etcd);
  v["coredns_image_tag"] = std::string(minor.coredns);
  v["containerd_config_version"] = std::to_string(containerd_config_version(spec.containerd.version));
  v["flannel_image"] = std::string(kFlannelImage);
  v["flannel_cni_plugin_image"] = std::string(kFlannelCniPluginImage);
  v["kubernetes_version"] = spec.kubernetes.version;
  v["image_repository"] = spec.kubernetes.image_repository;
  v["pod_cidr"] = spec.kubernetes.pod_cidr;
  v["service_cidr"] = spec.kubernetes.service_cidr;
  // kubeadm gives cluster DNS the service range's 10th address (GetDNSIP).
  v["cluster_dns"] = Cidr::parse(spec.kubernetes.service_cidr).value_or(Cidr{}).at(10).str();
  const std::string endpoint = api_endpoint_address(spec);
  v["api_endpoint"] = endpoint;
  v["api_server"] = "https://" + endpoint + ":6443";
  // The API server certificate's names: the virtual IP, then every control plane's address, name
  // and FQDN (kubeadm keeps certSANs in the cluster's ClusterConfiguration, which a joining
  // control plane reads: one list for all), then the spec's extras.
  std::string san_lines;
  for (const std::string& san : api_server_sans(spec)) san_lines += "    - \"" + san + "\"\n";
  san_lines.pop_back();
  v["api_server_sans"] = san_lines;
  v["flannel_backend"] = spec.kubernetes.cni == "flannel-vxlan" ? "vxlan" : "host-gw";
  // With no worker the control planes must take workloads too.
  const bool no_worker =
      std::none_of(spec.nodes.begin(), spec.nodes.end(), [](const NodeSpec& n) { return n.role == NodeRole::kWorker; });
  v["control_plane_taints"] = no_worker ? "  taints: []" : "";
  std::string workers;
  for (const NodeSpec& n : spec.nodes)
    if (n.role == NodeRole::kWorker) workers += (workers.empty() ? "" : " ") + n.name;
  v["worker_names"] = workers;
  const bool gateway = node.name == gateway_node(spec).name;
  v["is_gateway"] = gateway ? "yes" : "no";
  // What first boot installs when the base image lacks it (packages.h), from the card;
  // the gateway's chrony serves time (docs/cluster.md, "The clock without a network").
  v["firstboot_packages"] = join_requested(firstboot_packages(spec, node, dhcp_server));
  // The other control planes: their etcd client endpoints (kubeadm: <ip>:2379), and keepalived's
  // unicast_peer lines.
  std::string endpoints, vrrp_peers;
  for (const NodeSpec* cp : control_plane_nodes(spec)) {
    if (cp->name == node.name) continue;
    endpoints += (endpoints.empty() ? "" : " ") + cp->ip + ":2379";
    vrrp_peers += (vrrp_peers.empty() ? "        " : "\n        ") + cp->ip;
  }
  v["etcd_endpoints"] = endpoints;
  v["vrrp_unicast_peers"] = vrrp_peers;
  // keepalived (docs/cluster.md, "Several control planes"): VRRP router id from the virtual IP's
  // last octet (distinct from another VRRP group on the segment that did the same for its own
  // address), a priority that orders the control planes.
  const std::optional<Ipv4> vip = Ipv4::parse(endpoint);
  v["vrrp_router_id"] = std::to_string(vip ? std::max<uint32_t>(vip->value & 0xff, 1) : 1);
  v["vrrp_priority"] = std::to_string(std::max(150 - number, 1));
  v["api_vip_cidr"] = endpoint + "/" + std::to_string(subnet.prefix);
  v["card_debs_dir"] = kCardDebsDir;
  v["discovery_kubeconfig"] = kDiscoveryKubeconfig;
  v["kubernetes_mode"] = spec.kubernetes.mode;
  v["coredns_image"] = coredns_image(spec);
  // Routes to the other nodes' pod ranges: the hard way's (hard_way_vars); none with a CNI.
  v["pod_routes"] = "";
  if (is_hard_way(spec)) {
    for (auto& [name, value] : hard_way_vars(spec, node)) v[name] = value;
  }
  return v;
}

FileOp* find_root_op(NodePlan& plan, const std::string& path) {
  for (FileOp& op : plan.ops)
    if (op.fs == Fs::kRoot && op.path == path && op.kind == FileOp::Kind::kWrite) return &op;
  return nullptr;
}

// "mode PATH MODE" and "link PATH TARGET" lines of a tree's _manifest.
void apply_manifest(NodePlan& plan, std::string_view text, const std::string& source) {
  std::istringstream in{std::string(text)};
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream words(line);
    std::string verb, path, arg;
    words >> verb >> path >> arg;
    if (verb.empty() || verb[0] == '#') continue;
    std::string where = fmt::format("{}:{}", source, lineno);
    if (verb == "mode") {
      FileOp* op = find_root_op(plan, path);
      if (op == nullptr) throw Error(where + ": no file " + path + " in this overlay");
      op->mode = static_cast<uint32_t>(std::stoul(arg, nullptr, 8));
    } else if (verb == "link") {
      FileOp op;
      op.kind = FileOp::Kind::kSymlink;
      op.path = path;
      op.link_target = arg;
      op.mode = 0777;
      op.source = source;
      plan.ops.push_back(std::move(op));
    } else {
      throw Error(where + ": unknown manifest line \"" + line + "\"");
    }
  }
}

// Every resource under `dir` becomes a file at the same path in the image; "*.tmpl" is rendered.
void add_tree(NodePlan& plan, std::string_view dir, const TemplateVars& vars) {
  const Resource* manifest = nullptr;
  for (const Resource* r : resources_under(std::string(dir) + "/")) {
    std::string path(r->path + dir.size());
    std::string_view body(r->data, r->size);
    if (path == kManifest) {
      manifest = r;
      continue;
    }
    FileOp op;
    op.source = r->path;
    if (path.ends_with(kTemplateSuffix)) {
      path.resize(path.size() - kTemplateSuffix.size());
      op.content = render_template(body, vars, r->path);
    } else {
      op.content = std::string(body);
    }
    op.path = path;
    plan.ops.push_back(std::move(op));
  }
  if (manifest) apply_manifest(plan, {manifest->data, manifest->size}, manifest->path);
}

FileOp file_op(Fs fs, std::string path, std::string content, std::string source) {
  FileOp op;
  op.fs = fs;
  op.path = std::move(path);
  op.content = std::move(content);
  op.source = std::move(source);
  return op;
}

std::string render_resource(const std::string& name, const TemplateVars& vars) {
  return render_template(resource(name), vars, name);
}

// containerd and the Kubernetes binaries with their configuration (same on every node).
void add_runtime(NodePlan& plan, const ClusterSpec& spec, const std::vector<ResolvedArtifact>& artifacts,
                 const TemplateVars& vars) {
  const bool control_plane = plan.node.role == NodeRole::kControlPlane;
  for (const ResolvedArtifact& a : artifacts) {
    if (a.source.control_plane_only && !control_plane) continue;
    FileOp op;
    op.kind = a.source.archive ? FileOp::Kind::kExtractArchive : FileOp::Kind::kCopyFile;
    op.path = a.source.archive ? a.source.install_dir : a.source.install_dir + "/" + a.source.name;
    op.member_prefix = a.source.member_prefix;
    op.mode = 0755;
    op.source = a.source.name + " " + a.source.version;
    op.source_path = a.path;
    op.sha256 = a.sha256;
    op.size = a.install_bytes;
    plan.ops.push_back(std::move(op));
    // etcd's release folder keeps its layout; its programs are found on the PATH through links.
    if (a.source.name == "etcd") {
      for (const char* bin : {"etcd", "etcdctl", "etcdutl"}) {
        FileOp link;
        link.kind = FileOp::Kind::kSymlink;
        link.path = std::string("/usr/local/bin/") + bin;
        link.link_target = std::string(kEtcdInstallDir) + "/" + bin;
        link.mode = 0777;
        link.source = a.source.name + " " + a.source.version;
        plan.ops.push_back(std::move(link));
      }
    }
  }
  // containerd 1.x reads config version 2; 2.0-2.2 version 3 and 2.3+ version 4, which name the
  // CRI plugins alike (io.containerd.cri.v1.*): the 2.x tree writes both (compatibility table).
  add_tree(
      plan,
      containerd_config_version(spec.containerd.version) >= 3 ? "overlays/containerd-2.x" : "overlays/containerd-1.x",
      vars);
}

// The container images this node's role runs (node_images), as OCI archives first boot imports.
void add_images(NodePlan& plan, const ClusterSpec& spec, const std::vector<ImageArchive>& archives) {
  if (archives.empty()) return;
  for (const std::string& reference : node_images(spec, plan.node.role == NodeRole::kControlPlane)) {
    const ImageArchive* a = nullptr;
    for (const ImageArchive& x : archives)
      if (x.reference == reference) a = &x;
    if (a == nullptr) throw Error("internal error: no archive for the image " + reference);
    FileOp op;
    op.kind = FileOp::Kind::kCopyFile;
    op.path = std::string(kImageArchiveDir) + "/" + image_archive_name(reference);
    op.mode = 0644;
    op.source = "image " + reference;
    op.source_path = a->path;
    op.sha256 = a->sha256;
    op.size = a->size;
    plan.ops.push_back(std::move(op));
  }
}

// The .debs of the node's package set, for first boot to install with no network (packages.h).
void add_debs(NodePlan& plan, const PlanInputs& inputs) {
  auto it = inputs.debs.find(plan.package_set);
  if (it == inputs.debs.end()) return;
  for (const ResolvedDeb& d : it->second) {
    FileOp op;
    op.kind = FileOp::Kind::kCopyFile;
    op.path = std::string(kCardDebsDir) + "/" + d.package.file_name();
    op.mode = 0644;
    op.source = "package " + d.package.name + " " + d.package.version;
    op.source_path = d.path;
    op.sha256 = d.package.sha256;
    op.size = d.package.size;
    plan.ops.push_back(std::move(op));
  }
}

// Whatever the base has been through, each node starts as a machine that never booted: an empty
// /etc/machine-id (machine-id(5): systemd then generates one and runs first-boot units), D-Bus's
// copy a link to it (as Debian's and Ubuntu's dbus package installs it), no saved random seed
// (systemd-random-seed.service(8)), no cloud-init instance state (what `cloud-init clean`
// removes) and no SSH host keys (cloud-init's ssh module makes new ones for the new instance).
void add_fresh_identity(NodePlan& plan) {
  const char* source = "fresh node identity";
  FileOp machine_id = file_op(Fs::kRoot, "/etc/machine-id", "", source);
  machine_id.mode = 0444;
  plan.ops.push_back(machine_id);
  FileOp dbus = file_op(Fs::kRoot, "/var/lib/dbus/machine-id", "", source);
  dbus.kind = FileOp::Kind::kSymlink;
  dbus.link_target = "/etc/machine-id";
  dbus.mode = 0777;
  plan.ops.push_back(dbus);
  std::vector<std::string> gone = {"/var/lib/systemd/random-seed", "/var/lib/cloud/instance",
                                   "/var/lib/cloud/instances",     "/var/lib/cloud/data",
                                   "/var/lib/cloud/sem",           "/var/lib/cloud/handlers"};
  for (const char* type : {"rsa", "ecdsa", "ed25519", "dsa"}) {
    gone.push_back(fmt::format("/etc/ssh/ssh_host_{}_key", type));
    gone.push_back(fmt::format("/etc/ssh/ssh_host_{}_key.pub", type));
  }
  for (const std::string& path : gone) {
    FileOp op = file_op(Fs::kRoot, path, "", source);
    op.kind = FileOp::Kind::kRemove;
    plan.ops.push_back(op);
  }
}

// The kubelet does not create the static-pod directory its configuration names: without it, it logs
// "path does not exist, ignoring" on every config sync. kubeadm creates /etc/kubernetes/manifests
// on the control plane (init and join); pibake's workers skip `kubeadm join`, so the plan adds every
// directory named in a kubelet configuration it writes (`staticPodPath`), read from the rendered file.
void add_kubelet_dirs(NodePlan& plan) {
  std::vector<FileOp> dirs;
  for (const FileOp& op : plan.ops) {
    if (op.fs != Fs::kRoot || op.kind != FileOp::Kind::kWrite || op.path != kKubeletConfigPath) continue;
    YAML::Node config = YAML::Load(op.content);
    if (!config["staticPodPath"]) continue;
    FileOp dir;
    dir.kind = FileOp::Kind::kMkdir;
    dir.path = config["staticPodPath"].as<std::string>();
    dir.mode = 0755;
    dir.source = std::string("staticPodPath in ") + kKubeletConfigPath;
    if (dir.path.empty() || dir.path[0] != '/') throw Error(op.source + ": staticPodPath must be an absolute path");
    dirs.push_back(std::move(dir));
  }
  for (FileOp& d : dirs) plan.ops.push_back(std::move(d));
}

// The clock floor files (kClockEpochPath, kTimesyncClockPath), empty, dated `inputs.clock_floor`:
// a Pi has no real-time clock, and offline no NTP server answers, so without them a node boots at
// systemd's build date, before its certificates' notBefore. Nothing when the floor is not known.
void add_clock_floor(NodePlan& plan, const PlanInputs& inputs) {
  if (inputs.clock_floor == 0) return;
  const char* source = "clock floor (docs/cluster.md)";
  FileOp epoch = file_op(Fs::kRoot, kClockEpochPath, "", source);
  epoch.mtime = inputs.clock_floor;
  plan.ops.push_back(epoch);
  // As systemd-timesyncd.service's StateDirectory= and timesyncd itself make them: 0755 and 0644.
  FileOp dir = file_op(Fs::kRoot, "/var/lib/systemd/timesync", "", source);
  dir.kind = FileOp::Kind::kMkdir;
  dir.mode = 0755;
  dir.uid = inputs.timesync_uid;
  dir.gid = inputs.timesync_gid;
  plan.ops.push_back(dir);
  FileOp clock = file_op(Fs::kRoot, kTimesyncClockPath, "", source);
  clock.uid = inputs.timesync_uid;
  clock.gid = inputs.timesync_gid;
  clock.mtime = inputs.clock_floor;
  plan.ops.push_back(clock);
}

NodePlan plan_node(const ClusterSpec& spec, const NodeSpec& node, int number, const PlanInputs& inputs, bool may_init) {
  NodePlan plan;
  plan.node = node;
  plan.number = number;
  plan.gateway = node.name == gateway_node(spec).name;
  plan.package_set = package_set_name(spec, node);
  plan.join_only = node.role == NodeRole::kControlPlane && !may_init;
  plan.image_file = node.name + ".img";
  const DhcpServer dhcp_server =
      inputs.dhcp_server.value_or(choose_dhcp_server(spec.network.dhcp_server, inputs.base_release));
  const DhcpServerFacts& dhcp = dhcp_server_facts(dhcp_server);
  TemplateVars vars = node_vars(spec, node, number, dhcp_server);
  // Shown as a placeholder in a plan made before the PKI exists (--dry-run).
  vars["bootstrap_token"] = inputs.bootstrap_token.empty() ? "<bootstrap token>" : inputs.bootstrap_token;
  vars["ca_not_before"] = std::to_string(inputs.ca_not_before);
  vars["clock_floor"] = std::to_string(inputs.clock_floor);
  vars["join_only"] = plan.join_only ? "yes" : "no";
  // Only the card that may init with a virtual IP waits; every other card renders 0, so rebuilding
  // it from the same state dir gives the same bytes.
  const bool may_init_with_vip = holds_api_vip(spec, node) && !plan.join_only;
  vars["init_wait"] = std::to_string(may_init_with_vip && inputs.cluster_recorded ? kInitWaitRecordedSeconds : 0);
  vars["uses_api_vip"] = uses_api_vip(spec) ? "yes" : "no";

  // Root filesystem: first a fresh identity, then the common overlay, the role's, the gateway's.
  add_fresh_identity(plan);
  add_clock_floor(plan, inputs);
  add_tree(plan, "overlays/all", vars);
  if (is_hard_way(spec)) {
    // The hard way (docs/hard-way.md): every node's kubelet, kube-proxy and pod network as pibake
    // writes them; the control plane's etcd and components as services.
    add_tree(plan, "overlays/hard-way", vars);
    if (node.role == NodeRole::kControlPlane) add_tree(plan, "overlays/hard-way-control-plane", vars);
  } else {
    add_tree(plan, "overlays/kubeadm", vars);
    add_tree(plan, node.role == NodeRole::kControlPlane ? "overlays/control-plane" : "overlays/worker", vars);
    // Several control planes: keepalived holds the virtual IP, and each can join the others.
    if (holds_api_vip(spec, node)) add_tree(plan, "overlays/control-plane-vip", vars);
  }
  add_runtime(plan, spec, inputs.artifacts, vars);
  add_images(plan, spec, inputs.images);
  add_debs(plan, inputs);
  add_kubelet_dirs(plan);
  // Certificates, keys and kubeconfigs: the control plane's CAs, or a worker's own credentials.
  if (auto it = inputs.credentials.find(node.name); it != inputs.credentials.end()) {
    for (const FileOp& op : it->second) plan.ops.push_back(op);
  }
  // An etcd snapshot to restore before kubeadm init goes to the one card that may init.
  if (may_init && inputs.etcd_snapshot) {
    FileOp snap;
    snap.kind = FileOp::Kind::kCopyFile;
    snap.path = kEtcdRestorePath;
    snap.mode = 0600;                                                        // every Secret of the cluster is in it
    snap.source = "etcd snapshot " + base_name(inputs.etcd_snapshot->path);  // no path of the build machine
    snap.source_path = inputs.etcd_snapshot->path;
    snap.sha256 = inputs.etcd_snapshot->sha256;
    snap.size = inputs.etcd_snapshot->size;
    snap.source_identity = inputs.etcd_snapshot->identity;
    plan.ops.push_back(std::move(snap));
  }
  // Time: the gateway serves it (chrony), the others take it from the gateway.
  if (!plan.gateway) add_tree(plan, "overlays/non-gateway", vars);
  if (plan.gateway) {
    add_tree(plan, "overlays/gateway", vars);
    add_tree(plan, "dhcp/gateway", vars);
    add_tree(plan, std::string(dhcp.tree), vars);
  }

  // Boot partition: kernel parameters and the cloud-init NoCloud seed. The instance-id is derived
  // from the seed itself: the same spec gives the same id, any change a new one.
  std::string tokens = kMemoryCgroupTokens;
  if (plan.gateway && is_wifi(spec.network.uplink) && spec.network.uplink.wifi &&
      !spec.network.uplink.wifi->country.empty()) {
    tokens += " cfg80211.ieee80211_regdom=" + spec.network.uplink.wifi->country;
  }
  for (const std::string& path : inputs.cmdline_paths) {
    FileOp cmdline = file_op(Fs::kBoot, path, "", "kernel parameters (the base's boot layout)");
    cmdline.kind = FileOp::Kind::kCmdlineTokens;
    cmdline.cmdline_tokens = tokens;
    plan.ops.push_back(cmdline);
  }

  const std::string netplan_tmpl = plan.gateway ? "netplan/gateway/boot/firmware/network-config.tmpl"
                                                : "netplan/non-gateway/boot/firmware/network-config.tmpl";
  const std::string user_data_tmpl = "firmware/all/boot/firmware/user-data.tmpl";
  const std::string meta_data_tmpl = "firmware/all/boot/firmware/meta-data.tmpl";
  std::string network_config = render_resource(netplan_tmpl, vars);
  std::string user_data = render_resource(user_data_tmpl, vars);
  // The id is readable by all (meta-data, /var/lib/cloud): it digests the seed without its secrets.
  const std::vector<std::string> secrets = seed_secrets(spec);
  vars["instance_id"] =
      fmt::format("pibake-{}-{}-{}", spec.cluster.name, node.name,
                  sha256_hex(node.name + "\n" + redact(user_data + network_config, secrets)).substr(0, 12));
  // Seed files holding a secret are mode 0600 in the plan: node.json then records no digest of
  // them (FAT keeps no modes; the node mounts system-boot with fmask=0177, see docs/cluster.md).
  for (auto [path, text, source] : {std::tuple{"/user-data", &user_data, user_data_tmpl},
                                    std::tuple{"/network-config", &network_config, netplan_tmpl}}) {
    FileOp op = file_op(Fs::kBoot, path, *text, source);
    if (holds_secret(*text, secrets)) op.mode = 0600;
    plan.ops.push_back(std::move(op));
  }
  plan.ops.push_back(file_op(Fs::kBoot, "/meta-data", render_resource(meta_data_tmpl, vars), meta_data_tmpl));
  // Last: the record of everything above, for `pibake inspect`.
  plan.ops.push_back(file_op(Fs::kRoot, kNodeIdentityPath, render_node_identity(spec, plan), "pibake"));
  return plan;
}

}  // namespace

std::string render_node_identity(const ClusterSpec& spec, const NodePlan& node) {
  std::string files;
  for (const FileOp& op : node.ops) {
    if (!files.empty()) files += ",\n";
    std::string kind = op.kind == FileOp::Kind::kSymlink          ? "symlink"
                       : op.kind == FileOp::Kind::kCopyFile       ? "file"
                       : op.kind == FileOp::Kind::kExtractArchive ? "archive"
                       : op.kind == FileOp::Kind::kCmdlineTokens  ? "cmdline-tokens"
                       : op.kind == FileOp::Kind::kMkdir          ? "directory"
                       : op.kind == FileOp::Kind::kRemove         ? "removed"
                                                                  : "file";
    files += fmt::format("    {{\"fs\": {}, \"path\": {}, \"kind\": \"{}\", \"mode\": \"{:04o}\"",
                         json_string(to_string(op.fs)), json_string(op.path), kind, op.mode);
    const bool secret = (op.mode & 077) == 0 && op.kind != FileOp::Kind::kSymlink;
    if ((op.kind == FileOp::Kind::kWrite || op.kind == FileOp::Kind::kCopyFile) && secret) {
      // Secret files (keys, kubeconfigs, the token, a seed holding a password, an etcd snapshot):
      // their size only, never a digest, which would let a guessed secret be tested offline.
      files += fmt::format(", \"size\": {}, \"secret\": true",
                           op.kind == FileOp::Kind::kWrite ? op.content.size() : op.size);
    } else if (op.kind == FileOp::Kind::kWrite) {
      files += fmt::format(", \"size\": {}, \"sha256\": \"{}\"", op.content.size(), sha256_hex(op.content));
    } else if (op.kind == FileOp::Kind::kCopyFile || op.kind == FileOp::Kind::kExtractArchive) {
      files += fmt::format(", \"size\": {}, \"sha256\": \"{}\", \"artifact\": {}", op.size, op.sha256,
                           json_string(op.source));
    } else if (op.kind == FileOp::Kind::kSymlink) {
      files += ", \"data\": " + json_string(op.link_target);  // the key node.json has always had
    } else if (op.kind == FileOp::Kind::kCmdlineTokens) {
      files += ", \"data\": " + json_string(op.cmdline_tokens);
    }
    files += "}";
  }
  return fmt::format(
      "{{\n  \"pibake_version\": {},\n  \"cluster\": {},\n  \"domain\": {},\n  \"node\": {},\n  \"role\": {},\n"
      "  \"ip\": {},\n  \"gateway\": {},\n  \"kubernetes_version\": {},\n  \"kubernetes_mode\": {},\n"
      "  \"containerd_version\": {},\n"
      "  \"runc_version\": {},\n  \"cni_plugins_version\": {},\n  \"files\": [\n{}\n  ]\n}}\n",
      json_string(PIBAKE_VERSION), json_string(spec.cluster.name), json_string(spec.cluster.domain),
      json_string(node.node.name), json_string(to_string(node.node.role)), json_string(node.node.ip),
      node.gateway ? "true" : "false", json_string(spec.kubernetes.version), json_string(spec.kubernetes.mode),
      json_string(spec.containerd.version),
      json_string(spec.runc.version), json_string(spec.cni_plugins.version), files);
}

const char* to_string(Fs fs) { return fs == Fs::kBoot ? "system-boot" : "writable"; }

std::vector<std::string> missing_cmdline_tokens(const std::string& existing, const std::string& tokens) {
  std::istringstream have_in(existing.substr(0, existing.find('\n'))), want_in(tokens);
  std::vector<std::string> have, missing;
  for (std::string t; have_in >> t;) have.push_back(t);
  for (std::string t; want_in >> t;) {
    if (std::find(have.begin(), have.end(), t) == have.end()) {
      missing.push_back(t);
      have.push_back(t);
    }
  }
  return missing;
}

std::string ensure_cmdline_tokens(const std::string& existing, const std::string& tokens) {
  auto nl = existing.find('\n');
  std::string first = existing.substr(0, nl);
  std::string rest = nl == std::string::npos ? "\n" : existing.substr(nl);
  while (!first.empty() && (first.back() == ' ' || first.back() == '\r')) first.pop_back();
  for (const std::string& t : missing_cmdline_tokens(existing, tokens)) first += (first.empty() ? "" : " ") + t;
  return first + rest;
}

uint64_t NodePlan::package_bytes() const {
  uint64_t total = 0;
  const std::string dir = std::string(kCardDebsDir) + "/";
  for (const FileOp& op : ops)
    if (op.fs == Fs::kRoot && op.kind == FileOp::Kind::kCopyFile && op.path.starts_with(dir)) total += op.size;
  return total;
}

uint64_t NodePlan::root_bytes_needed(uint64_t block_size) const {
  uint64_t total = 0;
  for (const FileOp& op : ops) {
    if (op.fs != Fs::kRoot) continue;
    uint64_t bytes = op.kind == FileOp::Kind::kCopyFile || op.kind == FileOp::Kind::kExtractArchive ? op.size
                     : op.kind == FileOp::Kind::kSymlink ? op.link_target.size()
                                                         : op.content.size();
    total += (bytes + block_size - 1) / block_size * block_size + block_size;
  }
  return total;
}

std::vector<std::string> select_nodes(const ClusterSpec& spec, const std::vector<std::string>& only) {
  std::vector<std::string> all, selected;
  for (const NodeSpec& n : spec.nodes) all.push_back(n.name);
  for (const std::string& name : only) {
    if (std::find(all.begin(), all.end(), name) == all.end()) {
      throw Error("no node named \"" + name + "\" in the spec (nodes: " + join(all, ", ") + ")");
    }
  }
  for (const std::string& name : all) {
    if (only.empty() || std::find(only.begin(), only.end(), name) != only.end()) selected.push_back(name);
  }
  return selected;
}

std::vector<std::string> api_server_sans(const ClusterSpec& spec) {
  std::vector<std::string> sans;
  if (uses_api_vip(spec)) sans.push_back(api_endpoint_address(spec));
  for (const NodeSpec* cp : control_plane_nodes(spec)) {
    for (const std::string& san : {cp->ip, cp->name, cp->name + "." + spec.cluster.domain}) sans.push_back(san);
  }
  for (const std::string& san : spec.kubernetes.api_server_sans) sans.push_back(san);
  return sans;
}

std::string init_node_name(const ClusterSpec& spec, const std::vector<std::string>& selected) {
  // With a single control plane there is no one to join: it always inits. With several, regenerating
  // a card never makes a second, empty cluster.
  if (!uses_api_vip(spec)) return control_plane_node(spec).name;
  for (const NodeSpec* cp : control_plane_nodes(spec))
    if (std::find(selected.begin(), selected.end(), cp->name) == selected.end()) return "";
  return control_plane_node(spec).name;
}

BuildPlan make_plan(const ClusterSpec& spec, const std::vector<std::string>& only, const PlanInputs& inputs) {
  const std::vector<std::string> selected = select_nodes(spec, only);
  const std::string init_node = init_node_name(spec, selected);
  BuildPlan plan;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const NodeSpec& node = spec.nodes[i];
    if (std::find(selected.begin(), selected.end(), node.name) == selected.end()) continue;
    plan.nodes.push_back(plan_node(spec, node, static_cast<int>(i) + 1, inputs, node.name == init_node));
  }
  return plan;
}

std::string describe(const BuildPlan& plan) {
  std::string out;
  for (const NodePlan& n : plan.nodes) {
    out += fmt::format("{} ({}, {}{}): {}\n", n.node.name, n.node.ip, to_string(n.node.role),
                       n.gateway ? ", gateway" : "", n.image_file);
    for (const FileOp& op : n.ops) {
      std::string line;
      switch (op.kind) {
        case FileOp::Kind::kWrite:
          line = fmt::format("write {}:{} {} bytes, {:04o}", to_string(op.fs), op.path, op.content.size(), op.mode);
          break;
        case FileOp::Kind::kMkdir:
          line = fmt::format("mkdir {}:{}", to_string(op.fs), op.path);
          break;
        case FileOp::Kind::kSymlink:
          line = fmt::format("link  {}:{} -> {}", to_string(op.fs), op.path, op.link_target);
          break;
        case FileOp::Kind::kRemove:
          line = fmt::format("rm    {}:{}", to_string(op.fs), op.path);
          break;
        case FileOp::Kind::kCmdlineTokens:
          line = fmt::format("edit  {}:{} + {}", to_string(op.fs), op.path, op.cmdline_tokens);
          break;
        case FileOp::Kind::kCopyFile:
          line =
              fmt::format("copy  {}:{} {} bytes, {:04o} ({})", to_string(op.fs), op.path, op.size, op.mode, op.source);
          break;
        case FileOp::Kind::kExtractArchive:
          line = fmt::format("untar {}:{}/ {} bytes, {:04o} ({}{})", to_string(op.fs), op.path, op.size, op.mode,
                             op.source, op.member_prefix.empty() ? "" : ", members under " + op.member_prefix);
          break;
      }
      out += "  " + line + "\n";
    }
  }
  return out;
}

}  // namespace pibake
