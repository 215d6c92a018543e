// WriteLog (write_log.h).
#include "image/write_log.h"

#include <algorithm>

namespace pibake {

std::vector<ByteRange> WriteLog::merged() const {
  std::vector<ByteRange> sorted = ranges_;
  std::sort(sorted.begin(), sorted.end(), [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });
  std::vector<ByteRange> out;
  for (const ByteRange& r : sorted) {
    if (!out.empty() && r.start <= out.back().end) {
      out.back().end = std::max(out.back().end, r.end);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace pibake
