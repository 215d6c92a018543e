// SOURCE_DATE_EPOCH, parsed once for every filesystem (see build_time.h).
#include "util/build_time.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include "util/error.h"

namespace pibake {

int64_t build_timestamp() {
  const char* env = std::getenv("SOURCE_DATE_EPOCH");
  if (env == nullptr || *env == '\0') return kDefaultTimestamp;
  int64_t value = 0;
  const char* end = env + std::strlen(env);
  auto [ptr, ec] = std::from_chars(env, end, value);
  if (ec != std::errc() || ptr != end || value < 0) {
    throw Error(std::string("SOURCE_DATE_EPOCH=") + env +
                " is not a whole number of seconds since 1970-01-01 (see "
                "https://reproducible-builds.org/specs/source-date-epoch/)");
  }
  return value;
}

}  // namespace pibake
