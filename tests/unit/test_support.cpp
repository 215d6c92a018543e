// Helpers shared by the unit tests (see test_support.h).
#include "test_support.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "util/run.h"

namespace pibake::test {

ScratchDir::ScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/pibake-test.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// Tools are found as pibake finds the programs it runs (util/run.h): PATH, then /usr/sbin and /sbin.
bool have_tool(const std::string& name) { return !find_program(name).empty(); }

bool tool_or_skip(const std::string& name, const std::string& package) {
  if (have_tool(name)) return true;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    FAIL(name << " is not installed (apt-get install " << package << "); under CI=true a skip is a failure");
  }
  WARN("skipped: " << name << " is not installed (apt-get install " << package << ")");
  return false;
}

ToolResult run_tool(const std::vector<std::string>& argv, const std::string& stdin_text) {
  ToolResult result;
  std::string exe = find_program(argv.at(0));
  if (exe.empty()) {
    result.output = argv[0] + ": not found";
    return result;
  }
  ScratchDir io;
  std::string in_path = io / "stdin", out_path = io / "out";
  write_text(in_path, stdin_text);
  std::fflush(nullptr);  // or the child's freopen flushes our buffered output a second time
  pid_t pid = fork();
  if (pid == 0) {
    FILE* in = std::freopen(in_path.c_str(), "r", stdin);
    FILE* out = std::freopen(out_path.c_str(), "w", stdout);
    if (in == nullptr || out == nullptr) _exit(126);
    dup2(STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.output = read_text(out_path);
  return result;
}

std::string must_run(const std::vector<std::string>& argv, const std::string& stdin_text) {
  INFO("tool: " << argv.at(0));
  REQUIRE(have_tool(argv.at(0)));
  ToolResult r = run_tool(argv, stdin_text);
  INFO("output: " << r.output);
  REQUIRE(r.exit_code == 0);
  return r.output;
}

FetchOptions quick_fetch_options() {
  FetchOptions o;
  o.attempts = 3;
  o.first_backoff_ms = 10;
  o.progress = false;
  return o;
}

size_t count_files(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) ++n;
  return n;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string sha256(const std::string& path) { return must_run({"sha256sum", path}).substr(0, 64); }

HttpServer::HttpServer(const std::string& root, const std::vector<std::string>& extra_args) {
  std::string port_file = state_ / "port", log_file = state_ / "log";
  write_text(log_file, "");
  std::vector<std::string> argv = {find_program("python3"),
                                   std::string(PIBAKE_SOURCE_DIR) + "/tests/fixtures/http_server.py", root, port_file,
                                   log_file};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  REQUIRE(!argv[0].empty());
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  for (int i = 0; i < 500 && port_ == 0; ++i) {
    std::string text = read_text(port_file);
    if (!text.empty())
      port_ = std::stoi(text);
    else
      usleep(10000);
  }
  REQUIRE(port_ != 0);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

std::string HttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::string HttpServer::log() const { return read_text(state_ / "log"); }

FixtureImage make_fixture_image(const std::string& path, const FixtureOptions& opts) {
  std::vector<std::string> argv = {"bash",
                                   std::string(PIBAKE_SOURCE_DIR) + "/tests/fixtures/make-base-image.sh",
                                   path,
                                   "--boot-mib",
                                   std::to_string(opts.boot_mib),
                                   "--root-mib",
                                   std::to_string(opts.root_mib),
                                   "--root-fs",
                                   opts.root_fs,
                                   "--release",
                                   opts.release};
  if (!opts.boot_dir.empty()) argv.insert(argv.end(), {"--boot-dir", opts.boot_dir});
  if (!opts.root_dir.empty()) argv.insert(argv.end(), {"--root-dir", opts.root_dir});
  std::string out = must_run(argv);
  FixtureImage img;
  img.path = path;
  unsigned long long bo = 0, bs = 0, ro = 0, rs = 0;
  std::string last = out.substr(out.rfind("boot_offset="));
  REQUIRE(std::sscanf(last.c_str(), "boot_offset=%llu boot_size=%llu root_offset=%llu root_size=%llu", &bo, &bs, &ro,
                      &rs) == 4);
  img.boot_offset = bo;
  img.boot_size = bs;
  img.root_offset = ro;
  img.root_size = rs;
  return img;
}

}  // namespace pibake::test
