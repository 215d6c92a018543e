// Progress of `pibake flash` on stderr: a redrawn bar on a terminal, a plain line every few
// seconds otherwise (logs and CI), each with the throughput so far. Several cards flashed at once
// share a ProgressBoard: one line per card, redrawn together on a terminal, prefixed with the card
// otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace pibake {

// The lines of several Progress objects, one per card, drawn on stderr as one block (a terminal)
// or as labelled lines (anything else). Thread-safe.
class ProgressBoard {
 public:
  explicit ProgressBoard(std::vector<std::string> labels);
  // Sets line `i` to `text`; redraws at most every 200 ms on a terminal, or at once with `force`.
  // Elsewhere prints "LABEL: TEXT" (the caller limits how often).
  void set(size_t i, const std::string& text, bool force);
  void finish();  // the final state of every line, on a terminal

 private:
  void redraw();  // with mu_ held
  std::mutex mu_;
  bool tty_;
  std::vector<std::string> labels_, lines_;
  size_t drawn_ = 0;  // lines on screen from the previous redraw
  std::chrono::steady_clock::time_point last_draw_;
};

class Progress {
 public:
  Progress();
  // One line of `board` (line `line`), for flashing several cards at once.
  Progress(ProgressBoard& board, size_t line);
  // A new phase ("writing", "verifying"); `total` bytes, 0 when unknown (a compressed stream).
  void start(const std::string& phase, uint64_t total);
  void update(uint64_t done);
  void finish();  // ends the bar's line on a terminal

 private:
  void draw(bool final_draw);

  bool tty_;
  ProgressBoard* board_ = nullptr;
  size_t line_ = 0;
  std::string phase_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point phase_start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace pibake
