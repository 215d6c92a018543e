// Downloads: the seam between pibake and the network (docs/conventions.md, "Narrow seams at I/O"). CurlFetcher is the
// real one (libcurl); tests point it at a server on 127.0.0.1.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pibake {

// Size ceilings known before a download starts, per kind (docs/artifacts.md, "Bounded downloads"):
// a resource announced or sent larger than its ceiling is refused and nothing of it is kept.
// Checksum files: a SHA256SUMS lists a few dozen lines, a .sha256 one.
constexpr uint64_t kMaxChecksumFileBytes = uint64_t{1} << 20;
// Release binaries and tarballs (kubelet, containerd, runc, CNI plugins: tens of MiB each).
constexpr uint64_t kMaxArtifactBytes = uint64_t{512} << 20;
// Base images: Ubuntu's raspi .img.xz is about 1.2 GiB, a raw .img about 4 GiB.
constexpr uint64_t kMaxBaseImageBytes = uint64_t{8} << 30;

// OCI manifests and indexes: a few KiB; anything near this ceiling is no manifest.
constexpr uint64_t kMaxManifestBytes = uint64_t{4} << 20;
// Container image layers and configs (CoreDNS's and etcd's largest layers are tens of MiB).
constexpr uint64_t kMaxImageBlobBytes = uint64_t{1} << 30;

// Request headers for an API that needs them (the OCI distribution API).
struct HttpRequest {
  std::vector<std::string> headers;  // whole header lines: "Accept: application/vnd.oci.image.index.v1+json, …"
  // "Bearer <token>": sent only to the first URL's host, never after a redirect to another host
  // (a registry's blob redirect to a storage bucket must not receive the registry's token).
  std::string authorization;
};

// What the final response (after redirects) said besides its body.
struct HttpResponse {
  long status = 0;                    // 200, or 401 (returned, not thrown: the caller authenticates)
  std::string content_type;           // Content-Type, without parameters
  std::string www_authenticate;       // WWW-Authenticate, on a 401
  std::string docker_content_digest;  // Docker-Content-Digest, when the server sent one
};

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // Downloads `url` into `dest`, at most `max_bytes` bytes in all. When `dest` already holds a
  // prefix of the resource (an interrupted download), the rest is requested with a Range header
  // and appended. Throws pibake::Error naming the URL on failure (after its own retries); a
  // resource larger than `max_bytes`, a full disk, or a deadline passed are not retried, and
  // then `dest` is removed.
  virtual void fetch(const std::string& url, const std::string& dest, uint64_t max_bytes) = 0;

  // Like fetch(), with `request`'s headers, reporting the response's headers. A 401 is not an
  // error here: it is returned with its WWW-Authenticate (and `dest` removed) so the caller can
  // fetch a token and ask again. Every other failure throws as fetch() does.
  virtual HttpResponse fetch(const std::string& url, const std::string& dest, uint64_t max_bytes,
                             const HttpRequest& request) = 0;
};

struct FetchOptions {
  int attempts = 5;            // tries per URL, with exponential backoff between them
  int first_backoff_ms = 500;  // doubled after each failed try
  long connect_timeout_s = 30;
  long low_speed_bytes_per_s = 16 << 10;  // abort a try slower than this ...
  long low_speed_time_s = 60;             // ... for this long (a 2 KiB/s drip is no mirror)
  // The whole download (every try and backoff) must end within deadline_base_s plus the time
  // max_bytes takes at deadline_bytes_per_s, and at most deadline_max_s.
  long deadline_base_s = 120;
  long deadline_bytes_per_s = 128 << 10;
  long deadline_max_s = 3 * 3600;
  bool progress = true;  // a progress bar on a terminal, plain lines otherwise
};

std::unique_ptr<Fetcher> make_curl_fetcher(const FetchOptions& opts = {});

}  // namespace pibake
