// The state dir's layout, creation and modes (see state_dir.h).
#include "state/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr std::string_view kStateDirName = "pibake-state";
constexpr mode_t kPrivateDirMode = 0700;
constexpr mode_t kSecretFileMode = 0600;
constexpr mode_t kLockFileMode = 0644;  // versions, URLs and hashes: nothing secret

std::string errno_text() { return std::strerror(errno); }

std::optional<std::string> read_kept(const std::string& path) {
  std::string text;
  if (!read_file_if_exists(path, text)) return std::nullopt;
  return text;
}

// mkdir 0700 unless it exists (then it is left as it is; check_private_dir says whether it will do).
void ensure_private_dir(const std::string& path, const std::string& what) {
  if (mkdir(path.c_str(), kPrivateDirMode) == 0) {
    // mkdir's mode is filtered by the umask; state must be exactly 0700, not narrower or wider.
    if (chmod(path.c_str(), kPrivateDirMode) != 0) throw Error("cannot chmod " + path + ": " + errno_text());
  } else if (errno != EEXIST) {
    throw Error("cannot create " + what + path + ": " + errno_text());
  }
}

// Removes the temporaries a killed run left (see StateDirLock), reporting each.
void remove_stale_temporaries(const std::string& state_dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> dirs = {state_dir};
  if (std::filesystem::is_directory(std::filesystem::symlink_status(state_dir + "/hard-way", ec))) {
    dirs.push_back(state_dir + "/hard-way");
  }
  for (const auto& entry : std::filesystem::directory_iterator(state_dir + "/nodes", ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) dirs.push_back(entry.path());
  }
  for (const std::filesystem::path& d : dirs) {
    for (const auto& entry : std::filesystem::directory_iterator(d, ec)) {
      const std::string name = entry.path().filename();
      struct stat st {};
      if (!is_temp_name(name) || lstat(entry.path().c_str(), &st) != 0 || st.st_uid != geteuid()) continue;
      if (S_ISREG(st.st_mode) && unlink(entry.path().c_str()) == 0) {
        fmt::print("removed {}, left by an earlier run that was killed\n", entry.path().string());
      } else if (S_ISDIR(st.st_mode) && d == state_dir && name == ".pki.tmp") {
        std::filesystem::remove_all(entry.path(), ec);
        if (!ec) fmt::print("removed {}/, an unfinished first build's keys (never used)\n", entry.path().string());
      }
    }
  }
}

}  // namespace

std::optional<std::string> read_private_file(const std::string& path, bool secret) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    if (errno == ELOOP) throw Error(path + " is a symbolic link; pibake only trusts regular files here");
    throw Error("cannot read " + path + ": " + errno_text());
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) throw Error("cannot stat " + path + ": " + errno_text());
  if (!S_ISREG(st.st_mode)) throw Error(path + " is not a regular file");
  if (st.st_uid != geteuid()) {
    throw Error(path + " belongs to uid " + std::to_string(st.st_uid) + ", not to the user running pibake");
  }
  mode_t forbidden = secret ? 077 : 022;
  if ((st.st_mode & forbidden) != 0) {
    throw Error(path + " has mode " + fmt::format("{:04o}", st.st_mode & 07777) + "; it must be " +
                (secret ? "0600 (run: chmod 600 " : "writable by its owner only (run: chmod 644 ") + path + ")");
  }
  if (static_cast<size_t>(st.st_size) > kMaxPrivateFileSize) throw Error(path + " is too large to be a PEM file");
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error("cannot read " + path + ": " + errno_text());
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

void make_private_dir(const std::string& path) {
  if (mkdir(path.c_str(), kPrivateDirMode) != 0) throw Error("cannot create " + path + ": " + errno_text());
  if (chmod(path.c_str(), kPrivateDirMode) != 0) throw Error("cannot chmod " + path + ": " + errno_text());
}

// Anyone who can read the state dir's keys owns the cluster, and anyone who can write them can swap
// the CA. So: ours, and closed to group and others.
void check_private_dir(const std::string& path, const char* what) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw Error("cannot open " + std::string(what) + " " + path + ": " + errno_text());
  if (!S_ISDIR(st.st_mode)) throw Error(std::string(what) + " " + path + " is not a directory");
  if (st.st_uid != geteuid()) {
    throw Error(std::string(what) + " " + path + " belongs to uid " + std::to_string(st.st_uid) +
                ", not to the user running pibake (uid " + std::to_string(geteuid()) +
                "); refusing to use cluster keys another user controls");
  }
  if ((st.st_mode & 077) != 0) {
    throw Error(
        fmt::format("{} {} has mode {:04o}; it holds the cluster's CA keys and must be 0700 (run: chmod 700 {})", what,
                    path, st.st_mode & 07777, path));
  }
}

std::string StateDir::path_for(const ClusterSpec& spec) {
  auto slash = spec.source_path.rfind('/');
  std::string dir = spec.source_path.empty() || slash == std::string::npos ? "." : spec.source_path.substr(0, slash);
  return dir + "/" + std::string(kStateDirName);
}

StateDir::StateDir(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw Error("no state dir given");
  ensure_private_dir(path_, "state dir ");
  check_private_dir(path_, "state dir");
}

std::string StateDir::pki_dir() const { return path_ + "/pki"; }

std::string StateDir::lock_path() const { return path_ + "/lock.yaml"; }

LockFile StateDir::load_lock() const {
  std::optional<std::string> text = read_kept(lock_path());
  return text ? parse_lock(*text, lock_path()) : LockFile{};
}

void StateDir::save_lock(const LockFile& lock) const {
  write_file_atomic(lock_path(), render_lock(lock), kLockFileMode);
}

std::optional<ClusterSpec> StateDir::identity() const {
  const std::string path = path_ + "/cluster.yaml";
  std::optional<std::string> text = read_kept(path);
  if (!text) return std::nullopt;
  LoadResult recorded = load_spec_text(*text, path);
  if (!recorded.problems.empty()) {
    throw Error(path + " (the spec the cluster was built from) no longer loads: " +
                format_diagnostic(recorded.spec, recorded.problems.front()));
  }
  return std::move(recorded.spec);
}

bool StateDir::check_identity(const ClusterSpec& spec) const {
  const std::string path = path_ + "/cluster.yaml";
  std::optional<ClusterSpec> recorded = identity();
  // The virtual IP pibake picked is recorded as if written: a node added later at that address
  // must not move the endpoint every kubeconfig and certificate names.
  auto pinned = [](ClusterSpec s) {
    if (uses_api_vip(s) && s.kubernetes.api_vip.empty()) s.kubernetes.api_vip = api_vip_address(s);
    return s;
  };
  if (!recorded) {
    write_file_atomic(path, to_yaml(pinned(spec)), kSecretFileMode);
    return false;
  }
  const ClusterSpec& was = *recorded;
  std::vector<std::string> changes;
  auto compare = [&](const char* field, const std::string& before, const std::string& now) {
    if (before != now) changes.push_back(fmt::format("{} was \"{}\", now \"{}\"", field, before, now));
  };
  compare("cluster.name", was.cluster.name, spec.cluster.name);
  compare("cluster.domain", was.cluster.domain, spec.cluster.domain);
  compare("network.subnet", was.network.subnet, spec.network.subnet);
  compare("kubernetes.pod_cidr", was.kubernetes.pod_cidr, spec.kubernetes.pod_cidr);
  // A kubeadm cluster's nodes cannot join a hard-way control plane, nor the other way round.
  compare("kubernetes.mode", was.kubernetes.mode, spec.kubernetes.mode);
  compare("kubernetes.service_cidr", was.kubernetes.service_cidr, spec.kubernetes.service_cidr);
  // The control-plane set is fixed at the first build: every control plane's card names the others
  // (keepalived's VRRP peers, the etcd members it asks), and a card that is not rebuilt would go on
  // naming the old set (docs/cluster.md, "Several control planes").
  compare("the control planes", control_plane_names(was), control_plane_names(spec));
  compare("the API server endpoint (kubernetes.api_vip, or the control plane's address)", api_endpoint_address(was),
          api_endpoint_address(spec));
  for (const NodeSpec& old : was.nodes) {
    const NodeSpec* now = find_node(spec, old.name);
    if (now == nullptr) continue;  // a node left out of this spec is not rebuilt: no conflict
    compare(("node " + old.name + "'s address").c_str(), old.ip, now->ip);
    compare(("node " + old.name + "'s role").c_str(), to_string(old.role), to_string(now->role));
  }
  if (changes.empty()) {
    // Nodes may be added; nodes left out of this spec stay in the record, so one that comes back
    // later with another address or role is still caught.
    ClusterSpec merged = spec;
    for (const NodeSpec& old : was.nodes) {
      bool ip_reused =
          std::any_of(merged.nodes.begin(), merged.nodes.end(), [&](const NodeSpec& n) { return n.ip == old.ip; });
      if (find_node(merged, old.name) == nullptr && !ip_reused) merged.nodes.push_back(old);
    }
    merged.nodes_listed = true;
    write_file_atomic(path, to_yaml(pinned(merged)), kSecretFileMode);
    return true;
  }
  std::string list;
  for (const std::string& c : changes) list += "\n  " + c;
  throw Error(
      fmt::format("this spec does not match the cluster whose keys are in {} (recorded in {}):{}\n"
                  "Images built from it could not join the running cluster. Undo those changes, or move {} away "
                  "to build a new cluster with new keys.",
                  path_, path, list, path_));
}

std::optional<std::string> StateDir::kubelet_kubeconfig(std::string_view node) const {
  return read_kept(path_ + "/nodes/" + std::string(node) + "/kubelet.conf");
}

void StateDir::keep_kubelet_kubeconfig(std::string_view node, const std::string& kubeconfig) const {
  const std::string dir = path_ + "/nodes/" + std::string(node);
  ensure_private_dir(path_ + "/nodes", "");
  ensure_private_dir(dir, "");
  write_file_atomic(dir + "/kubelet.conf", kubeconfig, kSecretFileMode);
}

namespace {
// hard-way/<name> with '/' spelled '-': one flat folder ("etcd/server-node-1" -> etcd-server-node-1).
std::string hard_way_file(const std::string& state_dir, std::string_view name) {
  std::string flat(name);
  for (char& c : flat)
    if (c == '/') c = '-';
  if (flat.empty() || flat[0] == '.') throw Error("internal error: bad hard-way credential name " + flat);
  return state_dir + "/hard-way/" + flat;
}
}  // namespace

std::optional<std::string> StateDir::hard_way_secret(std::string_view name) const {
  struct stat st {};
  if (lstat((path_ + "/hard-way").c_str(), &st) != 0) return std::nullopt;
  check_private_dir(path_ + "/hard-way", "the hard way's credential dir");
  return read_private_file(hard_way_file(path_, name), /*secret=*/true);
}

void StateDir::keep_hard_way_secret(std::string_view name, const std::string& content) const {
  ensure_private_dir(path_ + "/hard-way", "");
  check_private_dir(path_ + "/hard-way", "the hard way's credential dir");
  write_file_atomic(hard_way_file(path_, name), content, kSecretFileMode);
}

std::optional<std::string> StateDir::admin_kubeconfig() const { return read_kept(path_ + "/admin.kubeconfig"); }

void StateDir::keep_admin_kubeconfig(const std::string& kubeconfig) const {
  write_file_atomic(path_ + "/admin.kubeconfig", kubeconfig, kSecretFileMode);
}

StateDirLock::StateDirLock(const StateDir& state) {
  fd_ = open(state.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) throw Error("cannot open the state dir " + state.path() + ": " + errno_text());
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    fmt::print(stderr, "waiting for another pibake run that is using the state dir {} …\n", state.path());
    std::fflush(stderr);
    while (flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_text();
      close(fd_);
      throw Error("cannot lock the state dir " + state.path() + ": " + why);
    }
  }
  remove_stale_temporaries(state.path());
}

StateDirLock::~StateDirLock() { close(fd_); }

}  // namespace pibake
