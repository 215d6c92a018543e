// Progress display for `pibake flash` (flash_progress.h).
#include "pipeline/flash_progress.h"
#include "util/error.h"

#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>

namespace pibake {
namespace {
constexpr auto kTtyInterval = std::chrono::milliseconds(200);
constexpr auto kLogInterval = std::chrono::seconds(5);
constexpr int kBarWidth = 30;
}  // namespace

Progress::Progress() : tty_(isatty(STDERR_FILENO) == 1) {}

void Progress::start(const std::string& phase, uint64_t total) {
  if (drawn_ && tty_) draw(true);
  if (drawn_ && tty_) std::fputc('\n', stderr);
  phase_ = phase;
  total_ = total;
  done_ = 0;
  drawn_ = false;
  phase_start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(uint64_t done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < (tty_ ? std::chrono::duration_cast<std::chrono::milliseconds>(kTtyInterval)
                               : std::chrono::duration_cast<std::chrono::milliseconds>(kLogInterval))) {
    return;
  }
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (drawn_ && tty_) {
    draw(true);
    std::fputc('\n', stderr);
  }
  drawn_ = false;
}

void Progress::draw(bool /*final_draw*/) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - phase_start_).count();
  double rate = secs > 0 ? done_ / 1e6 / secs : 0;
  std::string amount = total_ > 0 ? fmt::format("{:.0f}/{:.0f} MiB", done_ / 1048576.0, total_ / 1048576.0)
                                  : fmt::format("{:.0f} MiB", done_ / 1048576.0);
  if (tty_) {
    std::string bar;
    if (total_ > 0) {
      int fill = static_cast<int>(kBarWidth * static_cast<double>(done_) / static_cast<double>(total_));
      bar = "[" + std::string(fill, '#') + std::string(kBarWidth - fill, ' ') + "] ";
    }
    print_stderr(fmt::format("\r{:<9} {}{} {:.1f} MB/s\x1b[K", phase_, bar, amount, rate));
  } else {
    print_stderr(fmt::format("{}: {} {:.1f} MB/s\n", phase_, amount, rate));
  }
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace pibake
