// build_timestamp() (util/build_time.h): the one reading of SOURCE_DATE_EPOCH for every filesystem.
#include <catch2/catch.hpp>

#include "test_support.h"
#include "util/build_time.h"
#include "util/error.h"

using namespace pibake;
using Catch::Matchers::Contains;
using pibake::test::EnvVar;

TEST_CASE("SOURCE_DATE_EPOCH is whole seconds from 0 up, else 2000-01-01 when unset or empty", "[util]") {
  {
    EnvVar unset("SOURCE_DATE_EPOCH", nullptr);
    CHECK(build_timestamp() == kDefaultTimestamp);
    CHECK(kDefaultTimestamp == 946684800);  // 2000-01-01T00:00:00Z
  }
  {
    EnvVar empty("SOURCE_DATE_EPOCH", "");
    CHECK(build_timestamp() == kDefaultTimestamp);
  }
  {
    EnvVar zero("SOURCE_DATE_EPOCH", "0");
    CHECK(build_timestamp() == 0);
  }
  {
    EnvVar set("SOURCE_DATE_EPOCH", "1700000000");
    CHECK(build_timestamp() == 1700000000);
  }
  for (const char* bad : {"-1", "yesterday", "1.5", "17e8", " 1", "1 ", "99999999999999999999"}) {
    EnvVar set("SOURCE_DATE_EPOCH", bad);
    INFO(bad);
    CHECK_THROWS_WITH(build_timestamp(), Contains(std::string("SOURCE_DATE_EPOCH=") + bad + " is not a whole number"));
  }
}
