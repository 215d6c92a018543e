// Helpers shared by the unit tests: scratch directories, running fixture tools with an argv vector,
// and building small Ubuntu-shaped disk images with mkfs.vfat, mke2fs -d and sfdisk.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "fetch/fetcher.h"

namespace pibake::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its content at scope exit.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (searched in PATH, plus /sbin and /usr/sbin) with no shell; captures its output.
ToolResult run_tool(const std::vector<std::string>& argv, const std::string& stdin_text = "");
// Same, but fails the current test (Catch2 REQUIRE) when the tool is missing or exits non-zero.
std::string must_run(const std::vector<std::string>& argv, const std::string& stdin_text = "");
bool have_tool(const std::string& name);
// For a check that needs an optional tool: true when `name` is installed. Otherwise the check is
// skipped with a Catch2 warning naming `package`, except under CI=true, where a missing tool fails
// the test (a skip must not leave CI green).
bool tool_or_skip(const std::string& name, const std::string& package);

// Sets (or, with nullptr, unsets) an environment variable for one scope; with only a name it just
// restores the variable's value at scope exit.
class EnvVar {
 public:
  explicit EnvVar(const char* name) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
  }
  EnvVar(const char* name, const char* value) : EnvVar(name) {
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvVar() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void write_text(const std::string& path, const std::string& text);
// Fetch options for tests against the local server: few tries, 10 ms backoff, no progress.
FetchOptions quick_fetch_options();
// Regular files under `dir`, recursively (0 when it does not exist).
size_t count_files(const std::string& dir);
std::string read_text(const std::string& path);
// `n` pseudo-random bytes from std::mt19937 seeded with `seed`: the same bytes for the same seed.
std::string random_bytes(size_t n, uint32_t seed);
// The SHA-256 of the file at `path` as sha256sum(1) prints it (64 lowercase hex digits), for
// checking that an image changed or did not without pibake's own digest code.
std::string sha256(const std::string& path);

// Layout of a fixture disk image, as Ubuntu's raspi images have it: MBR, p1 FAT32 "system-boot"
// (type c), p2 ext4 "writable" (type 83) up to the end.
struct FixtureImage {
  std::string path;
  uint64_t boot_offset = 0, boot_size = 0;
  uint64_t root_offset = 0, root_size = 0;
};

struct FixtureOptions {
  uint64_t boot_mib = 64;
  uint64_t root_mib = 96;
  std::string root_fs = "ext4";  // anything mke2fs -t takes, or "vfat" for a wrong-root test
  std::string boot_dir;          // copied into system-boot with mcopy when not empty
  std::string root_dir;          // populated into writable with mke2fs -d when not empty
  // The Ubuntu release whose shape the skeleton has (make-base-image.sh --release): the unit
  // tests read system-boot's files at its root, as 24.04 has them; tests/cli/releases.sh covers
  // 25.10 and 26.04's A/B layout (the CLI tests' default).
  std::string release = "24.04";
};

// tests/fixtures/http_server.py on 127.0.0.1 serving `root` (Range support, request log, and
// "--drop-once PATH:BYTES" to cut a response short). Stopped at scope exit.
class HttpServer {
 public:
  explicit HttpServer(const std::string& root, const std::vector<std::string>& extra_args = {});
  ~HttpServer();
  void stop();
  int port() const { return port_; }
  std::string url(const std::string& path) const;  // "http://127.0.0.1:PORT" + path
  std::string log() const;                         // "GET /path bytes=N-" lines

 private:
  ScratchDir state_;
  int pid_ = -1;
  int port_ = 0;
};

// Builds `path` with sfdisk, mkfs.vfat -F 32, mke2fs -d, all without root.
FixtureImage make_fixture_image(const std::string& path, const FixtureOptions& opts = {});

}  // namespace pibake::test
