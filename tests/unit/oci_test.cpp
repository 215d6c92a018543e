// OCI manifests and indexes taken apart, the linux/arm64 choice, and images in the lock file
// (fetch/oci.h, plan/artifacts.h; issue 12 items 2 and 5). The registry itself: tests/cli/images.sh.
#include <catch2/catch.hpp>

#include "fetch/oci.h"
#include "plan/artifacts.h"
#include "util/error.h"

using namespace pibake;

namespace {
const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');
const std::string kC = "sha256:" + std::string(64, 'c');

std::string entry(const std::string& digest, const std::string& arch, const std::string& variant = "") {
  return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + digest +
         R"(","size":10,"platform":{"os":"linux","architecture":")" + arch + "\"" +
         (variant.empty() ? "" : R"(,"variant":")" + variant + "\"") + "}}";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("parse_manifest: an OCI index and a Docker manifest list give their platforms", "[oci]") {
  for (const char* type :
       {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}) {
    std::string json = std::string(R"({"schemaVersion":2,"mediaType":")") + type + R"(","manifests":[)" +
                       entry(kA, "amd64") + "," + entry(kB, "arm", "v7") + "," + entry(kC, "arm64", "v8") + "]}";
    ParsedManifest m = parse_manifest(json, "", "image x");
    REQUIRE(m.is_index);
    REQUIRE(m.platforms.size() == 3);
    const OciPlatformEntry* arm = choose_arm64(m.platforms);
    REQUIRE(arm != nullptr);
    CHECK(arm->digest == kC);
    CHECK(arm->variant == "v8");
  }
  // Without a mediaType field, the Content-Type decides.
  ParsedManifest m = parse_manifest(R"({"schemaVersion":2,"manifests":[)" + entry(kA, "arm64") + "]}",
                                    "application/vnd.oci.image.index.v1+json", "image x");
  CHECK(m.is_index);
  CHECK(choose_arm64(m.platforms)->digest == kA);  // arm64 without a variant is v8
}

TEST_CASE("choose_arm64: linux/arm64 only, variant v8 or none", "[oci]") {
  std::vector<OciPlatformEntry> p = {
      {kA, "", 1, "linux", "amd64", ""}, {kB, "", 1, "linux", "arm", "v7"}, {kC, "", 1, "windows", "arm64", ""}};
  CHECK(choose_arm64(p) == nullptr);
  p.push_back({kA, "", 1, "linux", "arm64", "v9"});
  CHECK(choose_arm64(p) == nullptr);
  p.push_back({kB, "", 1, "linux", "arm64", ""});
  CHECK(choose_arm64(p)->digest == kB);
}

TEST_CASE("parse_manifest: an image manifest's config and layers", "[oci]") {
  std::string json = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
    "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" +
                     kA + R"(","size":1234},
    "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
                     kB + R"(","size":5},{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
                     kC + R"(","size":6}]})";
  ParsedManifest m = parse_manifest(json, "", "image x");
  CHECK_FALSE(m.is_index);
  CHECK(m.config.digest == kA);
  CHECK(m.config.size == 1234);
  REQUIRE(m.layers.size() == 2);
  CHECK(m.layers[1].digest == kC);
  CHECK(m.layers[1].size == 6);
  CHECK(config_platform(R"({"architecture":"arm64","os":"linux"})", "image x") ==
        std::pair<std::string, std::string>{"arm64", "linux"});
}

TEST_CASE("parse_manifest: what is no manifest is refused naming the image", "[oci]") {
  CHECK(error_of([] {
          parse_manifest("<!DOCTYPE html><html>Sign in</html>", "text/html", "image registry.k8s.io/pause:3.10");
        }).rfind("image registry.k8s.io/pause:3.10: the registry answered text/html that is not JSON", 0) == 0);
  CHECK(error_of([] {
          parse_manifest(
              R"({"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"})", "",
              "image y");
        }).find("which pibake does not read") != std::string::npos);
  // A digest that is not sha256, a missing size, a layer past the ceiling.
  auto manifest_with = [](const std::string& layer) {
    return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" + kA +
           R"(","size":1},"layers":[)" + layer + "]}";
  };
  CHECK(error_of([&] {
          parse_manifest(manifest_with(R"({"digest":"sha512:abc","size":1})"), "", "image z");
        }).find("not a sha256 digest") != std::string::npos);
  CHECK(error_of([&] {
          parse_manifest(manifest_with(R"({"digest":")" + kB + "\"}"), "", "image z");
        }).find("no size") != std::string::npos);
  CHECK(error_of([&] {
          parse_manifest(manifest_with(R"({"digest":")" + kB + R"(","size":99999999999})"), "", "image z");
        }).find("more than") != std::string::npos);
  CHECK(error_of([] {
          parse_manifest(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json"})", "", "image z");
        }).find("no config or no layers") != std::string::npos);
}

TEST_CASE("the lock file pins images by index and manifest digest, and refuses bad digests", "[oci]") {
  LockFile lock;
  lock.images.push_back({"registry.k8s.io/pause:3.10.2", kA, kB});
  lock.images.push_back({"registry.k8s.io/etcd:3.6.6-0", "", kC});
  LockFile back = parse_lock(render_lock(lock), "lock.yaml");
  REQUIRE(back.images.size() == 2);
  CHECK(back.find_image("registry.k8s.io/pause:3.10.2")->index_digest == kA);
  CHECK(back.find_image("registry.k8s.io/pause:3.10.2")->manifest_digest == kB);
  CHECK(back.find_image("registry.k8s.io/etcd:3.6.6-0")->index_digest.empty());
  CHECK(back.find_image("registry.k8s.io/nope:1") == nullptr);
  CHECK_THROWS_WITH(parse_lock("images:\n  \"r/p:1\":\n    manifest: \"sha256:12\"\n", "lock.yaml"),
                    Catch::Contains("lock.yaml:2: images.\"r/p:1\" needs manifest"));
}
