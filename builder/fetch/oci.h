// Pulling container images over the OCI distribution API (docs/images.md): manifests and indexes
// with the media types registries serve, anonymous bearer tokens, the linux/arm64 manifest of an
// index, every blob verified against its digest into the content-addressed cache.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fetch/cache.h"
#include "fetch/fetcher.h"
#include "plan/artifacts.h"
#include "plan/images.h"

namespace pibake {

// The Accept header of a manifest request: OCI index and manifest, Docker manifest list and
// schema 2 manifest (the distribution spec's "Pulling manifests"; Docker's schema 1 is refused).
extern const char* const kManifestAccept;

// One platform entry of an index, as the OCI image index spec's "platform" object gives it.
struct OciPlatformEntry {
  std::string digest;
  std::string media_type;
  uint64_t size = 0;
  std::string os, architecture, variant;
};

// A manifest's JSON taken apart: an index (its platform entries) or an image manifest (its config
// and layers). Throws pibake::Error naming `what` for anything else: not JSON (an HTML page), a
// schema 1 manifest, a descriptor without a sha256 digest or size, a blob over kMaxImageBlobBytes.
struct ParsedManifest {
  bool is_index = false;
  std::string media_type;
  std::vector<OciPlatformEntry> platforms;  // an index
  OciBlob config;                           // a manifest
  std::vector<OciBlob> layers;              // a manifest
};
ParsedManifest parse_manifest(const std::string& json, const std::string& content_type, const std::string& what);

// The entry of an index a Raspberry Pi runs: linux/arm64, variant "v8" or none (the OCI image
// index spec's variant for arm64); nullptr when there is none.
const OciPlatformEntry* choose_arm64(const std::vector<OciPlatformEntry>& platforms);

// The "architecture"/"os" of an image config (OCI image config spec), to refuse a single-platform
// image that is not linux/arm64. Throws naming `what` when the config is not JSON.
std::pair<std::string, std::string> config_platform(const std::string& json, const std::string& what);

// A registry client for one build: remembers the bearer token it got per repository.
class RegistryClient {
 public:
  // `mirrors` rewrites the registry's base URL (https://HOST/, or http://HOST/ for a registry on
  // this machine) like any download; `offline` forbids the network (everything from the cache).
  RegistryClient(Cache& cache, Fetcher& fetcher, std::vector<std::pair<std::string, std::string>> mirrors,
                 bool offline);

  // Pulls `reference`'s linux/arm64 image into the cache: by `pinned`'s manifest digest when
  // given, else by tag (an index resolved to its linux/arm64 manifest). Every manifest and blob is
  // checked against its sha256 digest before it enters the cache (a blob shared by two images is
  // stored once). Throws pibake::Error naming the image for: no linux/arm64 variant, a digest
  // mismatch (manifest or blob), an answer that is no manifest (an HTML page), a body past its
  // size ceiling or deadline, a registry that wants credentials; nothing unverified is kept.
  PulledImage pull(const std::string& reference, const LockedImage* pinned);

 private:
  struct Fetched {
    std::string path;  // the manifest in the cache
    std::string text;
    std::string content_type;
    std::string digest;
  };
  std::string manifest_url(const ImageReference& r, const std::string& tag_or_digest) const;
  std::string blob_url(const ImageReference& r, const std::string& digest) const;
  HttpResponse get(const ImageReference& r, const std::string& url, const std::string& dest, uint64_t max_bytes,
                   const std::string& what);
  HttpRequest request_for(const ImageReference& r) const;
  void authenticate(const ImageReference& r, const std::string& challenge, const std::string& what);
  Fetched manifest(const ImageReference& r, const std::string& tag_or_digest, const std::string& expected_digest,
                   const std::string& what);
  OciBlob blob(const ImageReference& r, const OciBlob& descriptor, const std::string& what);

  Cache& cache_;
  Fetcher& fetcher_;
  std::vector<std::pair<std::string, std::string>> mirrors_;
  bool offline_;
  std::map<std::string, std::string> tokens_;  // "registry/repository" -> "Bearer …"
  std::map<std::string, bool> probed_;         // repositories whose auth needs are known
};

}  // namespace pibake
