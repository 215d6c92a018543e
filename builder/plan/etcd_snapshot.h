// An etcd snapshot to restore before `kubeadm init` (`pibake build --etcd-snapshot FILE`,
// docs/cluster.md, "etcd snapshots"): checked on the build machine, so a wrong or damaged file is
// refused before any image is written instead of failing the node's first boot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pibake {

// A snapshot file as `etcdctl snapshot save` writes it, checked.
struct EtcdSnapshot {
  std::string path;      // as given on the command line
  std::string sha256;    // of the whole file, lower-case hex
  uint64_t size = 0;     // bytes
  std::string identity;  // util/files.h file_content_identity when checked (FileOp::source_identity)
};

// Where the card that runs kubeadm init finds the snapshot to restore (0600 root: it holds every
// Secret of the cluster). First boot removes it once the init is recorded.
inline constexpr const char* kEtcdRestorePath = "/var/lib/pibake/etcd-restore.db";

// The largest snapshot accepted (bytes): etcd's suggested maximum for its database
// (--quota-backend-bytes, "8 GiB is a suggested maximum", etcd's dev-guide/limit.md), plus the hash.
inline constexpr uint64_t kMaxEtcdSnapshotBytes = (8ull << 30) + 32;

// Checks that `path` is an etcd v3 snapshot that etcdutl/etcdctl `snapshot restore` accepts without
// --skip-hash-check, and of the cluster it is restored into, reading it once:
//   - a regular file (symlinks followed) of at most kMaxEtcdSnapshotBytes;
//   - a bbolt database: page 0 is a meta page (flags 0x04) with bbolt's magic 0xED0CDAED, version 2
//     and a power-of-two page size from 512 bytes to 64 KiB (go.etcd.io/bbolt page.go, db.go
//     meta.validate), and the file holds at least two such pages;
//   - the integrity hash `snapshot save` appends: the file's size modulo 512 is 32, and its last 32
//     bytes are the SHA-256 of everything before them (etcd's etcdutl/snapshot v3_snapshot.go, which
//     refuses a mismatch as "expected sha256 ..., got ...");
//   - `cluster_ca_base64` (unless empty) occurs in it: pibake passes the base64 of the cluster CA's
//     certificate, which kubeadm's kube-public/cluster-info ConfigMap holds verbatim (its
//     kubeconfig's certificate-authority-data), so a snapshot of another cluster is refused.
// Returns its sha256, size and identity. Throws pibake::Error naming the file and what is wrong.
EtcdSnapshot check_etcd_snapshot(const std::string& path, std::string_view cluster_ca_base64 = {});

}  // namespace pibake
