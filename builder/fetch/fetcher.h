// Downloads: the seam between pibake and the network (docs/conventions.md, "Narrow seams at I/O"). CurlFetcher is the
// real one (libcurl); tests point it at a server on 127.0.0.1.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pibake {

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // Downloads `url` into `dest`. When `dest` already holds a prefix of the resource (an
  // interrupted download), the rest is requested with a Range header and appended.
  // Throws pibake::Error naming the URL on failure (after its own retries).
  virtual void fetch(const std::string& url, const std::string& dest) = 0;
};

struct FetchOptions {
  int attempts = 5;            // tries per URL, with exponential backoff between them
  int first_backoff_ms = 500;  // doubled after each failed try
  long connect_timeout_s = 30;
  long low_speed_time_s = 60;  // abort a try that moves < 1 KiB/s for this long
  bool progress = true;        // a progress bar on a terminal, plain lines otherwise
};

std::unique_ptr<Fetcher> make_curl_fetcher(const FetchOptions& opts = {});

}  // namespace pibake
