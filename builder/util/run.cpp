// External tools run with an argv vector (see run.h).
#include "util/run.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake {

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env = std::getenv("PATH");
  std::stringstream dirs(std::string(env ? env : "/usr/bin:/bin") + ":/usr/sbin:/sbin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

RunResult run_command(const std::vector<std::string>& argv, Stdin in) {
  std::string exe = find_program(argv.at(0));
  if (exe.empty()) throw Error(argv[0] + " was not found in PATH, /usr/sbin or /sbin");
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  UniqueFd read_end(pipefd[0]), write_end(pipefd[1]);
  // Everything the child needs is prepared before fork(): with build threads running, the child
  // may only make async-signal-safe calls (no allocation) until execv.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);  // buffered output must not be written twice
  pid_t pid = fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(write_end.get(), STDOUT_FILENO);
    dup2(write_end.get(), STDERR_FILENO);
    if (in == Stdin::kClosed) {
      close(STDIN_FILENO);
    } else {
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    }
    signal(SIGPIPE, SIG_DFL);  // main() ignores SIGPIPE; an ignored signal would survive execv
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  write_end.reset();  // the child's copy is the only writer left: read() ends when it exits
  RunResult result;
  char buf[4096];
  for (;;) {
    ssize_t n = read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  read_end.reset();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace pibake
