// Errors of the filesystem wrappers name the image the user knows (display_name), not the
// temporary file pibake writes it as.
#include <catch2/catch.hpp>

#include "image/ext4.h"
#include "image/fat.h"
#include "test_support.h"
#include "util/error.h"

using namespace pibake;
using Catch::Matchers::Contains;

TEST_CASE("ext4 and FAT errors name the display name, and the file itself without one", "[ext4][fat]") {
  if (!test::have_tool("mke2fs") || !test::have_tool("mkfs.vfat") || !test::have_tool("sfdisk")) {
    WARN("mke2fs, mkfs.vfat or sfdisk is missing: not checked");
    return;
  }
  test::ScratchDir dir;
  const test::FixtureImage img = test::make_fixture_image(dir / ".node-1.img.tmp");
  const std::string shown = "out/node-1.img";
  // Each wrapper pointed at the other's partition: an error that must name the image.
  try {
    Ext4Fs fs(img.path, img.boot_offset, /*writable=*/true, shown);
    FAIL("a FAT partition opened as ext4");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains(shown + ": the partition at byte offset") && !Contains(".tmp"));
  }
  try {
    FatFs fs(img.path, img.root_offset, img.root_size, /*writable=*/true, shown);
    FAIL("an ext4 partition opened as FAT");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Contains(shown + " at byte") && !Contains(".tmp"));
  }
  CHECK_THROWS_WITH(Ext4Fs(img.path, img.boot_offset, false), Contains(img.path + ": the partition"));
  CHECK_THROWS_WITH(FatFs(img.path, img.root_offset, img.root_size, false), Contains(img.path + " at byte"));
}
