// UniqueFd (util/unique_fd.h): every descriptor closed exactly once, checked with fcntl(F_GETFD).
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <utility>

#include "util/error.h"
#include "util/unique_fd.h"

using namespace pibake;

namespace {
bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }
}  // namespace

TEST_CASE("a UniqueFd closes its descriptor once, when it goes away, unless released", "[util]") {
  int raw = -1;
  {
    UniqueFd fd = open_fd("/dev/null", O_RDONLY);
    raw = fd.get();
    REQUIRE(raw >= 0);
    CHECK((fcntl(raw, F_GETFD) & FD_CLOEXEC) != 0);
    UniqueFd moved = std::move(fd);
    CHECK_FALSE(fd);
    CHECK(moved.get() == raw);
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));

  UniqueFd kept = open_fd("/dev/null", O_RDONLY);
  raw = kept.release();
  CHECK_FALSE(kept);
  CHECK(is_open(raw));
  kept.reset(raw);
  kept.reset();
  CHECK_FALSE(is_open(raw));

  CHECK_THROWS_WITH(open_fd("/nonexistent/x", O_RDONLY), "cannot open /nonexistent/x: No such file or directory");
}
