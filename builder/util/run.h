// Running an external tool (resize2fs) with an argv vector, never through a shell.
#pragma once

#include <string>
#include <vector>

namespace pibake {

struct RunResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string output;  // stdout and stderr, interleaved
};

enum class Stdin { kDevNull, kClosed };

// Finds argv[0] in PATH plus /usr/sbin and /sbin. Throws pibake::Error when it is missing.
// Standard input is /dev/null, or closed (kClosed) so that the tool's first open() returns fd 0.
RunResult run_command(const std::vector<std::string>& argv, Stdin in = Stdin::kDevNull);
std::string find_program(const std::string& name);  // "" when not found

}  // namespace pibake
