// JSON string literals for the little JSON pibake writes (node.json, inspect --json).
#pragma once

#include <string>
#include <string_view>

namespace pibake {

// `s` as a JSON string literal, quotes included; control characters escaped.
std::string json_string(std::string_view s);

}  // namespace pibake
