// The cluster spec (cluster.yaml): its model, built-in defaults, loading with source locations,
// validation that reports every problem at once, and the commented template `pibake init` writes.
// docs/spec.md documents every key, its default and every validation rule.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spec/net.h"

namespace pibake {

// The image `pibake build` starts from when neither cluster.yaml nor --base-image names one: a
// release folder, in which the newest "*-preinstalled-server-arm64+raspi.img.xz" its SHA256SUMS
// lists is taken (and then pinned by the lock file), so point releases need no pibake update.
inline constexpr std::string_view kDefaultBaseImageUrl = "https://cdimage.ubuntu.com/releases/26.04/release/";
// Ubuntu's archive for arm64 (and the other non-x86 architectures): the release pocket, -updates
// and -security all live there (docs/packages.md).
inline constexpr std::string_view kDefaultPackagesArchive = "https://ports.ubuntu.com/ubuntu-ports";

// Upper bound of nodes.count / --nodes: keeps a typo ("4000") from generating thousands of images.
inline constexpr int kMaxNodes = 1000;
// Upper bound of control-plane nodes: each is a member of stacked etcd, and etcd advises at most 7
// members (etcd FAQ, "What is maximum cluster size?"); the count must be odd (a majority survives).
inline constexpr int kMaxControlPlanes = 7;

// Values of kubernetes.cni pibake knows how to install: Flannel with the host-gw backend (routes
// between nodes on one L2 segment, no encapsulation) or the vxlan backend.
inline constexpr std::array<std::string_view, 2> kSupportedCnis = {"flannel-host-gw", "flannel-vxlan"};
// kubernetes.cni in hard-way mode (and only there): the bridge plugin with host-local IPAM on a
// fixed /24 of the pod CIDR per node, and static routes between the nodes (seeds 000 and 002).
inline constexpr std::string_view kBridgeCni = "bridge";
// kubernetes.mode: kubeadm builds the control plane on first boot (seeds 001 and 004); hard-way has
// pibake write every certificate, kubeconfig and unit, and nothing runs kubeadm (issue 14,
// docs/hard-way.md; seeds 000, 002 and 003).
inline constexpr std::string_view kModeKubeadm = "kubeadm";
inline constexpr std::string_view kModeHardWay = "hard-way";

// Where a value came from in cluster.yaml. line/column are 1-based; 0 means "no location"
// (a built-in default or a command-line override).
struct SourceLoc {
  int line = 0;
  int column = 0;

  bool known() const { return line > 0; }
  friend bool operator==(const SourceLoc&, const SourceLoc&) = default;
};

// One problem found in the spec. `field` is the spec path of the value ("nodes[2].ip",
// "network.subnet", "kubernetes"; "" for the whole file), `message` says what is wrong with it.
// Field paths: map keys joined by '.', list items as [i] counting from 0, mirrors entries as
// mirrors["<prefix>"] with '"' and '\' escaped by a backslash.
struct Diagnostic {
  std::string field;
  std::string message;
  // Set when the problem has a place of its own that spec.locations cannot give: an unknown or
  // duplicate key, a YAML syntax error. Otherwise format_diagnostic() looks `field` up.
  SourceLoc location;

  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

enum class NodeRole { kControlPlane, kWorker };
const char* to_string(NodeRole role);  // "control-plane", "worker": the spelling in cluster.yaml

struct NodeSpec {
  std::string name;  // hostname: RFC 1123 label
  std::string ip;    // as written; validated to be an IPv4 inside network.subnet
  NodeRole role = NodeRole::kWorker;

  friend bool operator==(const NodeSpec&, const NodeSpec&) = default;
};

struct WifiSpec {
  std::string ssid;
  std::string password;  // WPA passphrase, 8..63 characters; empty for an open network
  std::string country;   // ISO 3166-1 alpha-2, upper case ("GB")

  friend bool operator==(const WifiSpec&, const WifiSpec&) = default;
};

struct UplinkSpec {
  std::string interface = "wlan0";
  // Required content (ssid, country) when given; when absent on a "wl*" interface the uplink is
  // left unconfigured and spec_warnings() says so.
  std::optional<WifiSpec> wifi;

  friend bool operator==(const UplinkSpec&, const UplinkSpec&) = default;
};

struct ClusterIdentitySpec {
  std::string name = "pi";
  std::string domain = "cluster.home";

  friend bool operator==(const ClusterIdentitySpec&, const ClusterIdentitySpec&) = default;
};

struct BaseImageSpec {
  std::string url = std::string(kDefaultBaseImageUrl);  // .img.xz / .img URL, or a local path
  std::string sha256;                                   // hex; empty = take it from sha256sums
  std::string sha256sums;  // URL of the release's SHA256SUMS; empty = derived from url's folder

  friend bool operator==(const BaseImageSpec&, const BaseImageSpec&) = default;
};

// Where the .deb packages a node's first boot needs come from (docs/packages.md).
struct PackagesSpec {
  std::string archive = std::string(kDefaultPackagesArchive);  // an apt archive's root URL; mirrors: apply
  // Extra OpenPGP public-key files (binary or ASCII-armored) trusted for the archive's InRelease
  // besides the Ubuntu archive keys pibake carries: absolute, or relative to the spec's folder.
  std::vector<std::string> keyring;

  friend bool operator==(const PackagesSpec&, const PackagesSpec&) = default;
};

struct NetworkSpec {
  std::string subnet = "10.0.0.0/24";
  std::string gateway;  // name of the gateway node; empty = the first node
  UplinkSpec uplink;
  std::string dhcp_range = "10.0.0.100-10.0.0.200";
  std::vector<std::string> dns = {"8.8.8.8", "8.8.4.4"};
  // The gateway's DHCP server: "auto" (by the base's release, plan/dhcp_server.h), "isc-dhcp-server" or "kea".
  std::string dhcp_server = "auto";

  friend bool operator==(const NetworkSpec&, const NetworkSpec&) = default;
};

struct KubernetesSpec {
  // A release ("v1.37.1"), or a channel resolved through dl.k8s.io's release/stable.txt or
  // stable-1.NN.txt at the first build and pinned in the state dir's lock file.
  std::string version = "v1.37.1";
  std::string pod_cidr = "10.244.0.0/16";
  std::string service_cidr = "10.96.0.0/12";
  std::vector<std::string> api_server_sans = {"kubernetes.cluster.home"};
  std::string cni = "flannel-host-gw";
  std::string image_repository = "registry.k8s.io";
  // Build a Kubernetes minor newer than pibake's compatibility table (spec/compat.h) knows, with
  // the newest known minor's settings, instead of refusing it.
  bool allow_unknown_version = false;
  // The API server's virtual IP (docs/cluster.md, "Several control planes"): an IPv4 address in
  // network.subnet that keepalived moves between the control planes. Empty = none with one control
  // plane (the endpoint is its address), and with several the address api_vip_address() picks.
  std::string api_vip;
  // kModeKubeadm or kModeHardWay.
  std::string mode = std::string(kModeKubeadm);

  friend bool operator==(const KubernetesSpec&, const KubernetesSpec&) = default;
};

// A component pinned by its release tag without the leading "v" ("2.1.5").
struct ComponentSpec {
  std::string version;

  friend bool operator==(const ComponentSpec&, const ComponentSpec&) = default;
};

struct AccessSpec {
  std::string user = "ubuntu";
  std::vector<std::string> ssh_authorized_keys;
  std::string password_hash;  // crypt(3) hash; empty = none set

  friend bool operator==(const AccessSpec&, const AccessSpec&) = default;
};

struct ClusterSpec {
  ClusterIdentitySpec cluster;
  BaseImageSpec base_image;

  // Nodes: either a count (node-1..node-N, node-k at subnet .k, node-1 control-plane) or an
  // explicit list. After load_spec()/apply_node_count(), `nodes` always holds the full list, and
  // node_count its size.
  int node_count = 4;
  // nodes.control_planes: node-1..node-K of a `{count: N}` list are control planes (1 by default).
  int control_plane_count = 1;
  bool nodes_listed = false;  // true when cluster.yaml gave an explicit list
  std::vector<NodeSpec> nodes;

  NetworkSpec network;
  KubernetesSpec kubernetes;
  ComponentSpec containerd{"2.3.4"};
  ComponentSpec runc{"1.5.1"};
  ComponentSpec cni_plugins{"1.9.1"};
  // etcd's release, hard-way mode only (kubeadm runs the etcd image its compatibility entry
  // names). Empty: that same etcd release for the Kubernetes minor (etcd_version()).
  ComponentSpec etcd;
  AccessSpec access;
  PackagesSpec packages;

  // URL prefix -> replacement, applied to every download (longest prefix wins).
  std::vector<std::pair<std::string, std::string>> mirrors;

  // Where each value was read from, keyed by field path ("nodes[2].ip"). Filled by load_spec.
  std::map<std::string, SourceLoc> locations;
  std::string source_path;  // the file it was loaded from; empty for built-in defaults
};

// The built-in defaults: what `pibake build --nodes 4` uses with no cluster.yaml.
ClusterSpec default_spec();

// Replaces the node list by `count` generated nodes (node-1..node-N at subnet .1...N,
// node-1..node-K control planes, K = spec.control_plane_count). Used for `nodes: {count: N}` and for --nodes N. A node
// whose address would not be a host address of network.subnet (or when the subnet does not parse) gets an empty ip:
// validate() reports the subnet. A count outside 1..kMaxNodes leaves the list empty and validate() reports nodes.count.
// Forgets the locations of a previous explicit list.
void apply_node_count(ClusterSpec& spec, int count);

// True when both specs build the same cluster: every setting is equal, including the node list.
// Ignores where the values came from (locations, source_path) and how the node list was written
// (nodes_listed, node_count), so to_yaml()'s explicit list equals the `{count: N}` it came from.
bool same_settings(const ClusterSpec& a, const ClusterSpec& b);

// The node called `name`, or nullptr.
const NodeSpec* find_node(const ClusterSpec& spec, std::string_view name);
// network.gateway, or the first node's name when it is empty ("" when there are no nodes).
std::string gateway_name(const ClusterSpec& spec);
// The first control-plane node: the one whose card may run `kubeadm init` in a build of every
// control plane (make_plan; validate() ensures there is at least one; the first node otherwise).
// The spec must have at least one node.
const NodeSpec& control_plane_node(const ClusterSpec& spec);
// Every control-plane node, in spec order.
std::vector<const NodeSpec*> control_plane_nodes(const ClusterSpec& spec);
// Their names, in spec order, joined by ", " ("node-1, node-2, node-3"), for messages.
std::string control_plane_names(const ClusterSpec& spec);
// True when the API server is reached through a virtual IP: several control planes, or
// kubernetes.api_vip set.
bool uses_api_vip(const ClusterSpec& spec);
// True when `node` is a control plane of a spec that uses_api_vip(): it runs keepalived for the
// address and carries what joining needs (overlays/control-plane-vip, its package set).
bool holds_api_vip(const ClusterSpec& spec, const NodeSpec& node);
// The virtual IP (dotted IPv4): kubernetes.api_vip when set, else the highest host address of
// network.subnet that is no node's address, no DNS server's and not in network.dhcp_range. "" when the spec
// uses none (uses_api_vip) or no address is free (validate() reports that).
std::string api_vip_address(const ClusterSpec& spec);
// True when kubernetes.mode is hard-way.
bool is_hard_way(const ClusterSpec& spec);
// The etcd release a hard-way cluster runs ("3.6.6"): etcd.version, else the etcd that kubeadm
// runs for the spec's Kubernetes minor (compat.h, the image tag without its "-0" suffix); "" when
// the version is neither set nor known.
std::string etcd_version(const ClusterSpec& spec);
// A node's pod range in hard-way mode (docs/hard-way.md): the /24 of kubernetes.pod_cidr numbered
// by the node's host number in network.subnet (10.0.0.12 in 10.0.0.0/24 with pods in
// 10.244.0.0/16: 10.244.12.0/24). The address is fixed by the state dir's identity record, so a
// regenerated node keeps its range whatever the order of the node list. nullopt when the subnet,
// the address or the pod CIDR does not parse, the pod CIDR is longer than /24, or it has no /24 of
// that number (validate() reports each).
std::optional<Cidr> hard_way_pod_range(const ClusterSpec& spec, const NodeSpec& node);
// The address every kubeconfig, kubeadm's controlPlaneEndpoint and the join configuration use:
// the virtual IP when uses_api_vip(), else the control plane's own address.
std::string api_endpoint_address(const ClusterSpec& spec);

struct LoadResult {
  ClusterSpec spec;
  // Syntax, unknown keys, wrong types, and validate()'s; in file order (by diagnostic_location),
  // problems without a location last.
  std::vector<Diagnostic> problems;
};

// Reads a cluster.yaml: unknown keys, wrong types and YAML syntax errors are problems; missing keys
// (and keys with no value) keep their defaults. Runs validate() too, so `problems` is the complete
// list. `display_path` is the name used in messages (the path as the user gave it); load_spec()
// uses `path`. load_spec() throws pibake::Error when the file cannot be read.
LoadResult load_spec(const std::string& path);
LoadResult load_spec_text(const std::string& text, const std::string& display_path);

// Semantic checks of a spec, all collected: bad IPv4/CIDR, subnet too small for the nodes,
// duplicate names or addresses, nodes outside the subnet or on its network/broadcast address,
// pod/service/node ranges that overlap, DHCP pool outside the subnet or overlapping node addresses,
// no or several control-plane nodes, a Wi-Fi uplink without ssid/country, a bad hostname, ...
// (docs/spec.md lists them all).
std::vector<Diagnostic> validate(const ClusterSpec& spec);

// Settings that are valid but probably not what the user wants, for the CLI to print without
// failing: a Wi-Fi uplink with no Wi-Fi network configured (the default), which leaves the cluster
// without internet access on first boot.
std::vector<Diagnostic> spec_warnings(const ClusterSpec& spec);

// The version warnings spec_warnings() includes, for the UTC date `today` ("2026-11-30"): a
// Kubernetes minor past its end of life (naming the date), and a minor newer than pibake knows
// built through kubernetes.allow_unknown_version.
std::vector<Diagnostic> version_warnings(const ClusterSpec& spec, std::string_view today);
// Today's date in UTC as YYYY-MM-DD.
std::string utc_date_today();

// Where a problem is in the file: its own location, else its field's, else its nearest located
// parent's ("nodes[2].ip" -> "nodes[2]" -> "nodes"); unknown (0) when none has one.
SourceLoc diagnostic_location(const ClusterSpec& spec, const Diagnostic& d);

// "cluster.yaml:14:9: nodes[2].ip: \"10.0.0.300\" is not an IPv4 address": file:line:column when
// the problem, the field or its nearest parent has a location, else "cluster.yaml: field: message";
// just "field: message" when the spec has no source_path. An empty field is left out. Always one
// line: control characters (in the path, field or message) are written as \xNN.
std::string format_diagnostic(const ClusterSpec& spec, const Diagnostic& d);

// The commented cluster.yaml written by `pibake init`. Loading it gives default_spec().
std::string init_template();

// The spec as YAML, written next to the outputs ("the spec that was used"). load_spec_text() of
// this text gives back an equal spec (same_settings()).
std::string to_yaml(const ClusterSpec& spec);

}  // namespace pibake
