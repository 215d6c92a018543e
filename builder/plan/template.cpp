// "{{name}}" substitution for the built-in templates (see template.h).
#include "plan/template.h"

#include "util/error.h"

namespace pibake {

std::string render_template(std::string_view text, const TemplateVars& vars, std::string_view template_name) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      throw Error("template " + std::string(template_name) + ": unterminated \"{{\"");
    }
    out.append(text.substr(pos, open - pos));
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    auto it = vars.find(name);
    if (it == vars.end()) {
      throw Error("template " + std::string(template_name) + ": no value for {{" + std::string(name) + "}}");
    }
    out += it->second;
    pos = close + 2;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace pibake
