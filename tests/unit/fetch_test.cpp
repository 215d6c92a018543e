// Downloads, the cache and the base image source, against a server on 127.0.0.1 (never the internet).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "codec/archive.h"
#include "codec/xz.h"
#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "pipeline/fetch_base.h"
#include "plan/checksums.h"
#include "plan/mirrors.h"
#include "test_support.h"
#include "util/error.h"
#include "util/sha256.h"

using namespace pibake;
using namespace pibake::test;

namespace {
FetchOptions quick() { return quick_fetch_options(); }
}  // namespace

TEST_CASE("SHA256SUMS lines are read in both sha256sum formats", "[fetch]") {
  std::string a(64, 'a'), b(64, 'B');
  std::string text = a + " *ubuntu.img.xz\n" + b + "  other.img.xz\r\n# comment\n";
  CHECK(find_sha256(text, "ubuntu.img.xz") == a);
  CHECK(find_sha256(text, "other.img.xz") == std::string(64, 'b'));
  CHECK_FALSE(find_sha256(text, "missing.img.xz"));
  CHECK(find_sha256(a + "\n", "anything") == a);  // a lone .sha256 file
  CHECK(find_sha256(a + "  ./dir/x.tgz\n", "x.tgz") == a);
  CHECK_FALSE(find_sha256("xyz  file\n", "file"));
}

TEST_CASE("mirrors rewrite the longest matching prefix", "[fetch]") {
  std::vector<std::pair<std::string, std::string>> m = {{"https://dl.k8s.io", "http://127.0.0.1:8080/k8s"},
                                                        {"https://dl.k8s.io/release/v1", "/srv/mirror/v1"},
                                                        {"https://github.com", "file:///srv/gh"}};
  CHECK(apply_mirrors("https://dl.k8s.io/release/v1.34.2/bin/kubelet", m) == "/srv/mirror/v1.34.2/bin/kubelet");
  CHECK(apply_mirrors("https://dl.k8s.io/stable.txt", m) == "http://127.0.0.1:8080/k8s/stable.txt");
  CHECK(apply_mirrors("https://cdimage.ubuntu.com/x", m) == "https://cdimage.ubuntu.com/x");
  CHECK(is_local_source("/srv/mirror/x"));
  CHECK(is_local_source("file:///srv/gh/x"));
  CHECK(local_path("file:///srv/gh/x") == "/srv/gh/x");
  CHECK_FALSE(is_local_source("http://127.0.0.1/x"));
}

TEST_CASE("a download enters the cache only with the right sha256, and is reused offline", "[fetch]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  std::string payload(300000, 'p');
  write_text(dir / "www/artifact.bin", payload);
  HttpServer server(dir / "www");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  std::string sha = sha256_hex(payload);
  std::string path =
      cache.get_blob(*fetcher, server.url("/artifact.bin"), sha, false, "the artifact", kMaxArtifactBytes);
  CHECK(path == dir / "cache/sha256/" + sha);
  CHECK(read_text(path) == payload);
  server.stop();
  // Second time: no server, offline, still there.
  CHECK(cache.get_blob(*fetcher, server.url("/artifact.bin"), sha, true, "the artifact", kMaxArtifactBytes) == path);
}

TEST_CASE("a checksum mismatch names the URL and both hashes and keeps nothing", "[fetch]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  write_text(dir / "www/artifact.bin", "tampered");
  HttpServer server(dir / "www");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  std::string wrong(64, '0');
  std::string url = server.url("/artifact.bin");
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, url, wrong, false, "the artifact", kMaxArtifactBytes),
                    "checksum mismatch for the artifact downloaded from " + url + ": expected sha256 " + wrong +
                        ", got " + sha256_hex("tampered"));
  CHECK(count_files(dir / "cache") == 0);
}

TEST_CASE("a connection dropped half-way is resumed with a Range request", "[fetch]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  std::string payload;
  for (int i = 0; i < 200000; ++i) payload += static_cast<char>('a' + i % 26);
  write_text(dir / "www/big.bin", payload);
  HttpServer server(dir / "www", {"--drop-once", "/big.bin:70000"});
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  std::string path =
      cache.get_blob(*fetcher, server.url("/big.bin"), sha256_hex(payload), false, "big", kMaxArtifactBytes);
  CHECK(read_text(path) == payload);
  std::string log = server.log();
  INFO(log);
  CHECK(log.find("GET /big.bin bytes=70000-") != std::string::npos);
}

TEST_CASE("a 404 fails at once with the status, and offline with an empty cache names the artifact", "[fetch]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  HttpServer server(dir / "www");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  std::string url = server.url("/missing.bin");
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, url, std::string(64, '1'), false, "kubelet", kMaxArtifactBytes),
                    "cannot download " + url + ": HTTP 404");
  // 404 is final: one request, no retries.
  std::string log = server.log();
  CHECK(std::count(log.begin(), log.end(), '\n') == 1);
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, url, std::string(64, '1'), true, "kubelet", kMaxArtifactBytes),
                    Catch::Contains("kubelet is not in the cache") && Catch::Contains("--offline"));
}

TEST_CASE("xz images are decompressed byte-exact with their holes", "[fetch]") {
  ScratchDir dir;
  std::string img = dir / "disk.img";
  must_run({"truncate", "-s", "64M", img});
  must_run({"dd", "if=/dev/urandom", "of=" + img, "bs=1M", "count=2", "seek=10", "conv=notrunc", "status=none"});
  must_run({"xz", "-k", "-T2", "--block-size=4MiB", img});
  std::string out = dir / "out.img";
  int fd = open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  decompress_xz_sparse(img + ".xz", fd, out);
  close(fd);
  must_run({"cmp", img, out});
  struct stat st {};
  REQUIRE(stat(out.c_str(), &st) == 0);
  CHECK(st.st_size == 64 << 20);
  CHECK(st.st_blocks * 512 <= (3 << 20));  // ~2 MiB of data, the rest holes
  write_text(dir / "bad.xz", "not xz at all");
  fd = open(out.c_str(), O_RDWR | O_TRUNC);
  CHECK_THROWS_WITH(decompress_xz_sparse(dir / "bad.xz", fd, out), Catch::Contains("not an .xz file"));
  close(fd);
}

TEST_CASE("the base image comes from a mirror, verified by SHA256SUMS, and works offline after", "[fetch]") {
  ScratchDir dir;
  std::string rel = dir / "www/releases/24.04/release";
  std::filesystem::create_directories(rel);
  std::string name = "ubuntu-24.04.3-preinstalled-server-arm64+raspi.img";
  must_run({"truncate", "-s", "8M", rel + "/" + name});
  must_run({"dd", "if=/dev/urandom", "of=" + rel + "/" + name, "bs=64k", "count=4", "conv=notrunc", "status=none"});
  must_run({"xz", "-T2", rel + "/" + name});
  std::string sha = sha256_file(rel + "/" + name + ".xz");
  write_text(rel + "/SHA256SUMS", std::string(64, 'f') + " *other.iso\n" + sha + " *" + name + ".xz\n");
  HttpServer server(dir / "www");

  ClusterSpec spec = default_spec();
  spec.base_image.url = "https://cdimage.ubuntu.com/releases/24.04/release/" + name + ".xz";
  spec.base_image.sha256.clear();
  spec.base_image.sha256sums.clear();
  spec.mirrors = {{"https://cdimage.ubuntu.com", server.url("")}};
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  std::string raw = obtain_base_image(spec, "", false, cache, *fetcher);
  CHECK(raw == dir / "cache/images/" + sha + ".img");
  struct stat st {};
  REQUIRE(stat(raw.c_str(), &st) == 0);
  CHECK(st.st_size == 8 << 20);
  server.stop();
  CHECK(obtain_base_image(spec, "", true, cache, *fetcher) == raw);

  // Offline with an empty cache: the error names what is missing.
  Cache other(dir / "cache2");
  spec.base_image.sha256 = std::string(64, 'e');
  CHECK_THROWS_WITH(obtain_base_image(spec, "", true, other, *fetcher),
                    Catch::Contains("the base image is not in the cache"));
}

TEST_CASE("archive members under the prefix are handed out, and unsafe archives are refused whole", "[fetch]") {
  ScratchDir dir;
  std::string tar = dir / "ok.tgz";
  must_run({"python3", "-c",
            "import io,tarfile,sys\n"
            "t=tarfile.open(sys.argv[1],'w:gz')\n"
            "for n,d in (('bin/',None),('bin/containerd',b'c'*5000),('bin/ctr',b'ctr'),('README',b'r')):\n"
            "  i=tarfile.TarInfo(n)\n"
            "  if d is None: i.type=tarfile.DIRTYPE\n"
            "  else: i.size=len(d)\n"
            "  t.addfile(i, io.BytesIO(d) if d else None)\n",
            tar});
  std::map<std::string, std::string> got;
  for_each_archive_file(tar, "bin/", [&](const std::string& rel, const MemberReader& read, uint32_t) {
    char buf[7];  // a small buffer: members are handed out in pieces
    for (size_t n; (n = read(buf, sizeof buf)) > 0;) got[rel].append(buf, n);
  });
  CHECK(got.size() == 2);
  CHECK(got["containerd"] == std::string(5000, 'c'));
  CHECK(got["ctr"] == "ctr");
  CHECK(archive_install_bytes(tar, "bin/") == 5003);
  CHECK(archive_install_bytes(tar, "") == 1);  // README only: members directly under the prefix

  auto make_bad = [&](const std::string& name, const std::string& member_py) {
    std::string path = dir / name;
    must_run({"python3", "-c",
              "import io,tarfile,sys\nt=tarfile.open(sys.argv[1],'w:gz')\n"
              "i=tarfile.TarInfo('ok'); i.size=2; t.addfile(i, io.BytesIO(b'ok'))\n" +
                  member_py,
              path});
    return path;
  };
  std::string abs = make_bad("abs.tgz", "i=tarfile.TarInfo('/etc/passwd'); i.size=1; t.addfile(i, io.BytesIO(b'x'))\n");
  std::string dots = make_bad("dots.tgz", "i=tarfile.TarInfo('a/../../x'); i.size=1; t.addfile(i, io.BytesIO(b'x'))\n");
  std::string link =
      make_bad("link.tgz", "i=tarfile.TarInfo('l'); i.type=tarfile.SYMTYPE; i.linkname='/etc'; t.addfile(i)\n");
  std::string hard =
      make_bad("hard.tgz", "i=tarfile.TarInfo('h'); i.type=tarfile.LNKTYPE; i.linkname='ok'; t.addfile(i)\n");
  int handed_out = 0;
  auto count = [&](const std::string&, const MemberReader&, uint32_t) { ++handed_out; };
  CHECK_THROWS_WITH(for_each_archive_file(abs, "", count), Catch::Contains("absolute"));
  CHECK_THROWS_WITH(for_each_archive_file(dots, "", count), Catch::Contains("climbs out"));
  CHECK_THROWS_WITH(for_each_archive_file(link, "", count), Catch::Contains("link or special file"));
  CHECK_THROWS_WITH(for_each_archive_file(hard, "", count), Catch::Contains("link"));
  CHECK(handed_out == 0);  // not even the good member "ok" of a bad archive
  // Already validated (fetch_artifacts sized it): no first pass, but each entry is still checked.
  for (const std::string& bad : {abs, dots, link, hard})
    CHECK_THROWS_AS(for_each_archive_file(bad, "", count, /*validated=*/true), Error);
  CHECK(handed_out == 4);  // the good member "ok" of each, before its bad one
}

TEST_CASE("plain http is refused except from this machine, before any connection", "[fetch]") {
  ScratchDir dir;
  auto fetcher = make_curl_fetcher(quick());
  CHECK_THROWS_WITH(fetcher->fetch("http://dl.k8s.io/release/stable.txt", dir / "x", kMaxArtifactBytes),
                    Catch::Contains("pibake downloads over https only"));
  CHECK_THROWS_WITH(fetcher->fetch("ftp://127.0.0.1/x", dir / "x", kMaxArtifactBytes), Catch::Contains("https only"));
  // Loopback mirrors are fine (the sha256 is still checked): the server below is on 127.0.0.1.
  std::filesystem::create_directories(dir / "www");
  write_text(dir / "www/a", "a");
  HttpServer server(dir / "www");
  fetcher->fetch(server.url("/a"), dir / "got", kMaxArtifactBytes);
  CHECK(read_text(dir / "got") == "a");
}

TEST_CASE("a local file with the wrong hash never enters the cache", "[fetch]") {
  ScratchDir dir;
  write_text(dir / "local.bin", "not what was pinned");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, dir / "local.bin", std::string(64, 'a'), true, "runc", kMaxArtifactBytes),
                    Catch::Contains("checksum mismatch for runc"));
  CHECK(count_files(dir / "cache") == 0);
  std::string good = sha256_hex("not what was pinned");
  CHECK(read_text(cache.get_blob(*fetcher, "file://" + (dir / "local.bin"), good, true, "runc", kMaxArtifactBytes)) ==
        "not what was pinned");
}

TEST_CASE("the newest raspi image of a release folder is found, numbers compared as numbers", "[fetch]") {
  std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  std::string text = a + " *ubuntu-24.04.9-preinstalled-server-arm64+raspi.img.xz\n" + b +
                     " *ubuntu-24.04.10-preinstalled-server-arm64+raspi.img.xz\n" + c +
                     " *ubuntu-24.04.10-live-server-amd64.iso\n";
  auto e = find_newest_with_suffix(text, "-preinstalled-server-arm64+raspi.img.xz");
  REQUIRE(e);
  CHECK(e->name == "ubuntu-24.04.10-preinstalled-server-arm64+raspi.img.xz");
  CHECK(e->sha256 == b);
  CHECK_FALSE(find_newest_with_suffix(text, ".img"));
}

TEST_CASE("a release folder resolves to its newest image, and the lock keeps it after a new point release", "[fetch]") {
  ScratchDir dir;
  std::string rel = dir / "www/releases/24.04/release";
  std::filesystem::create_directories(rel);
  auto publish = [&](const std::string& version) {
    std::string name = "ubuntu-" + version + "-preinstalled-server-arm64+raspi.img";
    must_run({"truncate", "-s", "4M", rel + "/" + name});
    must_run({"xz", "-f", rel + "/" + name});
    return sha256_file(rel + "/" + name + ".xz") + " *" + name + ".xz\n";
  };
  write_text(rel + "/SHA256SUMS", publish("24.04.2") + publish("24.04.3"));
  HttpServer server(dir / "www");
  ClusterSpec spec = default_spec();
  spec.base_image.url = "https://cdimage.ubuntu.com/releases/24.04/release/";  // the older LTS, still supported
  spec.base_image.sha256.clear();
  spec.mirrors = {{"https://cdimage.ubuntu.com", server.url("")}};
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  LockFile lock;
  obtain_base_image(spec, "", false, cache, *fetcher, &lock);
  const LockedArtifact* pinned = lock.find("base_image");
  REQUIRE(pinned != nullptr);
  CHECK(pinned->version == "https://cdimage.ubuntu.com/releases/24.04/release/");
  CHECK(pinned->url ==
        "https://cdimage.ubuntu.com/releases/24.04/release/ubuntu-24.04.3-preinstalled-server-arm64+raspi.img.xz");
  // 24.04.4 comes out and the cache is lost: the lock still gets 24.04.3 (by its hash).
  std::string old_line = read_text(rel + "/SHA256SUMS");
  write_text(rel + "/SHA256SUMS", old_line + publish("24.04.4"));
  Cache fresh(dir / "cache2");
  LockFile again = parse_lock(render_lock(lock), "lock.yaml");
  obtain_base_image(spec, "", false, fresh, *fetcher, &again);
  CHECK(again.find("base_image")->url == pinned->url);
  CHECK(server.log().find("24.04.4-preinstalled") == std::string::npos);
  // Asking for another source than the pinned one is refused with the way out.
  spec.base_image.url = "https://cdimage.ubuntu.com/releases/26.04/release/";
  CHECK_THROWS_WITH(obtain_base_image(spec, "", false, fresh, *fetcher, &again),
                    Catch::Contains("remove the \"base_image\" entry"));
}

namespace {
// Rewrites `path` in place (same inode, same size) with `text`.
void rewrite_in_place(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
  close(fd);
}
// Moves the mtime of every record under `dir` (by-identity/*, *.verified) 5 s into the future, as
// if written well after the file's last change: a record is trusted only then (racily clean).
void age_records(const std::string& dir) {
  const timespec later[2] = {{time(nullptr) + 5, 0}, {time(nullptr) + 5, 0}};
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string p = e.path();
    if (e.is_regular_file() && (p.ends_with(".verified") || p.find("/by-identity/") != std::string::npos))
      REQUIRE(utimensat(AT_FDCWD, p.c_str(), later, 0) == 0);
  }
}
}  // namespace

TEST_CASE("a value kept by a file's identity is reused until the file changes, even at the same size", "[fetch]") {
  ScratchDir dir;
  const std::string file = dir / "base.img";
  write_text(file, "aaaaaaaa");
  Cache cache(dir / "cache");
  int computed = 0;
  auto hash = [&] {
    ++computed;
    return sha256_file(file);
  };
  CHECK(cache.by_identity(file, "sha256", hash) == sha256_hex("aaaaaaaa"));
  CHECK(computed == 1);
  // Recorded in the same second as the file's last change: not trusted (a change in the same
  // clock tick would keep the identity), so computed again.
  CHECK(cache.by_identity(file, "sha256", hash) == sha256_hex("aaaaaaaa"));
  CHECK(computed == 2);
  age_records(dir / "cache");
  CHECK(cache.by_identity(file, "sha256", hash) == sha256_hex("aaaaaaaa"));
  CHECK(computed == 2);                                                               // unchanged: not read
  CHECK(cache.by_identity(file, "other", [] { return std::string("42"); }) == "42");  // kinds apart
  rewrite_in_place(file, "bbbbbbbb");
  CHECK(cache.by_identity(file, "sha256", hash) == sha256_hex("bbbbbbbb"));
  CHECK(computed == 3);
  // A damaged record is as none.
  age_records(dir / "cache");
  for (const auto& e : std::filesystem::directory_iterator(dir / "cache/by-identity")) write_text(e.path(), "x\n");
  CHECK(cache.by_identity(file, "sha256", hash) == sha256_hex("bbbbbbbb"));
  CHECK(computed == 4);
}

TEST_CASE("a recorded sha256 holds while the file is unchanged, and a same-size change drops it", "[fetch]") {
  ScratchDir dir;
  const std::string file = dir / "archive.tar";
  write_text(file, "archive one");
  CHECK_FALSE(recorded_sha256(file));
  CHECK(hash_and_record(file) == sha256_hex("archive one"));
  CHECK(recorded_sha256(file) == sha256_hex("archive one"));  // racily clean: hashed again, same
  age_records(dir.path());
  CHECK(recorded_sha256(file) == sha256_hex("archive one"));
  rewrite_in_place(file, "archive two");
  CHECK_FALSE(recorded_sha256(file));
  // Changed in the same second as it was recorded: hashed again, and the change shows.
  CHECK(hash_and_record(file) == sha256_hex("archive two"));
  rewrite_in_place(file, "archive 333");
  CHECK_FALSE(recorded_sha256(file));
}

TEST_CASE("a cached blob changed in place at the same size is hashed again and dropped", "[fetch]") {
  ScratchDir dir;
  write_text(dir / "local.bin", "the real runc");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  const std::string good = sha256_hex("the real runc");
  std::string blob = cache.get_blob(*fetcher, dir / "local.bin", good, true, "runc", kMaxArtifactBytes);
  age_records(dir / "cache");
  rewrite_in_place(blob, "the fake runc");
  // Offline, the changed blob cannot be fetched again: the error says so, and it is gone.
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, "https://example.invalid/runc", good, true, "runc", kMaxArtifactBytes),
                    Catch::Contains("not in the cache"));
  CHECK_FALSE(cache.has_blob(good));
}
