// Progress display for `pibake flash` (flash_progress.h).
#include "pipeline/flash_progress.h"
#include "util/error.h"

#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstdio>
#include <utility>

namespace pibake {
namespace {
constexpr auto kTtyInterval = std::chrono::milliseconds(200);
constexpr auto kLogInterval = std::chrono::seconds(5);
constexpr int kBarWidth = 30;
}  // namespace

ProgressBoard::ProgressBoard(std::vector<std::string> labels)
    : tty_(isatty(STDERR_FILENO) == 1), labels_(std::move(labels)), lines_(labels_.size()) {}

void ProgressBoard::set(size_t i, const std::string& text, bool force) {
  std::lock_guard<std::mutex> lock(mu_);
  lines_.at(i) = text;
  if (!tty_) {
    print_stderr(fmt::format("{}: {}\n", labels_[i], text));
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ > 0 && now - last_draw_ < kTtyInterval) return;
  last_draw_ = now;
  redraw();
}

void ProgressBoard::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_ && drawn_ > 0) redraw();
}

void ProgressBoard::redraw() {
  size_t width = 0;
  for (const std::string& l : labels_) width = std::max(width, l.size());
  std::string text = drawn_ > 0 ? fmt::format("\x1b[{}A", drawn_) : "";
  for (size_t i = 0; i < lines_.size(); ++i) {
    text += fmt::format("\r{:<{}} {}\x1b[K\n", labels_[i], width, lines_[i]);
  }
  print_stderr(text);
  std::fflush(stderr);
  drawn_ = lines_.size();
}

Progress::Progress() : tty_(isatty(STDERR_FILENO) == 1) {}

Progress::Progress(ProgressBoard& board, size_t line) : tty_(isatty(STDERR_FILENO) == 1), board_(&board), line_(line) {}

void Progress::start(const std::string& phase, uint64_t total) {
  if (board_ != nullptr && drawn_) draw(true);  // the finished phase's last figures
  if (board_ == nullptr && drawn_ && tty_) draw(true);
  if (board_ == nullptr && drawn_ && tty_) std::fputc('\n', stderr);
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
  if (board_ != nullptr) {
    if (drawn_) draw(true);
    drawn_ = false;
    return;
  }
  if (drawn_ && tty_) {
    draw(true);
    std::fputc('\n', stderr);
  }
  drawn_ = false;
}

void Progress::draw(bool final_draw) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - phase_start_).count();
  double rate = secs > 0 ? done_ / 1e6 / secs : 0;
  std::string amount = total_ > 0 ? fmt::format("{:.0f}/{:.0f} MiB", done_ / 1048576.0, total_ / 1048576.0)
                                  : fmt::format("{:.0f} MiB", done_ / 1048576.0);
  std::string bar;
  if (tty_ && total_ > 0) {
    int fill = static_cast<int>(kBarWidth * static_cast<double>(done_) / static_cast<double>(total_));
    bar = "[" + std::string(fill, '#') + std::string(kBarWidth - fill, ' ') + "] ";
  }
  if (board_ != nullptr) {
    board_->set(line_, fmt::format("{:<9} {}{} {:.1f} MB/s", phase_, bar, amount, rate), final_draw);
  } else if (tty_) {
    print_stderr(fmt::format("\r{:<9} {}{} {:.1f} MB/s\x1b[K", phase_, bar, amount, rate));
  } else {
    print_stderr(fmt::format("{}: {} {:.1f} MB/s\n", phase_, amount, rate));
  }
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace pibake
