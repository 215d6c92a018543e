// The libcurl fetcher: TLS verified, redirects followed, retries with backoff, resume with Range.
#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "fetch/fetcher.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace pibake {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// One global init for the process (curl_global_init is not thread-safe to repeat).
void global_init() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

// Every download goes over TLS (product brief, security model). Plain http is accepted only from
// this machine itself (a local mirror: 127.0.0.0/8, localhost, [::1]), where there is no wire to
// tamper with; the sha256 is checked either way.
bool is_https(const std::string& url) { return url.rfind("https://", 0) == 0; }

void check_transport(const std::string& url) {
  if (is_https(url)) return;
  if (url.rfind("http://", 0) == 0) {
    std::string host = url.substr(7, url.find_first_of("/?#", 7) - 7);
    if (host.rfind("[::1]", 0) == 0) return;
    host = host.substr(0, host.rfind(':') == std::string::npos ? host.size() : host.rfind(':'));
    if (host == "localhost" || host.rfind("127.", 0) == 0) return;
  }
  throw Error("refusing to download " + url +
              ": pibake downloads over https only (plain http only from a mirror on this machine, such as "
              "http://127.0.0.1:8080/…)");
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

class CurlFetcher : public Fetcher {
 public:
  explicit CurlFetcher(FetchOptions opts) : opts_(opts) { global_init(); }

  void fetch(const std::string& url, const std::string& dest, uint64_t max_bytes) override {
    if (fetch(url, dest, max_bytes, HttpRequest{}).status == 401) throw Error("cannot download " + url + ": HTTP 401");
  }

  HttpResponse fetch(const std::string& url, const std::string& dest, uint64_t max_bytes,
                     const HttpRequest& request) override {
    check_transport(url);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(deadline_seconds(max_bytes));
    std::string last_error;
    int backoff = opts_.first_backoff_ms;
    for (int attempt = 1; attempt <= opts_.attempts; ++attempt) {
      if (interrupted()) throw Error("interrupted");
      Outcome o = try_once(url, dest, max_bytes, deadline, request);
      if (o.ok || o.response.status == 401) {
        if (!o.ok) unlink(dest.c_str());
        return o.response;
      }
      last_error = o.error;
      if (o.discard) unlink(dest.c_str());  // nothing of a refused download is kept
      if (!o.retryable) break;
      if (attempt < opts_.attempts) {
        if (std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff) >= deadline) {
          last_error += fmt::format("; the download's deadline ({} s) has passed", deadline_seconds(max_bytes));
          break;
        }
        print_stderr(fmt::format("download of {} failed ({}); retrying in {:.1f} s\n", url, o.error, backoff / 1000.0));
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
        backoff *= 2;
      }
    }
    throw Error("cannot download " + url + ": " + last_error);
  }

 private:
  struct Outcome {
    bool ok = false;
    bool retryable = true;
    bool discard = false;  // remove the partial file: it can never be completed
    std::string error;
    HttpResponse response;
  };

  // The response headers the OCI client needs, of the last response (reset at each redirect).
  static size_t on_header(char* data, size_t size, size_t count, void* p) {
    auto* r = static_cast<HttpResponse*>(p);
    std::string line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) *r = HttpResponse{};
    size_t colon = line.find(':');
    if (colon == std::string::npos) return size * count;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    if (name == "content-type") r->content_type = value.substr(0, value.find(';'));
    if (name == "www-authenticate") r->www_authenticate = value;
    if (name == "docker-content-digest") r->docker_content_digest = value;
    return size * count;
  }

  // The host[:port] of a URL, to keep a token on the host it was issued for.
  static std::string host_of(const std::string& url) {
    size_t start = url.find("://");
    start = start == std::string::npos ? 0 : start + 3;
    return url.substr(start, url.find_first_of("/?#", start) - start);
  }

  long deadline_seconds(uint64_t max_bytes) const {
    uint64_t s =
        static_cast<uint64_t>(opts_.deadline_base_s) + max_bytes / static_cast<uint64_t>(opts_.deadline_bytes_per_s);
    return static_cast<long>(std::min<uint64_t>(s, static_cast<uint64_t>(opts_.deadline_max_s)));
  }

  // Where the body goes: appended to the file, counted against the ceiling; a redirect's own
  // body is dropped. Returning less than asked makes libcurl stop with CURLE_WRITE_ERROR.
  struct Sink {
    CURL* curl = nullptr;
    FILE* file = nullptr;
    uint64_t have = 0;  // bytes in the file, the resumed prefix included
    uint64_t max_bytes = 0;
    bool too_large = false;
    int write_errno = 0;
  };

  static size_t on_write(char* data, size_t size, size_t count, void* p) {
    auto* sink = static_cast<Sink*>(p);
    size_t n = size * count;
    long status = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300) return n;  // a redirect's or an error's body (errors are judged by status, not read)
    if (sink->have + n > sink->max_bytes) {
      sink->too_large = true;
      return 0;
    }
    if (std::fwrite(data, 1, n, sink->file) != n) {
      sink->write_errno = errno != 0 ? errno : EIO;
      return 0;
    }
    sink->have += n;
    return n;
  }

  struct Progress {
    const CurlFetcher* self;
    std::string name;
    uint64_t resume_from = 0;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last{};
    bool tty = isatty(STDERR_FILENO) != 0;
  };

  static int on_progress(void* p, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
    auto* pr = static_cast<Progress*>(p);
    if (interrupted()) return 1;  // abort the transfer; the signal handler already cleaned up
    auto t = std::chrono::steady_clock::now();
    // A bar on a terminal 5 times a second; plain lines every 10 s otherwise (logs, CI).
    auto every = pr->tty ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10000);
    if (!pr->self->opts_.progress || t - pr->last < every || total <= 0) return 0;
    pr->last = t;
    double secs = std::chrono::duration<double>(t - pr->start).count();
    double rate = secs > 0 ? static_cast<double>(now) / secs : 0;
    uint64_t done = pr->resume_from + static_cast<uint64_t>(now);
    uint64_t all = pr->resume_from + static_cast<uint64_t>(total);
    int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(all));
    if (pr->tty) {
      int filled = pct * 30 / 100;
      print_stderr(fmt::format("\r{:<32.32} [{:=<{}}{: <{}}] {:3}% {} of {} {}/s ", pr->name, "", filled, "",
                               30 - filled, pct, human(static_cast<double>(done)), human(static_cast<double>(all)),
                               human(rate)));
    } else {
      print_stderr(fmt::format("{}: {}% ({} of {})\n", pr->name, pct, human(static_cast<double>(done)),
                               human(static_cast<double>(all))));
    }
    return 0;
  }

  Outcome try_once(const std::string& url, const std::string& dest, uint64_t max_bytes,
                   std::chrono::steady_clock::time_point deadline, const HttpRequest& request) const {
    Outcome o;
    uint64_t have = file_size(dest);
    std::unique_ptr<FILE, FileCloser> out(std::fopen(dest.c_str(), have > 0 ? "ab" : "wb"));
    if (!out) {
      o.retryable = false;
      o.error = dest + ": " + std::strerror(errno);
      return o;
    }
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    char errbuf[CURL_ERROR_SIZE] = "";
    Progress progress{this, url.substr(url.rfind('/') + 1), have};
    Sink sink{curl.get(), out.get(), have, max_bytes};
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      o.retryable = false;
      o.error = "the download's deadline has passed";
      return o;
    }
    // Redirects are followed by hand (follow()), each target checked like the first URL.
    std::string current = url;
    CURLcode rc = CURLE_OK;
    long status = 0;
    struct SlistDeleter {
      void operator()(curl_slist* l) const { curl_slist_free_all(l); }
    };
    for (int redirects = 0;; ++redirects) {
      curl_slist* headers = nullptr;
      for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
      if (!request.authorization.empty() && host_of(current) == host_of(url))
        headers = curl_slist_append(headers, ("Authorization: " + request.authorization).c_str());
      std::unique_ptr<curl_slist, SlistDeleter> header_list(headers);
      curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, on_header);
      curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &o.response);
      curl_easy_setopt(curl.get(), CURLOPT_URL, current.c_str());
      curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
      curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https,http");
      curl_easy_setopt(curl.get(), CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(curl.get(), CURLOPT_SSL_VERIFYHOST, 2L);
      // An API request (headers given) goes without CURLOPT_FAILONERROR, which may stop before a
      // 401's WWW-Authenticate header was read: its error status is mapped to
      // CURLE_HTTP_RETURNED_ERROR below, the error's body dropped in on_write.
      const bool api = !request.headers.empty() || !request.authorization.empty();
      curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, api ? 0L : 1L);
      curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, opts_.connect_timeout_s);
      curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, opts_.low_speed_bytes_per_s);
      curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, opts_.low_speed_time_s);
      curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, static_cast<long>(left));
      // A Content-Length above the ceiling is refused before the body (the rest of it counts in on_write).
      curl_easy_setopt(curl.get(), CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(max_bytes - std::min(have, max_bytes)));
      curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "pibake/" PIBAKE_VERSION);
      curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_write);
      curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
      curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
      curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &progress);
      if (have > 0) curl_easy_setopt(curl.get(), CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(have));
      rc = curl_easy_perform(curl.get());
      status = 0;
      curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
      o.response.status = status;
      curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, nullptr);
      if (rc == CURLE_OK && status >= 400) rc = CURLE_HTTP_RETURNED_ERROR;
      char* location = nullptr;
      if (rc != CURLE_OK || status < 300 || status >= 400) break;
      curl_easy_getinfo(curl.get(), CURLINFO_REDIRECT_URL, &location);
      if (location == nullptr) break;
      if (redirects == kMaxRedirects) {
        o.retryable = false;
        o.discard = true;
        o.error = fmt::format("more than {} redirects", kMaxRedirects);
        return o;
      }
      // Never from https to http, and plain http only to this machine (check_transport).
      std::string next = location;
      if (is_https(current) && !is_https(next)) {
        o.retryable = false;
        o.discard = true;
        o.error = "redirected from https to " + next + ", which is not https";
        return o;
      }
      try {
        check_transport(next);
      } catch (const Error&) {
        o.retryable = false;
        o.discard = true;
        o.error = "redirected to " + next + ", refused: downloads stay on https (plain http only on this machine)";
        return o;
      }
      current = next;
    }
    if (progress.tty && opts_.progress) print_stderr("\n");
    if (std::fflush(out.get()) != 0 && sink.write_errno == 0) sink.write_errno = errno;
    if (sink.write_errno != 0 || sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      o.retryable = false;
      o.discard = true;
      if (sink.write_errno == ENOSPC) {
        o.error = "the disk holding " + dest + " is full (" + std::strerror(ENOSPC) +
                  "); the partial file was removed: free some space, or set XDG_CACHE_HOME to a larger disk";
      } else if (sink.write_errno != 0) {
        o.error = dest + ": " + std::strerror(sink.write_errno) + " (the partial file was removed)";
      } else {
        o.error =
            fmt::format("the resource is larger than {} bytes, the most expected for it (nothing was kept)", max_bytes);
      }
      return o;
    }
    if (rc == CURLE_OK) {
      // A server that ignored our Range header sent the whole file from byte 0 (status 200):
      // what we appended is a duplicate, so start over.
      if (have > 0 && status == 200) {
        out.reset();
        truncate(dest.c_str(), 0);
        o.error = "the server does not support resuming";
        return o;
      }
      o.ok = true;
      return o;
    }
    o.error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT && std::chrono::steady_clock::now() >= deadline) {
      o.retryable = false;
      o.error += " (the download's deadline has passed)";
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      o.error = fmt::format("HTTP {}", status);
      if (status == 401) return o;  // the caller authenticates (HttpResponse)
      // 416: our partial file is longer than the resource; start over. 4xx other than 408/429:
      // retrying cannot help.
      if (status == 416) {
        out.reset();
        truncate(dest.c_str(), 0);
      } else if (status >= 400 && status < 500 && status != 408 && status != 429) {
        o.retryable = false;
      }
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_WRITE_ERROR || rc == CURLE_UNSUPPORTED_PROTOCOL ||
        rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
      o.retryable = false;
    }
    return o;
  }

  static constexpr int kMaxRedirects = 10;
  FetchOptions opts_;
};

}  // namespace

std::unique_ptr<Fetcher> make_curl_fetcher(const FetchOptions& opts) { return std::make_unique<CurlFetcher>(opts); }

}  // namespace pibake
