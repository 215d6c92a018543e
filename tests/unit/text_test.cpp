// util/text.h: case folding for the names pibake compares without case.
#include <catch2/catch.hpp>
#include <string>

#include "util/text.h"

using pibake::ascii_lower;

TEST_CASE("ascii_lower lowers A-Z and leaves every other byte as it is", "[util]") {
  CHECK(ascii_lower("WRITABLE") == "writable");
  CHECK(ascii_lower("System-Boot") == "system-boot");
  CHECK(ascii_lower("[PI4]") == "[pi4]");
  CHECK(ascii_lower("0AbCdEf9") == "0abcdef9");
  CHECK(ascii_lower("") == "");
  // UTF-8 and bytes above 0x7f pass through: "ÄÖ" keeps its bytes, whatever the locale.
  CHECK(ascii_lower("\xc3\x84\xc3\x96 Z") == "\xc3\x84\xc3\x96 z");
  CHECK(ascii_lower(std::string("A\0B", 3)) == std::string("a\0b", 3));
}
