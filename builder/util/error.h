// Error type used across pibake: exceptions inside, one catch in main (docs/conventions.md, "Exceptions inside, one
// catch in main").
#pragma once

#include <stdexcept>
#include <string>

namespace pibake {

// Every failure pibake reports. The message is complete and user-facing:
// it names what was being done ("while writing /etc/hostname in node-1.img: ...").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace pibake
