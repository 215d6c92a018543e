// Atomic outputs and their clean-up on signals (see atomic_file.h).
#include "util/atomic_file.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace pibake {
namespace {

// The signal handler may only use async-signal-safe calls, so the registry is a fixed array of
// paths with an atomic "in use" flag each; no allocation happens inside the handler.
constexpr int kSlots = 64;
struct Slot {
  std::atomic<bool> used{false};
  char path[PATH_MAX];
};
Slot g_slots[kSlots];
std::atomic<bool> g_interrupted{false};

int register_temp(const std::string& path) {
  if (path.size() >= PATH_MAX) throw Error(path + ": path too long");
  for (int i = 0; i < kSlots; ++i) {
    // unregister_temp() clears the path before releasing a slot, so a claimed slot reads as empty
    // to the handler until the path is complete.
    bool expected = false;
    if (g_slots[i].used.compare_exchange_strong(expected, true)) {
      // First byte last: the handler never sees a half-copied path.
      std::memcpy(g_slots[i].path + 1, path.c_str() + 1, path.size());
      g_slots[i].path[0] = path[0];
      return i;
    }
  }
  throw Error("internal error: too many outputs in progress");
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  g_slots[slot].path[0] = '\0';
  g_slots[slot].used.store(false);
}

extern "C" void on_interrupt(int sig) {
  g_interrupted.store(true);
  for (Slot& s : g_slots) {
    if (s.used.load() && s.path[0] != '\0') unlink(s.path);
  }
  const char msg[] =
      "\npibake: interrupted; partial outputs removed (an image being regenerated in place is put back by the "
      "next build into its directory)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string temp_name_for(const std::string& final_path) { return hidden_name_beside(final_path, ".tmp"); }

// fsync_directory of `path`'s directory; a failure is not reported (the rename it follows is done).
void fsync_dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  try {
    fsync_directory(slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash)));
  } catch (const Error&) {
  }
}

}  // namespace

void fsync_directory(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || fsync(fd.get()) != 0) throw Error("cannot sync directory " + dir + ": " + std::strerror(errno));
}

std::string hidden_name_beside(const std::string& path, const std::string& suffix) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return dir + "." + base + suffix;
}

AtomicFile::AtomicFile(std::string final_path, mode_t mode)
    : final_path_(std::move(final_path)), temp_path_(temp_name_for(final_path_)) {
  slot_ = register_temp(temp_path_);
  unlink(temp_path_.c_str());  // a stale one from a killed run
  fd_.reset(open(temp_path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd_) {
    int e = errno;
    unregister_temp(slot_);
    throw Error("cannot create " + final_path_ + ": " + std::strerror(e));
  }
  fchmod(fd_.get(), mode);  // umask must not widen or narrow what we promise (0600 for secrets)
}

AtomicFile::~AtomicFile() {
  close_fd();
  if (!committed_) unlink(temp_path_.c_str());
  unregister_temp(slot_);
}

void AtomicFile::close_fd() { fd_.reset(); }

void AtomicFile::commit() {
  // Reopened when close_fd() gave the descriptor up for another library.
  UniqueFd reopened(fd_ ? -1 : open(temp_path_.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = fd_ ? fd_.get() : reopened.get();
  if (fd < 0 || fsync(fd) != 0) throw Error("cannot write " + final_path_ + ": " + std::strerror(errno));
  reopened.reset();
  close_fd();
  if (interrupted()) throw Error("interrupted");
  if (rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    throw Error("cannot write " + final_path_ + " (rename): " + std::strerror(errno));
  }
  committed_ = true;
  fsync_dir_of(final_path_);
}

void write_file_atomic(const std::string& path, const std::string& data, mode_t mode) {
  AtomicFile out(path, mode);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(out.fd(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot write " + path + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  out.commit();
}

std::string mention_final_path(std::string message, const std::string& final_path) {
  return mention_final_path(std::move(message), final_path, temp_name_for(final_path));
}

std::string mention_final_path(std::string message, const std::string& final_path, const std::string& working_path) {
  for (size_t at = message.find(working_path); at != std::string::npos;
       at = message.find(working_path, at + final_path.size())) {
    message.replace(at, working_path.size(), final_path);
  }
  return message;
}

bool is_temp_name(const std::string& file_name, std::string* final_name) {
  constexpr std::string_view kSuffix = ".tmp";
  if (file_name.size() <= 1 + kSuffix.size() || file_name[0] != '.' || !file_name.ends_with(kSuffix)) return false;
  if (final_name) *final_name = file_name.substr(1, file_name.size() - 1 - kSuffix.size());
  return true;
}

void install_interrupt_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  signal(SIGXFSZ, SIG_IGN);
}

bool interrupted() { return g_interrupted.load(); }

}  // namespace pibake
