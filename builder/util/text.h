// Small text helpers for names and values compared without regard to case.
#pragma once

#include <string>
#include <string_view>

namespace pibake {

// `text` with the ASCII letters A-Z turned into a-z and every other byte unchanged (no locale:
// UTF-8 passes through as is). For the names pibake compares without case: partition labels
// ("WRITABLE" is "writable"), config.txt's filters and keys, hex digests.
std::string ascii_lower(std::string_view text);

// Natural order: runs of digits compare as numbers of any length ("node-9.img" before
// "node-10.img", "ubuntu-24.04.9" before "ubuntu-24.04.10"), everything else byte by byte. Names
// that are equal that way ("node-1" and "node-01") are ordered by their bytes, so the order is
// total and never depends on the input's order.
bool natural_less(std::string_view a, std::string_view b);

}  // namespace pibake
