// Issue 17, kinds 3 and 4: downloads are bounded (size ceilings, a low-speed limit, a deadline,
// redirects that stay on https or this machine) and the cache hands out only what was verified.
// Every hostile input is served by tests/fixtures/http_server.py on 127.0.0.1.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <vector>

#include "codec/archive.h"
#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/checksums.h"
#include "test_support.h"
#include "util/error.h"
#include "util/sha256.h"

using namespace pibake;
using namespace pibake::test;

namespace {

// Two tries, and a try that stalls for 2 s is cut.
FetchOptions quick() {
  FetchOptions o = quick_fetch_options();
  o.attempts = 2;
  o.low_speed_time_s = 2;
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}


}  // namespace

TEST_CASE("an endless body stops at the kind's ceiling and nothing of it is kept", "[fetch][hostile]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  HttpServer server(dir / "www", {"--endless", "/SHA256SUMS", "--endless", "/kubelet"});
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  auto start = std::chrono::steady_clock::now();
  // A checksum list: 1 MiB at most, checked before it is read into memory or cached.
  CHECK_THROWS_WITH(cache.get_text(*fetcher, server.url("/SHA256SUMS"), false, "the checksum of kubelet",
                                   [](const std::string&) { return true; }),
                    Catch::Contains("larger than 1048576 bytes"));
  // A blob with a small ceiling: refused at the ceiling, the partial file removed, no retry.
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, server.url("/kubelet"), std::string(64, 'a'), false, "kubelet", 4 << 20),
                    Catch::Contains("larger than 4194304 bytes"));
  CHECK(seconds_since(start) < 30);
  CHECK(count_files(dir / "cache") == 0);
  std::string log = server.log();
  CHECK(std::count(log.begin(), log.end(), '\n') == 2);  // one request each: a ceiling is final
}

TEST_CASE("a Content-Length above the ceiling is refused before the body", "[fetch][hostile]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  write_text(dir / "www/big.sha256", std::string(2 << 20, 'f'));
  HttpServer server(dir / "www");
  auto fetcher = make_curl_fetcher(quick());
  CHECK_THROWS_WITH(fetcher->fetch(server.url("/big.sha256"), dir / "out", kMaxChecksumFileBytes),
                    Catch::Contains("larger than"));
  CHECK_FALSE(exists(dir / "out"));
}

TEST_CASE("a 2 KiB/s drip is cut by the low-speed limit, a slow download by the deadline", "[fetch][hostile]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  write_text(dir / "www/drip.bin", std::string(1 << 20, 'd'));
  write_text(dir / "www/slow.bin", std::string(4 << 20, 's'));
  HttpServer server(dir / "www", {"--drip", "/drip.bin:2048", "--drip", "/slow.bin:200000"});
  auto start = std::chrono::steady_clock::now();
  auto fetcher = make_curl_fetcher(quick());
  CHECK_THROWS_WITH(fetcher->fetch(server.url("/drip.bin"), dir / "drip", kMaxArtifactBytes),
                    Catch::Contains("cannot download"));
  CHECK(seconds_since(start) < 20);  // two tries of 2 s each, not the 8 min the drip would take

  FetchOptions o = quick();
  o.deadline_base_s = 3;
  o.deadline_max_s = 3;  // 4 MiB at 200 kB/s takes 20 s: well past it
  start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(make_curl_fetcher(o)->fetch(server.url("/slow.bin"), dir / "slow", kMaxArtifactBytes),
                    Catch::Contains("deadline"));
  CHECK(seconds_since(start) < 10);
}

TEST_CASE("redirects stay on https or this machine", "[fetch][hostile]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  write_text(dir / "www/real.bin", "payload");
  HttpServer server(dir / "www",
                    {"--redirect", "/away.bin:http://example.invalid/real.bin", "--redirect", "/here.bin:/real.bin"});
  auto fetcher = make_curl_fetcher(quick());
  CHECK_THROWS_WITH(fetcher->fetch(server.url("/away.bin"), dir / "away", kMaxArtifactBytes),
                    Catch::Contains("redirected to http://example.invalid/real.bin, refused"));
  CHECK_FALSE(exists(dir / "away"));
  // On this machine a redirect is followed, and the redirect's own body is not part of the file.
  fetcher->fetch(server.url("/here.bin"), dir / "here", kMaxArtifactBytes);
  CHECK(read_text(dir / "here") == "payload");
}

TEST_CASE("a cached blob that was truncated or replaced is dropped and fetched again", "[fetch][hostile]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  const std::string payload(100000, 'k');
  write_text(dir / "www/kubelet", payload);
  HttpServer server(dir / "www");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  const std::string sha = sha256_hex(payload);
  std::string path = cache.get_blob(*fetcher, server.url("/kubelet"), sha, false, "kubelet", kMaxArtifactBytes);
  // Truncated: offline, the error names the fix; online, it is fetched again.
  REQUIRE(truncate(path.c_str(), 1000) == 0);
  CHECK_THROWS_WITH(cache.get_blob(*fetcher, server.url("/kubelet"), sha, true, "kubelet", kMaxArtifactBytes),
                    Catch::Contains("pibake fetch"));
  CHECK(read_text(cache.get_blob(*fetcher, server.url("/kubelet"), sha, false, "kubelet", kMaxArtifactBytes)) ==
        payload);
  // Replaced by other bytes of the same size (the identity record notices the new ctime).
  write_text(path, std::string(payload.size(), 'X'));
  CHECK(read_text(cache.get_blob(*fetcher, server.url("/kubelet"), sha, false, "kubelet", kMaxArtifactBytes)) ==
        payload);
  std::string log = server.log();
  CHECK(std::count(log.begin(), log.end(), '\n') == 3);
  // Untouched, it is handed out without a request (and without hashing: the identity matches).
  CHECK(cache.get_blob(*fetcher, server.url("/kubelet"), sha, true, "kubelet", kMaxArtifactBytes) == path);
}

TEST_CASE("a checksum list is parsed before it is cached and a bad cached one is fetched again", "[fetch][hostile]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "www");
  const std::string sha(64, 'b');
  write_text(dir / "www/kubelet.sha256", "this is a captive portal page\n");
  HttpServer server(dir / "www");
  Cache cache(dir / "cache");
  auto fetcher = make_curl_fetcher(quick());
  auto lists_kubelet = [](const std::string& t) { return find_sha256(t, "kubelet").has_value(); };
  CHECK_THROWS_WITH(
      cache.get_text(*fetcher, server.url("/kubelet.sha256"), false, "the checksum of kubelet", lists_kubelet),
      Catch::Contains("not kept"));
  CHECK(count_files(dir / "cache") == 0);
  // Offline, nothing unusable was kept to be read back.
  CHECK_THROWS_WITH(
      cache.get_text(*fetcher, server.url("/kubelet.sha256"), true, "the checksum of kubelet", lists_kubelet),
      Catch::Contains("not in the cache"));
  write_text(dir / "www/kubelet.sha256", sha + "\n");
  CHECK(cache.get_text(*fetcher, server.url("/kubelet.sha256"), false, "the checksum", lists_kubelet) == sha + "\n");
  // A cached copy edited into garbage is dropped and fetched again.
  for (const auto& e : std::filesystem::directory_iterator(dir / "cache/text")) write_text(e.path(), "garbage");
  CHECK(cache.get_text(*fetcher, server.url("/kubelet.sha256"), false, "the checksum", lists_kubelet) == sha + "\n");
}

TEST_CASE("a checksum list with huge version numbers is no internal error", "[fetch][hostile]") {
  const std::string suffix = "-preinstalled-server-arm64+raspi.img.xz";
  std::string text = std::string(64, 'a') + "  ubuntu-24.04.99999999999999999999999999" + suffix + "\n" +
                     std::string(64, 'b') + "  ubuntu-24.04.3" + suffix + "\n" + std::string(64, 'c') +
                     "  ubuntu-24.04.000000000000000000000000000004" + suffix + "\n";
  auto newest = find_newest_with_suffix(text, suffix);
  REQUIRE(newest);
  CHECK(newest->sha256 == std::string(64, 'a'));
}

TEST_CASE("a 512 MiB archive member streams through bounded memory", "[fetch][hostile]") {
  ScratchDir dir;
  std::string tar = dir / "big.tgz";
  // Zeros compress to almost nothing: a small archive whose member is huge.
  must_run({"python3", "-c",
            "import tarfile,sys\n"
            "class Zeros:\n"
            "  def __init__(s,n): s.n=n\n"
            "  def read(s,k=-1):\n"
            "    k=s.n if k<0 else min(k,s.n); s.n-=k; return bytes(k)\n"
            "t=tarfile.open(sys.argv[1],'w:gz',compresslevel=1)\n"
            "i=tarfile.TarInfo('bin/huge'); i.size=512<<20; t.addfile(i, Zeros(i.size))\n",
            tar});
  uint64_t total = 0;
  for_each_archive_file(tar, "bin/", [&](const std::string&, const MemberReader& read, uint32_t) {
    std::vector<char> buf(1 << 20);
    for (size_t n; (n = read(buf.data(), buf.size())) > 0;) total += n;
  });
  CHECK(total == (uint64_t{512} << 20));
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  CHECK(usage.ru_maxrss < 256 * 1024);  // KiB: the peak of this whole test process
}
