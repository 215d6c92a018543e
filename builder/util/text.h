// Small text helpers for names and values compared without regard to case.
#pragma once

#include <string>
#include <string_view>

namespace pibake {

// `text` with the ASCII letters A-Z turned into a-z and every other byte unchanged (no locale:
// UTF-8 passes through as is). For the names pibake compares without case: partition labels
// ("WRITABLE" is "writable"), config.txt's filters and keys, hex digests.
std::string ascii_lower(std::string_view text);

}  // namespace pibake
