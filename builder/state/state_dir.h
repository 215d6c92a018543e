// The state dir (pibake-state/, docs/cluster.md "The state dir"): the one owner of its path, its
// creation and modes, and of every file in it except the PKI's own, which pki/state.h keeps:
//   lock.yaml                  every resolved artifact: version, URL, sha256 (0644)
//   cluster.yaml               the spec the cluster was first built from: its identity (0600)
//   nodes/<name>/kubelet.conf  a worker's kubelet credentials, issued once (0600)
//   admin.kubeconfig           the admin credentials out/admin.kubeconfig is copied from (0600)
//   hard-way/<name>            kubernetes.mode: hard-way's certificates with their keys, and its
//                              Secrets encryption key, issued once (0600; docs/hard-way.md)
//   pki/                       the CAs, the service-account key pair, the bootstrap token
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "plan/artifacts.h"
#include "spec/spec.h"

namespace pibake {

// Creates the directory `path` with mode exactly 0700, whatever the umask. Throws pibake::Error
// naming the path when it exists already or cannot be made.
void make_private_dir(const std::string& path);

// Throws pibake::Error (naming `what`, the path and the fix) unless `path` is a directory owned by
// the user running pibake and closed to group and others: it holds keys every node trusts.
void check_private_dir(const std::string& path, const char* what);

// The most read_private_file reads (bytes): PEM files and records are a few KiB.
inline constexpr size_t kMaxPrivateFileSize = size_t{1} << 20;

// Reads one file of the state dir without following a symlink, checking what the descriptor refers
// to (not the name, which could change between a stat and the open): a regular file owned by the
// user running pibake, without group/other write access, and with no group/other access at all when
// `secret`; at most kMaxPrivateFileSize bytes. nullopt when it does not exist. Throws pibake::Error
// naming the path (never the content) and the fix otherwise.
std::optional<std::string> read_private_file(const std::string& path, bool secret);

class StateDir {
 public:
  // The state dir of `spec`: "pibake-state" next to its file, or in the current directory when
  // the spec is the built-in default.
  static std::string path_for(const ClusterSpec& spec);

  // Opens the state dir at `path`, creating it 0700 when missing (its parent must exist). Throws
  // pibake::Error (see check_private_dir) for one that is not a directory, belongs to another user
  // or grants group or other access.
  explicit StateDir(std::string path);

  const std::string& path() const { return path_; }
  // <path>/pki, whose content pki::load_or_create() creates and checks.
  std::string pki_dir() const;

  // The lock file: empty when there is none yet; save_lock writes it atomically, 0644.
  std::string lock_path() const;
  LockFile load_lock() const;
  void save_lock(const LockFile& lock) const;

  // The identity record: the spec the cluster was built from (cluster.yaml); nullopt before the
  // first build. Throws pibake::Error when it no longer loads.
  std::optional<ClusterSpec> identity() const;

  // Refuses (pibake::Error listing every difference) a spec whose cluster name, domain, subnet,
  // pod or service range, set of control planes, API server endpoint (api_endpoint_address), or any
  // recorded node's address or role differs from the identity record (cluster.yaml) written by the
  // first build; records it when there is none yet (with the virtual IP pibake picked written out),
  // and adds the spec's new nodes to it otherwise. Returns true when a record was there before
  // (the cluster was built from this state dir already), false when this call made the first.
  bool check_identity(const ClusterSpec& spec) const;

  // A worker's kubeconfig for its kubelet (nodes/<name>/kubelet.conf), kept so a regenerated image
  // gets the same identity; nullopt when none was issued yet. keep_* writes it atomically, 0600.
  std::optional<std::string> kubelet_kubeconfig(std::string_view node) const;
  void keep_kubelet_kubeconfig(std::string_view node, const std::string& kubeconfig) const;

  // A hard-way credential (hard-way/<name>, '/' in `name` spelled '-': "etcd/server-node-1" is
  // hard-way/etcd-server-node-1): what pipeline/hard_way_secrets.cpp issued once, kept so every
  // later build gives the node the same one; nullopt when there is none yet. keep_* writes it
  // atomically, 0600, in a 0700 folder.
  std::optional<std::string> hard_way_secret(std::string_view name) const;
  void keep_hard_way_secret(std::string_view name, const std::string& content) const;
  // The admin kubeconfig (admin.kubeconfig); nullopt when none was issued yet. 0600.
  std::optional<std::string> admin_kubeconfig() const;
  void keep_admin_kubeconfig(const std::string& kubeconfig) const;

 private:
  std::string path_;
};

// The state dir locked for a whole build, fetch or `pibake kubeconfig` (issue 17 item 8): two runs
// on one state dir (with different --out) must not both create or change its keys and records.
// flock(2) on the directory itself, so there is no lock file to leave behind or half-write. A
// second run waits for the first, saying so once on stderr; the lock ends with this object (or the
// process). Holding it, the temporaries a killed run left are removed, each reported on stdout:
// ".<name>.tmp" files in the state dir and in nodes/<name>/, and an unfinished ".pki.tmp/" (keys a
// first build never finished, never used). Throws pibake::Error when the directory cannot be opened
// or locked.
class StateDirLock {
 public:
  explicit StateDirLock(const StateDir& state);
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace pibake
