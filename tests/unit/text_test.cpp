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

TEST_CASE("natural_less orders digit runs as numbers and is a total order", "[util]") {
  CHECK(pibake::natural_less("node-9.img", "node-10.img"));
  CHECK_FALSE(pibake::natural_less("node-10.img", "node-9.img"));
  CHECK(pibake::natural_less("ubuntu-24.04.9-x", "ubuntu-24.04.10-x"));
  CHECK(pibake::natural_less("node-2.img", "node-2.img.x"));
  CHECK(pibake::natural_less("a", "b"));
  // Equal as numbers: the bytes decide, so sorting never depends on the input's order.
  CHECK(pibake::natural_less("node-01.img", "node-1.img"));
  CHECK_FALSE(pibake::natural_less("node-1.img", "node-01.img"));
  CHECK_FALSE(pibake::natural_less("node-1.img", "node-1.img"));
  // Longer than any integer type.
  CHECK(pibake::natural_less("v99999999999999999999999", "v100000000000000000000000"));
}
