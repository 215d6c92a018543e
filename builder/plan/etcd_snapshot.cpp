// Checks an etcd snapshot before it goes onto a card (etcd_snapshot.h).
#include "plan/etcd_snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/files.h"
#include "util/little_endian.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr uint32_t kBoltMagic = 0xED0CDAED;   // bbolt db.go: magic
constexpr uint32_t kBoltVersion = 2;          // bbolt db.go: version
constexpr uint16_t kBoltMetaPageFlag = 0x04;  // bbolt page.go: metaPageFlag
constexpr uint64_t kSnapshotHashBytes = 32;   // sha256.Size, appended by `etcdctl snapshot save`
constexpr uint64_t kSnapshotHashAlign = 512;  // etcd: hasHash := (size % 512) == sha256.Size

}  // namespace

EtcdSnapshot check_etcd_snapshot(const std::string& path, std::string_view cluster_ca_base64) {
  const std::string what = "--etcd-snapshot " + path;
  struct stat st {};
  // stat() first: open() would wait for ever on a FIFO.
  if (stat(path.c_str(), &st) != 0) throw Error(what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(what + " is " + file_kind(st.st_mode) + ": expected a snapshot file");
  UniqueFd fd = open_fd(path, O_RDONLY | O_NONBLOCK);  // swapped for a FIFO since: no wait
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw Error(what + " changed while pibake opened it");
  EtcdSnapshot out;
  out.path = path;
  out.size = static_cast<uint64_t>(st.st_size);
  out.identity = file_content_identity(st);
  if (out.size > kMaxEtcdSnapshotBytes) {
    throw Error(what + " has " + std::to_string(out.size) +
                " bytes, more than etcd's suggested maximum database (8 GiB): pibake restores no larger snapshot");
  }

  // The meta page: bbolt's page header (id u64, flags u16, count u16, overflow u32), then its meta
  // (magic u32, version u32, pageSize u32, ...), little-endian as bbolt writes on arm64 and amd64.
  std::array<unsigned char, 28> head{};
  if (pread(fd.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()) ||
      get32(&head[16]) != kBoltMagic) {
    throw Error(what +
                " is not an etcd snapshot: it does not start with a bbolt database (make one with "
                "`etcdctl snapshot save FILE`, docs/cluster.md, \"etcd snapshots\")");
  }
  const uint16_t flags = get16(&head[8]);
  const uint32_t version = get32(&head[20]);
  const uint32_t page_size = get32(&head[24]);
  if (flags != kBoltMetaPageFlag || version != kBoltVersion || page_size < 512 || page_size > 65536 ||
      (page_size & (page_size - 1)) != 0) {
    throw Error(what + " is a damaged or unknown bbolt database (meta page flags " + std::to_string(flags) +
                ", version " + std::to_string(version) + ", page size " + std::to_string(page_size) + ")");
  }
  if (out.size % kSnapshotHashAlign != kSnapshotHashBytes || out.size < 2ull * page_size + kSnapshotHashBytes) {
    throw Error(what + " has no integrity hash at its end (" + std::to_string(out.size) +
                " bytes): it is not a file `etcdctl snapshot save` wrote, or it was cut short. A copy of an "
                "etcd data directory's member/snap/db is not a snapshot pibake restores");
  }

  // One pass: the SHA-256 of the database part, to compare with the trailer, and of the whole file.
  Sha256 body;
  Sha256 whole;
  const uint64_t body_size = out.size - kSnapshotHashBytes;
  std::vector<unsigned char> buf(1 << 20);
  std::string trailer;
  // cluster_ca_base64 may straddle two reads: the last bytes of the previous one are kept in front.
  bool found = cluster_ca_base64.empty();
  std::string window;
  uint64_t off = 0;
  while (off < out.size) {
    ssize_t n = pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(what + ": " + std::strerror(errno));
    if (n == 0) throw Error(what + " shrank while pibake read it");
    const uint64_t got = static_cast<uint64_t>(n);
    whole.update(buf.data(), got);
    if (off < body_size) body.update(buf.data(), std::min(got, body_size - off));
    if (off + got > body_size) {
      const uint64_t from = off < body_size ? body_size - off : 0;
      trailer.append(reinterpret_cast<const char*>(buf.data()) + from, got - from);
    }
    if (!found) {
      window.append(reinterpret_cast<const char*>(buf.data()), got);
      found = window.find(cluster_ca_base64) != std::string::npos;
      window.erase(0, window.size() - std::min(window.size(), cluster_ca_base64.size() - 1));
    }
    off += got;
  }
  if (body.digest() != trailer) {
    throw Error(what + " is damaged: its integrity hash does not match its content (a partial or corrupted copy)");
  }
  if (!found) {
    throw Error(what +
                " is not a snapshot of this cluster: its kube-public/cluster-info does not hold the cluster "
                "CA of the state dir (a snapshot of another cluster, or of one made before this state dir's CA)");
  }
  out.sha256 = whole.hex_digest();
  if (file_content_identity(path) != out.identity) throw Error(what + " changed while pibake was reading it");
  return out;
}

}  // namespace pibake
