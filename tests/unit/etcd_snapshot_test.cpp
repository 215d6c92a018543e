// check_etcd_snapshot (plan/etcd_snapshot.h): what `--etcd-snapshot FILE` accepts. The real-etcd
// side (etcdctl snapshot save, a restore, etcd reading it) is tests/cli/etcd_snapshot.sh.
#include "plan/etcd_snapshot.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "test_support.h"
#include "util/files.h"
#include "util/sha256.h"

using namespace pibake;
using pibake::test::ScratchDir;

namespace {

void put32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A file shaped as `etcdctl snapshot save` writes one: `pages` 4 KiB pages (the first two bbolt meta
// pages, the rest zeros, `payload` at byte `at`), then the SHA-256 of those bytes (the integrity
// hash).
std::string snapshot_bytes(size_t pages = 2, const std::string& payload = "", size_t at = 8192) {
  std::string db(pages * 4096, '\0');
  for (size_t page = 0; page < 2; ++page) {
    const size_t off = page * 4096;
    db[off] = static_cast<char>(page);  // page id
    db[off + 8] = 0x04;                 // metaPageFlag
    put32(db, off + 16, 0xED0CDAED);    // magic
    put32(db, off + 20, 2);             // version
    put32(db, off + 24, 4096);          // page size
  }
  db.replace(at, payload.size(), payload);
  std::string hex = sha256_hex(db);
  for (size_t i = 0; i < 64; i += 2) db += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return db;
}

std::string write(const ScratchDir& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir / name, std::ios::binary) << bytes;
  return dir / name;
}

}  // namespace

TEST_CASE("an etcd snapshot with its integrity hash is accepted with its sha256 and identity", "[etcd_snapshot]") {
  ScratchDir dir;
  const std::string bytes = snapshot_bytes();
  const std::string path = write(dir, "snap.db", bytes);
  EtcdSnapshot s = check_etcd_snapshot(path);
  CHECK(s.size == 8224);
  CHECK(s.sha256 == sha256_hex(bytes));
  CHECK(s.identity == file_content_identity(path));
  CHECK(s.path == path);
}

TEST_CASE("files that are not an etcd snapshot are refused naming the file and the fault", "[etcd_snapshot]") {
  ScratchDir dir;
  std::string good = snapshot_bytes();
  CHECK_THROWS_WITH(check_etcd_snapshot(dir / "absent.db"), Catch::Contains("absent.db"));
  CHECK_THROWS_WITH(check_etcd_snapshot(dir.path()), Catch::Contains("directory"));
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "empty.db", "")), Catch::Contains("is not an etcd snapshot"));
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "text.db", std::string(8224, 'x'))),
                    Catch::Contains("text.db is not an etcd snapshot"));

  std::string version = good;
  put32(version, 20, 1);
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "version.db", version)), Catch::Contains("version 1"));
  std::string flags = good;
  flags[8] = 0x10;  // a freelist page where the meta page must be
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "flags.db", flags)), Catch::Contains("damaged or unknown"));

  // The data directory's member/snap/db: a bbolt file without the hash `snapshot save` appends.
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "db", good.substr(0, 8192))), Catch::Contains("no integrity hash"));
  // Shorter than two pages and the hash: refused before it is read.
  std::string tiny = good.substr(0, 4096 + 512) + good.substr(good.size() - 32);
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "tiny.db", tiny)), Catch::Contains("no integrity hash"));
  // Cut short by 512 bytes in its middle: the size still looks hashed, the hash no longer matches.
  std::string big = snapshot_bytes(4);
  std::string cut = big.substr(0, 8192 + 512) + big.substr(big.size() - 32);
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "cut.db", cut)), Catch::Contains("cut.db is damaged"));
  std::string flipped = good;
  flipped[5000] ^= 1;  // one bit of the data
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "flipped.db", flipped)), Catch::Contains("flipped.db is damaged"));
  std::string bad_hash = good;
  bad_hash[bad_hash.size() - 1] ^= 1;
  CHECK_THROWS_WITH(check_etcd_snapshot(write(dir, "hash.db", bad_hash)), Catch::Contains("does not match"));
}

TEST_CASE("a snapshot must hold the cluster's CA, found across read boundaries, and be at most 8 GiB plus its hash",
          "[etcd_snapshot]") {
  ScratchDir dir;
  const std::string ca = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM1ekNDQWMrZ0F3SUJBZ0lCQURBTkJna3Fo";
  // 600 pages (2.3 MiB): the CA's base64 straddles the first 1 MiB read.
  const std::string path =
      write(dir, "ours.db", snapshot_bytes(600, "certificate-authority-data: " + ca, (1 << 20) - 40));
  CHECK(check_etcd_snapshot(path, ca).size == 600 * 4096 + 32);
  CHECK_THROWS_WITH(check_etcd_snapshot(path, "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUZvdGhlcg"),
                    Catch::Contains("ours.db is not a snapshot of this cluster"));
  // Larger than etcd's database may be (sparse: nothing is read).
  const std::string huge = dir / "huge.db";
  std::ofstream(huge, std::ios::binary) << snapshot_bytes();
  REQUIRE(truncate(huge.c_str(), (9ll << 30) + 32) == 0);
  CHECK_THROWS_WITH(check_etcd_snapshot(huge), Catch::Contains("more than etcd's suggested maximum"));
}
