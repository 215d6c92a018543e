// The one time written into images, so that the same spec gives byte-identical images
// (https://reproducible-builds.org/specs/source-date-epoch/). The clock is never read.
#pragma once

#include <cstdint>

namespace pibake {

// Used when SOURCE_DATE_EPOCH is unset or empty: 2000-01-01T00:00:00Z (Unix seconds).
inline constexpr int64_t kDefaultTimestamp = 946684800;

// SOURCE_DATE_EPOCH (Unix seconds, UTC) when set and not empty, else kDefaultTimestamp.
// Throws pibake::Error quoting the value unless it is a decimal integer from 0 up: the spec
// defines it as `date +%s` of the last change of the sources, and no build is dated before 1970
// (FAT could not store it anyway: its dates start in 1980). docs/architecture.md, "Reproducible images".
int64_t build_timestamp();

}  // namespace pibake
