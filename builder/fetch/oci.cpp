// The OCI distribution API client (see oci.h).
#include "fetch/oci.h"

#include <unistd.h>

#include <fmt/format.h>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "plan/checksums.h"
#include "plan/mirrors.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"

namespace pibake {

const char* const kManifestAccept =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

namespace {

using nlohmann::json;

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

std::string hex_of(const std::string& digest) { return digest.substr(7); }

bool is_sha256_digest(const std::string& d) { return d.rfind("sha256:", 0) == 0 && is_sha256_hex(d.substr(7)); }

json parse_json(const std::string& text, const std::string& content_type, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    std::string shown = content_type.empty() ? "something" : content_type;
    throw Error(
        fmt::format("{}: the registry answered {} that is not JSON ({} bytes starting {:?}), not an image "
                    "manifest",
                    what, shown, text.size(), text.substr(0, 40)));
  }
  return j;
}

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

OciBlob descriptor(const json& d, const std::string& what) {
  if (!d.is_object()) throw Error(what + ": a descriptor in its manifest is not an object");
  OciBlob b;
  b.media_type = string_field(d, "mediaType");
  b.digest = string_field(d, "digest");
  if (!is_sha256_digest(b.digest)) {
    throw Error(fmt::format("{}: its manifest names a blob by {:?}, not a sha256 digest", what, b.digest));
  }
  auto size = d.find("size");
  if (size == d.end() || !size->is_number_unsigned())
    throw Error(what + ": its manifest gives " + b.digest + " no size");
  b.size = size->get<uint64_t>();
  if (b.size > kMaxImageBlobBytes) {
    throw Error(fmt::format("{}: its manifest gives {} a size of {} bytes, more than the {} pibake accepts", what,
                            b.digest, b.size, kMaxImageBlobBytes));
  }
  return b;
}

// The temp file a manifest or token is read into, in the cache's partial/ directory.
std::string temp_in(const Cache& cache, const std::string& name) {
  std::string dir = cache.dir() + "/partial";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create cache directory " + dir + ": " + ec.message());
  return fmt::format("{}/{}.{}.tmp", dir, name, getpid());
}

bool is_loopback_host(const std::string& host) {
  std::string h =
      host.substr(0, host.rfind(':') == std::string::npos || host[0] == '[' ? host.size() : host.rfind(':'));
  return h == "localhost" || h.rfind("127.", 0) == 0 || host.rfind("[::1]", 0) == 0;
}

// RFC 6750 / the distribution spec's token challenge: Bearer realm="…",service="…",scope="…".
std::map<std::string, std::string> parse_challenge(const std::string& header) {
  std::map<std::string, std::string> out;
  size_t i = header.find(' ');
  out[""] = header.substr(0, i);
  while (i != std::string::npos && i < header.size()) {
    size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = header.substr(i, eq - i);
    key.erase(0, key.find_first_not_of(" ,"));
    std::string value;
    size_t j = eq + 1;
    if (j < header.size() && header[j] == '"') {
      size_t end = header.find('"', j + 1);
      value = header.substr(j + 1, end == std::string::npos ? std::string::npos : end - j - 1);
      i = end == std::string::npos ? end : end + 1;
    } else {
      size_t end = header.find(',', j);
      value = header.substr(j, end == std::string::npos ? std::string::npos : end - j);
      i = end;
    }
    out[key] = value;
  }
  return out;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

ParsedManifest parse_manifest(const std::string& text, const std::string& content_type, const std::string& what) {
  json j = parse_json(text, content_type, what);
  ParsedManifest m;
  m.media_type = string_field(j, "mediaType");
  if (m.media_type.empty()) m.media_type = content_type;
  if (m.media_type.empty()) m.media_type = j.contains("manifests") ? kOciIndex : kOciManifest;
  if (m.media_type == kOciIndex || m.media_type == kDockerList) {
    m.is_index = true;
    auto list = j.find("manifests");
    if (list == j.end() || !list->is_array()) throw Error(what + ": its index lists no manifests");
    for (const json& e : *list) {
      OciBlob d = descriptor(e, what);
      OciPlatformEntry p{d.digest, d.media_type, d.size, "", "", ""};
      if (auto pl = e.find("platform"); pl != e.end() && pl->is_object()) {
        p.os = string_field(*pl, "os");
        p.architecture = string_field(*pl, "architecture");
        p.variant = string_field(*pl, "variant");
      }
      m.platforms.push_back(p);
    }
    return m;
  }
  if (m.media_type != kOciManifest && m.media_type != kDockerManifest) {
    throw Error(
        fmt::format("{}: the registry sent a manifest of type {:?}, which pibake does not read (OCI or Docker "
                    "schema 2 manifests and indexes only)",
                    what, m.media_type));
  }
  auto config = j.find("config");
  auto layers = j.find("layers");
  if (config == j.end() || layers == j.end() || !layers->is_array()) {
    throw Error(what + ": its manifest has no config or no layers");
  }
  m.config = descriptor(*config, what);
  for (const json& l : *layers) m.layers.push_back(descriptor(l, what));
  return m;
}

const OciPlatformEntry* choose_arm64(const std::vector<OciPlatformEntry>& platforms) {
  for (const OciPlatformEntry& p : platforms)
    if (p.os == "linux" && p.architecture == "arm64" && (p.variant.empty() || p.variant == "v8")) return &p;
  return nullptr;
}

std::pair<std::string, std::string> config_platform(const std::string& text, const std::string& what) {
  json j = parse_json(text, "", what + " (its image config)");
  return {string_field(j, "architecture"), string_field(j, "os")};
}

RegistryClient::RegistryClient(Cache& cache, Fetcher& fetcher, std::vector<std::pair<std::string, std::string>> mirrors,
                               bool offline)
    : cache_(cache), fetcher_(fetcher), mirrors_(std::move(mirrors)), offline_(offline) {}

std::string RegistryClient::manifest_url(const ImageReference& r, const std::string& tag_or_digest) const {
  // A registry on this machine speaks plain http (as Docker treats 127.0.0.0/8); any other, https.
  std::string base = (is_loopback_host(r.registry) ? "http://" : "https://") + r.registry + "/";
  return apply_mirrors(base + "v2/" + r.repository + "/manifests/" + tag_or_digest, mirrors_);
}

std::string RegistryClient::blob_url(const ImageReference& r, const std::string& digest) const {
  std::string base = (is_loopback_host(r.registry) ? "http://" : "https://") + r.registry + "/";
  return apply_mirrors(base + "v2/" + r.repository + "/blobs/" + digest, mirrors_);
}

HttpRequest RegistryClient::request_for(const ImageReference& r) const {
  HttpRequest req;
  req.headers.push_back(kManifestAccept);
  auto it = tokens_.find(r.registry + "/" + r.repository);
  if (it != tokens_.end()) req.authorization = it->second;
  return req;
}

void RegistryClient::authenticate(const ImageReference& r, const std::string& challenge, const std::string& what) {
  std::map<std::string, std::string> c = parse_challenge(challenge);
  if (c[""] != "Bearer" || c["realm"].empty()) {
    throw Error(
        fmt::format("{}: the registry wants credentials ({:?}); pibake pulls anonymously: use a registry or "
                    "mirror that serves the image without a login",
                    what, challenge));
  }
  std::string scope = c.count("scope") ? c["scope"] : "repository:" + r.repository + ":pull";
  std::string url = c["realm"] + (c["realm"].find('?') == std::string::npos ? "?" : "&") +
                    "service=" + url_encode(c["service"]) + "&scope=" + url_encode(scope);
  std::string tmp = temp_in(cache_, "token");
  unlink(tmp.c_str());
  HttpResponse resp = fetcher_.fetch(url, tmp, kMaxChecksumFileBytes, HttpRequest{{"Accept: application/json"}, ""});
  std::string text;
  if (resp.status != 401) text = read_file(tmp, kMaxChecksumFileBytes);
  unlink(tmp.c_str());
  if (resp.status == 401) throw Error(what + ": the token service " + c["realm"] + " refused an anonymous token");
  json j = parse_json(text, resp.content_type, what + " (the token from " + c["realm"] + ")");
  std::string token = string_field(j, "token");
  if (token.empty()) token = string_field(j, "access_token");
  if (token.empty()) throw Error(what + ": the token service " + c["realm"] + " sent no token");
  tokens_[r.registry + "/" + r.repository] = "Bearer " + token;
}

HttpResponse RegistryClient::get(const ImageReference& r, const std::string& url, const std::string& dest,
                                 uint64_t max_bytes, const std::string& what) {
  HttpResponse resp;
  if (is_local_source(url)) {
    // A mirror directory laid out as the API's GET paths (v2/<name>/manifests/<tag or digest>).
    std::string text;
    try {
      text = read_file(local_path(url), max_bytes);
    } catch (const Error& e) {
      throw Error(what + ": " + e.what());
    }
    write_file_atomic(dest, text, 0644);
    resp.status = 200;
    return resp;
  }
  try {
    resp = fetcher_.fetch(url, dest, max_bytes, request_for(r));
    if (resp.status == 401) {
      authenticate(r, resp.www_authenticate, what);
      resp = fetcher_.fetch(url, dest, max_bytes, request_for(r));
      if (resp.status == 401) throw Error("the registry refused the anonymous token it issued (HTTP 401)");
    }
  } catch (const Error& e) {
    unlink(dest.c_str());
    std::string msg = e.what();
    if (msg.rfind(what, 0) == 0) throw;
    throw Error(what + ": " + msg);
  }
  probed_[r.registry + "/" + r.repository] = true;
  return resp;
}

RegistryClient::Fetched RegistryClient::manifest(const ImageReference& r, const std::string& tag_or_digest,
                                                 const std::string& expected_digest, const std::string& what) {
  Fetched f;
  const std::string url = manifest_url(r, tag_or_digest);
  if (!expected_digest.empty() && (offline_ || cache_.has_blob(hex_of(expected_digest)))) {
    // The pinned manifest from the cache (verified there), or the error naming `pibake fetch`.
    f.path =
        cache_.get_blob(fetcher_, url, hex_of(expected_digest), offline_, what + " (its manifest)", kMaxManifestBytes);
    f.digest = expected_digest;
    f.text = read_file(f.path, kMaxManifestBytes);
    return f;
  }
  if (offline_) {
    throw Error(
        fmt::format("{} is not pinned in the lock file and --offline forbids asking its registry ({}); run "
                    "`pibake fetch` while online first",
                    what, url));
  }
  std::string tmp = temp_in(cache_, "manifest");
  unlink(tmp.c_str());
  HttpResponse resp = get(r, url, tmp, kMaxManifestBytes, what);
  std::string got;
  try {
    got = "sha256:" + sha256_file(tmp);
    f.text = read_file(tmp, kMaxManifestBytes);
  } catch (const Error&) {
    unlink(tmp.c_str());
    throw;
  }
  f.content_type = resp.content_type;
  const std::string& want = !expected_digest.empty() ? expected_digest : resp.docker_content_digest;
  if (!want.empty() && got != want) {
    unlink(tmp.c_str());
    throw Error(fmt::format(
        "{}: manifest digest mismatch: {} should be {} ({}) but its content is {}; nothing was "
        "kept",
        what, url, want, expected_digest.empty() ? "the registry's Docker-Content-Digest" : "asked for", got));
  }
  // Parsed before it enters the cache: an HTML page never becomes a "manifest".
  try {
    parse_manifest(f.text, f.content_type, what);
    f.path = cache_.get_blob(fetcher_, tmp, hex_of(got), false, what + " (its manifest)", kMaxManifestBytes);
  } catch (const Error&) {
    unlink(tmp.c_str());
    throw;
  }
  unlink(tmp.c_str());
  f.digest = got;
  return f;
}

OciBlob RegistryClient::blob(const ImageReference& r, const OciBlob& d, const std::string& what) {
  OciBlob out = d;
  const std::string url = blob_url(r, d.digest);
  const std::string key = r.registry + "/" + r.repository;
  if (!offline_ && !cache_.has_blob(hex_of(d.digest)) && !probed_[key]) {
    // The manifests came from the cache: learn whether the registry wants a token first.
    std::string tmp = temp_in(cache_, "probe");
    unlink(tmp.c_str());
    get(r, manifest_url(r, r.tag), tmp, kMaxManifestBytes, what);
    unlink(tmp.c_str());
  }
  // The blob's size from the manifest is its ceiling: a longer body is cut and refused.
  out.path = cache_.get_blob(fetcher_, url, hex_of(d.digest), offline_, fmt::format("{} (blob {})", what, d.digest),
                             d.size, request_for(r));
  return out;
}

PulledImage RegistryClient::pull(const std::string& reference, const LockedImage* pinned) {
  const ImageReference r = parse_image_reference(reference);
  const std::string what = "image " + reference;
  PulledImage img;
  img.reference = reference;
  Fetched m;
  if (pinned != nullptr) {
    img.index_digest = pinned->index_digest;
    m = manifest(r, pinned->manifest_digest, pinned->manifest_digest, what);
  } else {
    m = manifest(r, r.tag, "", what);
    ParsedManifest top = parse_manifest(m.text, m.content_type, what);
    if (top.is_index) {
      img.index_digest = m.digest;
      const OciPlatformEntry* arm = choose_arm64(top.platforms);
      if (arm == nullptr) {
        std::string have;
        for (const OciPlatformEntry& p : top.platforms)
          have += (have.empty() ? "" : ", ") + p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
        throw Error(fmt::format("{} has no linux/arm64 variant (its index lists {}); a Raspberry Pi cannot run it",
                                what, have.empty() ? "no platform" : have));
      }
      m = manifest(r, arm->digest, arm->digest, what);
    }
  }
  ParsedManifest pm = parse_manifest(m.text, m.content_type, what);
  if (pm.is_index) throw Error(what + ": the manifest " + m.digest + " is an index, not an image manifest");
  img.manifest = {pm.media_type, m.digest, m.text.size(), m.path};
  OciBlob config = blob(r, pm.config, what);
  auto [arch, os] = config_platform(read_file(config.path, kMaxManifestBytes), what);
  if (arch != "arm64" || os != "linux") {
    throw Error(
        fmt::format("{} is {}/{}, not linux/arm64 (no index offers an arm64 variant); a Raspberry Pi cannot "
                    "run it",
                    what, os, arch));
  }
  img.blobs.push_back(config);
  for (const OciBlob& l : pm.layers) img.blobs.push_back(blob(r, l, what));
  return img;
}

}  // namespace pibake
