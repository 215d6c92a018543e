// inspect_base_image on fixture images: what it reads of the base, and what it must not read.
#include "pipeline/base_image.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <string>

#include "image/fat.h"
#include "image/read_limit.h"
#include "test_support.h"
#include "util/error.h"

using namespace pibake;
using Catch::Matchers::Contains;

namespace {

uint32_t le32_at(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 4; i-- > 0;) v = v << 8 | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// Sets DIR_FileSize of the one 8.3 directory entry named `short_name` (11 bytes, space padded) whose
// size is `size` in the FAT filesystem at [offset, offset + length) of `path`, scanning its 32-byte
// slots by hand (independently of pibake's FAT code).
void set_fat_entry_size(const std::string& path, uint64_t offset, uint64_t length, const std::string& short_name,
                        uint32_t size, uint32_t new_size) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  REQUIRE(f.good());
  const uint64_t chunk = uint64_t{1} << 20;  // a whole number of 32-byte slots
  std::string bytes(chunk, '\0');
  for (uint64_t pos = 0; pos < length; pos += chunk) {
    f.seekg(static_cast<std::streamoff>(offset + pos));
    f.read(bytes.data(), static_cast<std::streamsize>(chunk));
    REQUIRE(f.gcount() == static_cast<std::streamsize>(chunk));
    for (size_t slot = 0; slot < chunk; slot += 32) {
      if (bytes.compare(slot, 11, short_name) != 0 || le32_at(bytes, slot + 28) != size) continue;
      const char le[4] = {static_cast<char>(new_size), static_cast<char>(new_size >> 8),
                          static_cast<char>(new_size >> 16), static_cast<char>(new_size >> 24)};
      f.seekp(static_cast<std::streamoff>(offset + pos + slot + 28));
      f.write(le, 4);
      REQUIRE(f.good());
      return;
    }
  }
  FAIL("no directory entry " << short_name << " of " << size << " bytes");
}

}  // namespace

TEST_CASE("The base's os_prefix viability test finds the kernel by its directory entry without reading it",
          "[base_image]") {
  if (!test::have_tool("mke2fs") || !test::have_tool("mkfs.vfat") || !test::have_tool("sfdisk") ||
      !test::have_tool("mcopy")) {
    WARN("mke2fs, mkfs.vfat, sfdisk or mcopy is missing: not checked");
    return;
  }
  // Ubuntu 26.04's A/B system-boot: config.txt sets os_prefix=current/ and kernel=vmlinuz, kept
  // only when current/vmlinuz exists. A real kernel may be larger than pibake reads whole.
  test::ScratchDir dir;
  test::FixtureOptions opts;
  opts.release = "26.04";
  const test::FixtureImage img = test::make_fixture_image(dir / "base.img", opts);
  const auto claimed = static_cast<uint32_t>(kMaxWholeFileRead + 1);
  set_fat_entry_size(img.path, img.boot_offset, img.boot_size, "VMLINUZ    ", 300000, claimed);
  {
    FatFs fat(img.path, img.boot_offset, img.boot_size, /*writable=*/false);
    REQUIRE(fat.exists("current/vmlinuz"));
    REQUIRE_THROWS_WITH(fat.read_file("current/vmlinuz"), Contains("it claims " + std::to_string(claimed) + " bytes"));
  }
  BaseImage base = inspect_base_image(img.path);
  CHECK(base.boot_layout.os_prefix == "current/");
  CHECK(base.boot_layout.kernel == "/current/vmlinuz");
  CHECK(base.boot_layout.cmdline == "/current/cmdline.txt");
  CHECK(base.boot_layout.cmdlines == std::vector<std::string>{"/current/cmdline.txt"});
}
