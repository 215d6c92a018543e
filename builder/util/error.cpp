// Messages to stderr that never throw (see error.h).
#include "util/error.h"

#include <cstdio>

namespace pibake {

void print_stderr(std::string_view text) noexcept {
  // fwrite's result is ignored on purpose: there is nowhere left to report a failing stderr.
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace pibake
