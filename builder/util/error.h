// Error type used across pibake: exceptions inside, one catch in main (docs/conventions.md, "Exceptions inside, one
// catch in main").
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace pibake {

// Every failure pibake reports. The message is complete and user-facing:
// it names what was being done ("while writing /etc/hostname in node-1.img: ...").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Writes `text` to stderr as is and never throws: a failing stderr (2>/dev/full, a closed pipe)
// must neither stop a build nor turn into an abort inside an error handler or a C callback. Used
// for every warning, progress line and error message instead of fmt::print(stderr, ...).
void print_stderr(std::string_view text) noexcept;

}  // namespace pibake
