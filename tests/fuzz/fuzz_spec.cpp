// Fuzz target: load_spec_text (YAML parsing, loading, validation, message formatting). Every input
// must give problems or a spec, never a crash; every problem (or, for a loaded spec, warning) is
// one line; a loaded spec must also render back to YAML.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "spec/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  pibake::LoadResult r = pibake::load_spec_text(text, "cluster.yaml");
  std::vector<pibake::Diagnostic> messages = r.problems;
  if (r.problems.empty()) messages = pibake::spec_warnings(r.spec);
  for (const pibake::Diagnostic& d : messages) {
    std::string line = pibake::format_diagnostic(r.spec, d);
    // The documented promise: a message is one line (docs/spec.md, "Messages").
    if (line.find('\n') != std::string::npos) {
      std::fprintf(stderr, "a message spans lines: %s\n", line.c_str());
      __builtin_trap();
    }
  }
  if (r.problems.empty()) (void)pibake::to_yaml(r.spec);
  return 0;
}
