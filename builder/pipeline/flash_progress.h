// Progress of `pibake flash` on stderr: a redrawn bar on a terminal, a plain line every few
// seconds otherwise (logs and CI), each with the throughput so far.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pibake {

class Progress {
 public:
  Progress();
  // A new phase ("writing", "verifying"); `total` bytes, 0 when unknown (a compressed stream).
  void start(const std::string& phase, uint64_t total);
  void update(uint64_t done);
  void finish();  // ends the bar's line on a terminal

 private:
  void draw(bool final_draw);

  bool tty_;
  std::string phase_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point phase_start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace pibake
