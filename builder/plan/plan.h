// The build plan: for every node, the exact files pibake writes into its two filesystems.
// Pure data computed from the spec and the built-in templates (docs/conventions.md, "The plan is data"): printable with
// `pibake build --dry-run`, tested without any image.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plan/artifacts.h"
#include "plan/dhcp_server.h"
#include "plan/etcd_snapshot.h"
#include "plan/images.h"
#include "plan/os_release.h"
#include "spec/spec.h"

namespace pibake {

enum class Fs { kBoot, kRoot };  // system-boot (FAT) or writable (ext4)
const char* to_string(Fs fs);

struct FileOp {
  // kWrite: `content` becomes the file at `path`.
  // kMkdir: the directory `path` and its missing parents.
  // kSymlink: `path` becomes a symlink to `link_target`.
  // kCmdlineTokens: the first line of the existing file must contain every kernel parameter of
  // `cmdline_tokens`; missing ones are appended (see ensure_cmdline_tokens). The file must exist: a
  // command line the firmware does not read is never created.
  // kRemove: on the root filesystem like `rm -rf` (files, symlinks, whole directories); on
  // system-boot a file or an empty directory. Absent paths are fine.
  // kCopyFile: the file at `source_path` (a cached artifact, or a file the user gave: see
  // source_identity) becomes `path`.
  // kExtractArchive: the regular files of the archive at `source_path` that lie directly under
  // `member_prefix` are written into the directory `path`.
  enum class Kind { kWrite, kMkdir, kSymlink, kRemove, kCmdlineTokens, kCopyFile, kExtractArchive };
  Kind kind = Kind::kWrite;
  Fs fs = Fs::kRoot;
  std::string path;  // absolute inside the filesystem: "/etc/hostname", "/meta-data"
  // kWrite: the file's bytes, exactly as written.
  std::string content;
  // kSymlink: the link's target as stored in the link ("/etc/machine-id", "../run/x"), not resolved.
  std::string link_target;
  // kCmdlineTokens: kernel parameters separated by spaces ("cgroup_enable=memory cgroup_memory=1").
  std::string cmdline_tokens;
  // kExtractArchive: the archive members installed are the files directly under this prefix
  // ("bin/"); "" installs the files at the archive's top level (ArtifactSource::member_prefix).
  std::string member_prefix;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  // kWrite on the root filesystem: the file's times (atime, mtime, ctime), Unix seconds, where the
  // time is what the file says (the clock floor); 0: the image's timestamp (util/build_time.h).
  int64_t mtime = 0;
  std::string source;       // what produced it ("overlays/all/etc/hostname.tmpl"), for --dry-run
  std::string source_path;  // kCopyFile, kExtractArchive: the file in the cache (or the user's)
  std::string sha256;       // kCopyFile, kExtractArchive: the file's sha256 (lower-case hex)
  uint64_t size = 0;        // kCopyFile, kExtractArchive: bytes installed
  // kCopyFile of a file outside the cache (an etcd snapshot the user gave): its identity
  // (util/files.h file_content_identity) when checked. Set, the writer refuses the file unless it
  // opens with that identity, copies exactly `size` bytes and refuses the node unless they hash to
  // `sha256`. Empty for cache blobs, which the cache checks.
  std::string source_identity;
};

struct NodePlan {
  NodeSpec node;
  int number = 0;  // 1-based position in spec.nodes
  bool gateway = false;
  // A control plane whose first boot may only join the cluster (`kubeadm join --control-plane`),
  // never run `kubeadm init` (make_plan decides; docs/cluster.md, "Who inits").
  bool join_only = false;
  std::string package_set;  // the PackageSet::name its .debs come from (package_set_name)
  std::string image_file;   // "node-1.img"
  std::vector<FileOp> ops;

  // Bytes of the .debs this node carries for first boot (in kCardDebsDir).
  uint64_t package_bytes() const;

  // Bytes the root filesystem needs for this node's files (data rounded up to `block_size`, plus
  // one block per file for metadata): what decides whether the image must grow.
  uint64_t root_bytes_needed(uint64_t block_size) const;
};

struct BuildPlan {
  std::vector<NodePlan> nodes;
};

// What the plan needs besides the spec, gathered by the pipeline's fetch and PKI stages. Empty for
// a plan shown before anything is fetched (--dry-run): then binaries and keys are left out.
struct PlanInputs {
  std::vector<ResolvedArtifact> artifacts;  // installed on every node
  // Every image archive any node needs; each node gets those node_images() names for its role.
  // Empty before anything is fetched (--dry-run): then no image is planned.
  std::vector<ImageArchive> images;
  // Per package set (PackageSet::name, packages.h): the .debs its nodes carry in kCardDebsDir.
  std::map<std::string, std::vector<ResolvedDeb>> debs;
  std::string bootstrap_token;  // for the control plane's kubeadm config (secret)
  int64_t ca_not_before = 0;    // the cluster CA's notBefore (Unix time)
  // The earliest time a node's clock may show at boot (Unix seconds): at or after the notBefore of
  // every certificate pibake issued for the nodes built (and the CA's). Written as the mtime of
  // kClockEpochPath and kTimesyncClockPath; 0 (no PKI yet: --dry-run) writes neither.
  int64_t clock_floor = 0;
  // Owner of /var/lib/systemd/timesync and its clock file: the base's systemd-timesync user and its
  // group (what systemd-timesyncd.service's StateDirectory= gives them), root when it has none.
  uint32_t timesync_uid = 0;
  uint32_t timesync_gid = 0;
  // Per node name: its certificates, keys and kubeconfigs (kWrite ops with their modes).
  std::map<std::string, std::vector<FileOp>> credentials;
  // The kernel command line files of the base's boot layout (BootLayout::cmdlines: the one that
  // boots first, "/current/cmdline.txt" on Ubuntu 26.04, "/cmdline.txt" on 24.04). Empty when the
  // base is not known yet (--dry-run before `pibake fetch`): then no command line op is planned.
  std::vector<std::string> cmdline_paths;
  // The base's release (BaseImage::os): what `network.dhcp_server: auto` goes by (choose_dhcp_server)
  // when `dhcp_server` is not set. Empty when the base is not known yet.
  OsRelease base_release;
  // The gateway's DHCP server as the package step decided it (FetchedPackages::dhcp_server: for
  // `auto`, by what the release's archive has); unset: choose_dhcp_server by base_release.
  std::optional<DhcpServer> dhcp_server;
  // The state dir recorded this cluster before this build (StateDir::identity): the card that may
  // run kubeadm init then first looks for a running cluster for kInitWaitRecordedSeconds.
  bool cluster_recorded = false;
  // `--etcd-snapshot FILE`, checked (etcd_snapshot.h): put at kEtcdRestorePath on the card that may
  // run kubeadm init (init_node_name), whose first boot restores it before the init.
  std::optional<EtcdSnapshot> etcd_snapshot;
};

// How long the card that may init looks for a running cluster (the endpoint, or another control
// plane's etcd) before it inits, when the state dir had recorded the cluster before the build: the
// cluster may have formed, and its other control planes may still be booting (docs/cluster.md,
// "Who inits"). A first build's card looks once.
inline constexpr int kInitWaitRecordedSeconds = 600;

// The names of the nodes to build, in spec order: every node, or those `only` names (--node).
// An unknown name throws pibake::Error listing the spec's nodes. The one place that checks --node.
std::vector<std::string> select_nodes(const ClusterSpec& spec, const std::vector<std::string>& only);

// The node whose card may run `kubeadm init` in a build of the nodes `selected` (names): the first
// control plane, unless the spec has a virtual IP (several control planes) and the build leaves one
// of them out: then the cluster exists and every rebuilt control plane joins it, and this is "".
// With a single control plane it is that node's name even when `selected` leaves it out: callers
// check it is among `selected`. (docs/cluster.md, "Who inits".) Throws nothing.
std::string init_node_name(const ClusterSpec& spec, const std::vector<std::string>& selected);

// The API server certificate's names beyond the defaults, as kubeadm's ClusterConfiguration
// apiServer.certSANs holds them: the virtual IP (when uses_api_vip), then each control plane's
// address, name and FQDN (<name>.<cluster.domain>), then the spec's kubernetes.api_server_sans, in
// that order, repeats kept. Throws nothing.
std::vector<std::string> api_server_sans(const ClusterSpec& spec);

// Builds the plan for every node in spec.nodes (the spec must have passed validate()).
// `only` restricts it to the named nodes (--node NAME); an unknown name throws pibake::Error.
BuildPlan make_plan(const ClusterSpec& spec, const std::vector<std::string>& only = {}, const PlanInputs& inputs = {});

// Where each image records what pibake made of it (read by `pibake inspect`): JSON with the
// cluster, node, role, address, gateway flag, versions, kubernetes_mode, and every file pibake wrote
// (filesystem, path, size, sha256; symlinks with their target).
inline constexpr const char* kNodeIdentityPath = "/etc/pibake/node.json";
// The most `pibake inspect` reads of a card's node.json (bytes): pibake writes tens of KiB.
inline constexpr uint64_t kMaxNodeIdentityBytes = uint64_t{1} << 20;
// Where a control plane of a cluster with a virtual IP finds kubeadm join's discovery kubeconfig
// (JoinConfiguration discovery.file.kubeConfigPath): its own kubelet client credentials, 0600.
inline constexpr const char* kDiscoveryKubeconfig = "/etc/kubernetes/pibake/discovery.conf";

// The kubelet configuration a worker gets (what `kubeadm join` would have written); every
// directory it names (`staticPodPath`) is created in the image too.
inline constexpr const char* kKubeletConfigPath = "/var/lib/kubelet/config.yaml";
std::string render_node_identity(const ClusterSpec& spec, const NodePlan& node);

// The clock floor (docs/cluster.md, "The clock without a network"): systemd's PID 1 advances the
// clock at boot to the latest of its build time and these files' mtimes (systemd(1), "System
// clock epoch"); systemd-timesyncd advances it to kTimesyncClockPath's mtime when it starts
// (systemd-timesyncd.service(8)).
inline constexpr const char* kClockEpochPath = "/usr/lib/clock-epoch";
inline constexpr const char* kTimesyncClockPath = "/var/lib/systemd/timesync/clock";

// Human-readable listing of the plan, one line per file operation.
std::string describe(const BuildPlan& plan);

// Kubernetes on Raspberry Pi kernels needs the memory cgroup, which they disable by default.
inline constexpr const char* kMemoryCgroupTokens = "cgroup_enable=memory cgroup_memory=1";

// cmdline.txt holds one line; only the first is read by the firmware. The kernel parameters of
// `tokens` (separated by white space) that the first line of `existing` (a cmdline.txt's text)
// lacks, each once, in their order; parameters are compared whole ("quiet" is not "quiet=1").
// Empty when every one is there. What ensure_cmdline_tokens appends and `pibake inspect` checks.
std::vector<std::string> missing_cmdline_tokens(const std::string& existing, const std::string& tokens);

// Appends each of `tokens` (space-separated) that the first line lacks (missing_cmdline_tokens),
// keeps every other token and their order, and is idempotent: applying it twice changes nothing.
std::string ensure_cmdline_tokens(const std::string& existing, const std::string& tokens);

}  // namespace pibake
