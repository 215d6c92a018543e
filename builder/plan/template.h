// Rendering the templates kept in overlays/, netplan/, dhcp/ and firmware/: "{{name}}" is replaced
// by a variable's value. Nothing else is special, so the templates read like the files they make.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace pibake {

using TemplateVars = std::map<std::string, std::string, std::less<>>;

// Throws pibake::Error naming `template_name` when a "{{name}}" has no value or is unterminated.
std::string render_template(std::string_view text, const TemplateVars& vars, std::string_view template_name);

}  // namespace pibake
