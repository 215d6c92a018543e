// The build pipeline, one step per function call in run_build() (docs/conventions.md, "One pipeline, one context").
#include "pipeline/build.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "pipeline/base_bmap.h"
#include "pipeline/base_checks.h"
#include "pipeline/base_image.h"
#include "pipeline/cluster_secrets.h"
#include "pipeline/fetch_artifacts.h"
#include "pipeline/fetch_base.h"
#include "pipeline/fetch_images.h"
#include "pipeline/fetch_packages.h"
#include "pipeline/in_place.h"
#include "pipeline/node_image.h"
#include "pipeline/resolve_version.h"
#include "pki/pki.h"
#include "plan/mirrors.h"
#include "plan/plan.h"
#include "spec/compat.h"
#include "state/state_dir.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

bool file_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// With no keys in the spec, the user's own public keys (~/.ssh/*.pub) are what they expect to
// log in with; they are public, so reading them is harmless.
void add_default_ssh_keys(ClusterSpec& spec) {
  if (!spec.access.ssh_authorized_keys.empty()) return;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return;
  std::string dir = std::string(home) + "/.ssh";
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".pub" && entry.is_regular_file(ec)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("ssh-", 0) == 0 || line.rfind("ecdsa-", 0) == 0 || line.rfind("sk-", 0) == 0) {
        spec.access.ssh_authorized_keys.push_back(line);
        fmt::print("using SSH key from {}\n", f);
      }
    }
  }
}

void report_problems(const ClusterSpec& spec, const std::vector<Diagnostic>& problems) {
  if (problems.empty()) return;
  for (const Diagnostic& d : problems) print_stderr(fmt::format("{}\n", format_diagnostic(spec, d)));
  std::string where = spec.source_path.empty() ? "the spec" : spec.source_path;
  throw Error(fmt::format("{} problem{} in {}", problems.size(), problems.size() == 1 ? "" : "s", where));
}

// True for the names of what a build writes into the output directory (images, their block maps,
// compressed copies and checksums, admin.kubeconfig, cluster.yaml).
bool is_output_name(const std::string& name) {
  if (name == "admin.kubeconfig" || name == "cluster.yaml") return true;
  for (const char* suffix :
       {".img", ".img.bmap", ".img.zst", ".img.xz", ".img.zst.sha256", ".img.xz.sha256", ".img.ranges"}) {
    if (name.ends_with(suffix)) return true;
  }
  return false;
}

// Removes the temporaries (".<output>.tmp") a killed build (SIGKILL, power loss) left in `dir`
// and says so: only regular files of ours named after one of our outputs. Call with the
// directory's lock held, so no running build's temporaries are touched.
void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string final_name;
    const std::string name = entry.path().filename();
    if (!is_temp_name(name, &final_name) || !is_output_name(final_name)) continue;
    struct stat st {};
    if (lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) continue;
    if (unlink(entry.path().c_str()) == 0) {
      fmt::print("removed {}/{}, left by an earlier build that was killed\n", dir, name);
    }
  }
}

// Only one build at a time may write into an output directory. Holding the lock, it removes the
// temporaries a killed build left there.
class OutDirLock {
 public:
  explicit OutDirLock(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create output directory " + dir + ": " + ec.message());
    fd_.reset(open((dir + "/.pibake.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) throw Error("cannot write to output directory " + dir + ": " + std::strerror(errno));
    if (flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) throw Error("another pibake build is writing to " + dir);
    remove_stale_temporaries(dir);
    recover_in_place_writes(dir);
  }

 private:
  UniqueFd fd_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Fetched {
  std::vector<ResolvedArtifact> artifacts;
  std::vector<ImageArchive> images;                      // the container images' archives
  std::string base_image;                                // a raw image to build from
  std::map<std::string, std::vector<ResolvedDeb>> debs;  // per package set (packages.h)
};

// A Kubernetes channel (kubernetes.version stable, stable-1.NN) becomes a release: the one the
// lock pins, else the channel's current one (pinned in `lock` when given). The release is then
// checked against the compatibility table like a release written in the spec.
void resolve_channel(ClusterSpec& spec, LockFile* lock, Cache& cache, Fetcher& fetcher, bool offline) {
  if (!is_kubernetes_channel(spec.kubernetes.version)) return;
  std::string release = resolve_kubernetes_version(spec, lock, cache, fetcher, offline);
  fmt::print("kubernetes.version {} is {}\n", spec.kubernetes.version, release);
  spec.kubernetes.version = release;
  report_problems(spec, validate(spec));
  for (const Diagnostic& w : version_warnings(spec, utc_date_today()))
    fmt::print(stderr, "warning: {}\n", format_diagnostic(spec, w));
}

// The fetch stage, shared by `build` and `fetch`: a Kubernetes channel, every artifact and the
// base image, resolved through the state dir's lock file (which gains what was resolved anew),
// verified, cached. The caller holds the StateDirLock.
Fetched fetch_all(ClusterSpec& spec, const StateDir& state, const std::string& base_override, bool offline) {
  Cache cache(Cache::default_dir());
  std::unique_ptr<Fetcher> fetcher = make_curl_fetcher();
  LockFile lock = state.load_lock();
  const std::string lock_before = render_lock(lock);
  resolve_channel(spec, &lock, cache, *fetcher, offline);
  Fetched out;
  out.artifacts = fetch_artifacts(spec, lock, cache, *fetcher, offline);
  out.images = fetch_images(spec, lock, cache, *fetcher, offline);
  out.base_image = obtain_base_image(spec, base_override, offline, cache, *fetcher, &lock);
  if (render_lock(lock) != lock_before) state.save_lock(lock);
  return out;
}

// The first-boot packages (fetch_packages), resolved against the base's own dpkg status through
// the state dir's lock file. Called once the base has passed every check that needs no download.
// The lock is saved with what was pinned, even when a package then fails.
FetchedPackages fetch_base_packages(const ClusterSpec& spec, const StateDir& state, const BaseImage& base,
                                    bool offline) {
  Cache cache(Cache::default_dir());
  std::unique_ptr<Fetcher> fetcher = make_curl_fetcher();
  LockFile lock = state.load_lock();
  const std::string lock_before = render_lock(lock);
  FetchedPackages debs;
  try {
    debs = fetch_packages(spec, {base.os, base.dpkg_status}, lock, cache, *fetcher, offline);
  } catch (...) {
    if (render_lock(lock) != lock_before) state.save_lock(lock);
    throw;
  }
  if (render_lock(lock) != lock_before) state.save_lock(lock);
  return debs;
}

// What the container images add to each node's root filesystem (docs/images.md).
void print_image_summary(const BuildPlan& plan) {
  for (const NodePlan& n : plan.nodes) {
    uint64_t bytes = 0;
    int count = 0;
    for (const FileOp& op : n.ops) {
      if (op.kind == FileOp::Kind::kCopyFile && op.path.rfind(std::string(kImageArchiveDir) + "/", 0) == 0) {
        bytes += op.size;
        ++count;
      }
    }
    if (count > 0) {
      fmt::print("{}: container images: {} images, {} bytes ({:.1f} MiB) in {}\n", n.node.name, count, bytes,
                 static_cast<double>(bytes) / (1 << 20), kImageArchiveDir);
    }
  }
}

// The state dir's lock file, read only when the state dir exists: never created here (--dry-run).
LockFile existing_lock(const ClusterSpec& spec) {
  const std::string state_path = StateDir::path_for(spec);
  return file_exists(state_path) ? StateDir(state_path).load_lock() : LockFile{};
}

// The base image for --dry-run, only when it is already on this machine (a local raw image, or
// the cache holds it): nothing is downloaded, nothing written to the state dir. nullopt otherwise,
// with the reason in `why`: empty when the cache lacks it (NotInCache), else what is wrong with it.
std::optional<BaseImage> cached_base_image(const ClusterSpec& spec, const std::string& base_override,
                                           std::string& why) {
  try {
    Cache cache(Cache::default_dir());
    std::unique_ptr<Fetcher> fetcher = make_curl_fetcher();
    LockFile lock = existing_lock(spec);
    return inspect_base_image(obtain_base_image(spec, base_override, /*offline=*/true, cache, *fetcher, &lock));
  } catch (const NotInCache&) {
    why.clear();
    return std::nullopt;
  } catch (const Error& e) {
    why = e.what();
    return std::nullopt;
  }
}

// Writes every node's image, `opts.jobs` at a time. The first failure stops the others from
// starting new nodes; images already complete keep their final names, partial ones are removed
// (or, edited in place, rolled back to the previous image: write_node_image).
constexpr unsigned kMaxDefaultJobs = 16;
void write_node_images(const BaseImage& base, const BuildPlan& plan, const BuildOptions& opts) {
  const size_t count = plan.nodes.size();
  // The base's hashes, read once per base (kept in the cache): node block maps hash only what
  // pibake wrote.
  const BaseBlockMap base_map = base_block_map(base.path, Cache::default_dir());
  // Writing a node waits on the disk (libext2fs's and pibake's fsyncs) about as long as it copies,
  // so more nodes are in flight than there are cores: with one per core, both could wait on an
  // fsync while the disk idles between copies. Measured (docs/speed.md): on 2 cores, 16 nodes
  // took 1.6x 16 cp with 2 at once and 1.1x with 8; each adds about 5 MiB of RSS, hence the cap.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  unsigned jobs = opts.jobs != 0 ? opts.jobs : std::min(kMaxDefaultJobs, 4 * cores);
  jobs = static_cast<unsigned>(std::min<size_t>(jobs, count));
  // Fewer nodes than cores (regenerating one): each node's copy of the base uses the cores left,
  // unless --jobs set how much runs at once. A node written alone also starts writeback as it
  // copies (measured: faster alone, slower with several nodes at once; docs/speed.md).
  NodeWriteOptions write_opts;
  write_opts.base_map = &base_map;
  write_opts.copy_threads = opts.jobs != 0 ? 1 : std::max(1u, cores / std::max(1u, jobs));
  write_opts.start_writeback = jobs == 1;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr first_error;
  auto worker = [&] {
    for (size_t i = next++; i < count && !failed; i = next++) {
      const NodePlan& node = plan.nodes[i];
      try {
        auto start = std::chrono::steady_clock::now();
        NodeImageResult r = write_node_image(base, node, opts.out_dir, write_opts);
        std::lock_guard<std::mutex> lock(mu);
        std::string how = r.grown ? ", root filesystem grown" : "";
        if (r.in_place) {
          how += fmt::format(", regenerated in place ({} KiB rewritten)", (r.rewritten_bytes + 1023) / 1024);
        }
        fmt::print("{}: {} ({}, {}){}, packages {} KiB in {} in {:.1f} s\n", r.path, node.node.name, node.node.ip,
                   to_string(node.node.role), how, (node.package_bytes() + 1023) / 1024, kCardDebsDir,
                   seconds_since(start));
        std::fflush(stdout);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  // Signals go to this thread only: the clean-up handler then never runs while a worker is
  // half-way through registering a temporary file.
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < jobs; ++j) threads.emplace_back(worker);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  worker();
  for (std::thread& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  // compressed copies, on request, next to the sparse images (which stay the default output): one
  // at a time, as each encoder already uses every core.
  if (opts.compress != Compression::kNone) {
    for (const NodePlan& node : plan.nodes) compress_image(opts.out_dir + "/" + node.image_file, opts.compress);
  }
}

}  // namespace

ClusterSpec resolve_spec(const SpecOptions& opts) {
  std::string path = opts.config_path;
  if (path.empty() && file_exists("cluster.yaml")) path = "cluster.yaml";
  ClusterSpec spec = default_spec();
  if (!path.empty()) {
    if (!file_exists(path)) throw Error(path + ": " + std::strerror(errno));
    LoadResult loaded = load_spec(path);
    report_problems(loaded.spec, loaded.problems);
    spec = std::move(loaded.spec);
  }
  if (opts.nodes) {
    if (spec.nodes_listed) {
      throw Error(spec.source_path + " lists its nodes by name; --nodes cannot be combined with that list");
    }
    apply_node_count(spec, *opts.nodes);
    report_problems(spec, validate(spec));
  }
  for (const Diagnostic& w : spec_warnings(spec))
    print_stderr(fmt::format("warning: {}\n", format_diagnostic(spec, w)));
  return spec;
}

namespace {

// Rebuilding the only control plane of a cluster built before (--node) makes a card whose first
// boot runs `kubeadm init` again: a new, empty etcd unless it restores a snapshot (--etcd-snapshot;
// docs/cluster.md, "Several control planes", "etcd snapshots").
void warn_single_control_plane_rebuilt(const ClusterSpec& spec, const BuildOptions& opts,
                                       const std::vector<std::string>& names, bool cluster_recorded) {
  if (!cluster_recorded || opts.only_nodes.empty() || control_plane_nodes(spec).size() > 1) return;
  const std::string& cp = control_plane_node(spec).name;
  if (std::find(names.begin(), names.end(), cp) == names.end()) return;
  if (is_hard_way(spec)) {
    print_stderr(fmt::format(
        "warning: {} is the cluster's only control plane: its new card starts etcd with an empty data directory, "
        "a new, empty cluster (etcd held every object); the workers' kubelets register again, their certificates "
        "stay valid (docs/hard-way.md).\n",
        cp));
    return;
  }
  if (!opts.etcd_snapshot.empty()) {
    print_stderr(fmt::format(
        "note: {} is the cluster's only control plane: its new card restores the etcd snapshot {} before kubeadm "
        "init; what changed in the cluster after that snapshot was taken is lost.\n",
        cp, opts.etcd_snapshot));
    return;
  }
  print_stderr(fmt::format(
      "warning: {} is the cluster's only control plane: its new card runs kubeadm init and starts a new, empty "
      "cluster (etcd held every object), which the workers then join again. Restore the cluster's objects with "
      "--etcd-snapshot FILE, a snapshot you copied off {} earlier; with three control planes "
      "(nodes.control_planes: 3) a rebuilt one rejoins the cluster instead (docs/cluster.md, \"etcd snapshots\").\n",
      cp, cp));
}

// --etcd-snapshot FILE, checked (check_etcd_snapshot) and of this cluster: the state dir must hold
// the cluster CA (a snapshot restores the cluster this state dir built; its Secrets, tokens and the
// workers' certificates are only valid under that CA), and the snapshot its base64 (cluster-info).
// Reads the state dir without locking or creating it. Throws pibake::Error when the state dir has
// no pki/ca.crt, and check_etcd_snapshot's errors.
EtcdSnapshot check_cluster_etcd_snapshot(const ClusterSpec& spec, const std::string& path) {
  const std::string state = StateDir::path_for(spec);
  std::string ca;
  if (!read_file_if_exists(state + "/pki/ca.crt", ca) || ca.empty()) {
    throw Error("--etcd-snapshot " + path + ": the state dir " + state +
                " holds no cluster yet: a snapshot restores the cluster this state dir built (same CA), never a new "
                "one; use the state dir (pibake-state/) of the cluster the snapshot comes from");
  }
  return check_etcd_snapshot(path, pki::base64_encode(ca));
}

// Every check of the input that needs no download, in one place, before the first download and
// before the first write to the state dir or the output directory (issue 13): the spec (already
// loaded and validated), the node names (--node), the base image when it is a local file, the
// output directory. Returns the nodes to build. The checks that read the state dir (its modes, the
// cluster it records, its PKI) follow under its lock, still before any download.
std::vector<std::string> preflight(const ClusterSpec& spec, const BuildOptions& opts) {
  std::vector<std::string> names = select_nodes(spec, opts.only_nodes);
  check_base_image_source(spec, opts.base_image);
  for (size_t i = 0; i < spec.packages.keyring.size(); ++i) {
    const std::string key = keyring_path(spec, i);
    struct stat st {};
    if (stat(key.c_str(), &st) != 0)
      throw Error(fmt::format("packages.keyring[{}] {}: {}", i, key, std::strerror(errno)));
    if (!S_ISREG(st.st_mode)) {
      throw Error(
          fmt::format("packages.keyring[{}] {} is {}: expected an OpenPGP key file", i, key, file_kind(st.st_mode)));
    }
  }
  struct stat st {};
  if (stat(opts.out_dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    throw Error("output directory " + opts.out_dir + " exists and is not a directory");
  }
  if (!opts.etcd_snapshot.empty() && is_hard_way(spec)) {
    throw Error("--etcd-snapshot restores a snapshot before kubeadm init, and kubernetes.mode: hard-way runs no "
                "kubeadm: restore it on node-1 by hand with etcdutl (docs/hard-way.md)");
  }
  if (!opts.etcd_snapshot.empty()) {
    const std::string init_node = init_node_name(spec, names);
    if (init_node.empty() || std::find(names.begin(), names.end(), init_node) == names.end()) {
      throw Error(fmt::format(
          "--etcd-snapshot: this build makes no card that runs kubeadm init, and only that card restores a "
          "snapshot{}",
          uses_api_vip(spec)
              ? fmt::format(" ({} in a build of every control plane: {}); a control plane rebuilt alone joins the "
                            "running cluster and gets its data from it",
                            control_plane_node(spec).name, control_plane_names(spec))
              : fmt::format(" (the control plane, {}): add --node {}", control_plane_node(spec).name,
                            control_plane_node(spec).name)));
    }
  }
  return names;
}

}  // namespace

void run_build(const BuildOptions& opts) {
  auto start = std::chrono::steady_clock::now();
  // load spec → validate: every problem is reported before anything is written.
  ClusterSpec spec = resolve_spec(opts.spec);
  add_default_ssh_keys(spec);
  const std::vector<std::string> names = preflight(spec, opts);
  // The snapshot is read whole now, before the state dir or the output directory is touched.
  std::optional<EtcdSnapshot> snapshot;
  if (!opts.etcd_snapshot.empty()) snapshot = check_cluster_etcd_snapshot(spec, opts.etcd_snapshot);
  if (opts.dry_run) {
    // The plan without fetching anything but a channel's one-line file when the lock does not pin
    // it yet: binaries are listed by name only, the state dir is not touched, and the kernel
    // command line is shown by the base's boot layout when the base is already in the cache.
    if (is_kubernetes_channel(spec.kubernetes.version)) {
      Cache cache(Cache::default_dir());
      LockFile lock = existing_lock(spec);
      resolve_channel(spec, &lock, cache, *make_curl_fetcher(), opts.offline);
    }
    PlanInputs inputs;
    inputs.etcd_snapshot = snapshot;
    std::string why;
    if (std::optional<BaseImage> base = cached_base_image(spec, opts.base_image, why)) {
      fmt::print("base image {}: {}\n", base->path, describe_base(*base));
      inputs.cmdline_paths = base->boot_layout.cmdlines;
      inputs.base_release = base->os;
    } else {
      // Not on this machine yet, or not usable: said as it is, since a real build would stop there.
      const std::string reason = why.empty() ? "base image not in the cache yet (`pibake fetch` gets it)"
                                             : "base image not read (" + why + ")";
      fmt::print("{}: its boot layout, and so which kernel command line gets the memory cgroup tokens, is not known\n",
                 reason);
    }
    fmt::print("{}", describe(make_plan(spec, opts.only_nodes, inputs)));
    for (const ArtifactSource& a : artifact_sources(spec)) {
      fmt::print("  ({}) {} {} -> {}\n", a.control_plane_only ? "control plane" : "every node", a.name, a.version,
                 a.install_dir);
    }
    for (const PackageSet& set :
         package_sets(spec, choose_dhcp_server(spec.network.dhcp_server, inputs.base_release))) {
      fmt::print("  ({} nodes) packages {}, those the base lacks with their dependencies -> {}\n", set.name,
                 join_requested(set.requested), kCardDebsDir);
    }
    return;
  }
  // A base image on this machine (a raw .img) needs no download: its partitions, release, boot
  // layout and filesystems are checked now, before the state dir gets its first file.
  const std::string base_source = opts.base_image.empty() ? spec.base_image.url : opts.base_image;
  std::optional<BaseImage> checked_base;
  if (is_local_source(base_source)) {
    const std::string path = local_path(base_source);
    if (!path.ends_with(".xz"))
      checked_base = open_base_image(path, base_source);  // as obtain_base_image tells them apart
  }
  // The state dir, locked until the build ends.
  const StateDir state(StateDir::path_for(spec));
  const StateDirLock state_lock(state);
  // pki: the spec must still describe the cluster the state dir's keys belong to; then the CAs
  // (checked, or made once) and each node's credentials. No download is needed for any of it.
  const bool cluster_recorded = state.check_identity(spec);
  warn_single_control_plane_rebuilt(spec, opts, names, cluster_recorded);
  PlanInputs inputs;
  inputs.cluster_recorded = cluster_recorded;
  inputs.etcd_snapshot = snapshot;
  const pki::PkiState pki = gather_credentials(spec, state, names, inputs);
  OutDirLock out_lock(opts.out_dir);
  // fetch: the binaries and the base image (pinned by the lock file), verified, into the cache.
  Fetched fetched = fetch_all(spec, state, opts.base_image, opts.offline);
  inputs.artifacts = fetched.artifacts;
  inputs.images = fetched.images;
  const std::string& base_path = fetched.base_image;
  // prepare base: its partitions, release and boot layout, read, and its filesystems checked,
  // before any image is written.
  BaseImage base = checked_base && checked_base->path == base_path ? std::move(*checked_base)
                                                                   : open_base_image(base_path, base_source);
  inputs.cmdline_paths = base.boot_layout.cmdlines;
  inputs.base_release = base.os;
  if (base.timesync_user) {
    inputs.timesync_uid = base.timesync_user->uid;
    inputs.timesync_gid = base.timesync_user->gid;
  }
  // plan: every node's files, computed before the first byte of an image is written.
  // A base pibake cannot grow is refused before the packages are resolved (that needs no download).
  check_growth_possible(base, make_plan(spec, opts.only_nodes, inputs));
  FetchedPackages packages = fetch_base_packages(spec, state, base, opts.offline);
  inputs.debs = std::move(packages.debs);
  inputs.dhcp_server = packages.dhcp_server;
  BuildPlan plan = make_plan(spec, opts.only_nodes, inputs);
  check_growth_possible(base, plan);
  print_image_summary(plan);
  fmt::print("base image {}: boot p{} ({} MiB), root p{} ({} MiB, {} MiB free)\n  {}\n", base_path, base.boot.number,
             base.boot.size >> 20, base.root.number, base.root.size >> 20, base.root_free_bytes >> 20,
             describe_base(base));
  if (!base.booted_traces.empty()) {
    std::string traces;
    for (const std::string& t : base.booted_traces) traces += (traces.empty() ? "" : ", ") + t;
    print_stderr(fmt::format(
        "warning: the base image has booted before ({}); every node gets a fresh identity (empty machine-id, no "
        "random seed, no cloud-init instance state, no SSH host keys)\n",
        traces));
  }

  // per node: clone → root partition → boot partition → finalize, one node per core at a time.
  write_node_images(base, plan, opts);
  // The spec that was used, next to the outputs. It may hold the Wi-Fi password: owner-only.
  write_file_atomic(opts.out_dir + "/cluster.yaml", to_yaml(spec), 0600);
  std::string join = write_admin_kubeconfig(spec, pki, state, opts.out_dir);
  fmt::print("kubectl --kubeconfig {}/admin.kubeconfig get nodes   # once the cluster is up\n", opts.out_dir);
  if (!join.empty()) {
    fmt::print(
        "to join another machine by hand, within 24 h of node-1's first boot (later, run\n"
        "`kubeadm token create --print-join-command` on node-1):\n  {}\n",
        join);
  }
  fmt::print("{} image{} written to {}/ in {:.1f} s\n", plan.nodes.size(), plan.nodes.size() == 1 ? "" : "s",
             opts.out_dir, seconds_since(start));
}

void run_fetch(const SpecOptions& spec_opts, const std::string& base_image) {
  ClusterSpec spec = resolve_spec(spec_opts);
  const StateDir state(StateDir::path_for(spec));
  const StateDirLock state_lock(state);
  Fetched fetched = fetch_all(spec, state, base_image, /*offline=*/false);
  fetched.debs = fetch_base_packages(spec, state, inspect_base_image(fetched.base_image), /*offline=*/false).debs;
  for (const ResolvedArtifact& a : fetched.artifacts) {
    fmt::print("{} {} ready: {}\n", a.source.name, a.source.version, a.path);
  }
  for (const ImageArchive& i : fetched.images)
    fmt::print("image {} ready: {} ({} bytes)\n", i.reference, i.path, i.size);
  fmt::print("base image ready: {}\n", fetched.base_image);
  for (const auto& [set, debs] : fetched.debs) {
    uint64_t bytes = 0;
    for (const ResolvedDeb& d : debs) bytes += d.package.size;
    fmt::print("packages for the {} nodes ready: {} .deb{}, {} bytes\n", set, debs.size(), debs.size() == 1 ? "" : "s",
               bytes);
  }
}

void run_kubeconfig(const SpecOptions& spec_opts, const std::string& output) {
  ClusterSpec spec = resolve_spec(spec_opts);
  const std::string state_path = StateDir::path_for(spec);
  struct stat st {};
  if (stat(state_path.c_str(), &st) != 0) {  // refused without creating one (StateDir would)
    throw Error("no cluster in " + state_path + ": run `pibake build` first, or pass -c with the spec the cluster " +
                "was built from");
  }
  const StateDir state(state_path);
  const StateDirLock state_lock(state);
  AdminKubeconfig conf = issue_admin_kubeconfig(state);
  char until[32];
  std::tm tm{};
  gmtime_r(&conf.not_after, &tm);
  std::strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm);
  if (output == "-") {
    fmt::print("{}", conf.text);
    fmt::print(stderr, "kubernetes-admin certificate valid until {}\n", until);
    return;
  }
  auto slash = output.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::error_code ec;
    std::filesystem::create_directories(output.substr(0, slash), ec);
    if (ec) throw Error("cannot create the directory of " + output + ": " + ec.message());
  }
  write_file_atomic(output, conf.text, 0600);
  fmt::print("wrote {} (kubernetes-admin, certificate valid until {}; API server https://{}:6443)\n", output, until,
             conf.server_ip);
  fmt::print("kubectl --kubeconfig {} get nodes\n", output);
}

void run_init(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    if (errno == EEXIST) throw Error(path + " already exists; pibake init never overwrites it");
    throw Error("cannot create " + path + ": " + std::strerror(errno));
  }
  std::string text = init_template();
  ssize_t n = write(fd.get(), text.data(), text.size());
  bool ok = n == static_cast<ssize_t>(text.size()) && fsync(fd.get()) == 0;
  fd.reset();
  if (!ok) {
    unlink(path.c_str());
    throw Error("cannot write " + path);
  }
  fmt::print("wrote {}: edit it, then run pibake build\n", path);
}

}  // namespace pibake
