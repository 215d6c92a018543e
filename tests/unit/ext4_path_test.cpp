// Tests of path resolution inside the ext4 image (builder/image/ext4_path.cpp): symlinks followed
// chroot-style and never out of the image, loops reported, the final component replaced, inline-data
// symlinks read; checked with e2fsck -fn and debugfs, which share no code path with pibake's.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <string>

#include "ext4_test_support.h"
#include "image/ext4.h"
#include "test_support.h"
#include "util/error.h"

namespace t = pibake::test;
using namespace pibake::test::ext4;  // Disk, debugfs, ... and the names they use (ext4_test_support.h)

TEST_CASE("Ext4Fs writes through /lib into /usr/lib", "[ext4]") {
  Disk disk;
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/lib/systemd/system/x.service", "[Unit]\n");
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/usr/lib/systemd/system/x.service") == "[Unit]\n");
  CHECK_THAT(debugfs(disk.spec, "stat /lib"), Contains("Type: symlink"));
  CHECK_THAT(debugfs(disk.spec, "ls -l /"), !Contains(" x.service"));
}

TEST_CASE("Ext4Fs replaces a final symlink instead of writing through it", "[ext4]") {
  Disk disk;
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/etc/resolv.conf", "nameserver 10.0.0.1\n");
    CHECK_FALSE(fs.exists("/run/systemd"));
    fs.write_file("/lib", "not a link any more\n");  // the final /lib is replaced, not followed
    CHECK(fs.is_directory("/usr/lib/systemd"));
  }
  require_fsck_clean(disk.spec);
  CHECK_THAT(debugfs(disk.spec, "stat /etc/resolv.conf"), Contains("Type: regular"));
  CHECK(debugfs_content(disk.spec, "/etc/resolv.conf") == "nameserver 10.0.0.1\n");
  CHECK_THAT(debugfs(disk.spec, "stat /lib"), Contains("Type: regular"));
}

TEST_CASE("Ext4Fs keeps every path inside the image, whatever its symlinks say", "[ext4]") {
  t::ScratchDir extra;
  stdfs::create_directories(extra / "usr/lib");
  stdfs::create_symlink("/../../../../etc", extra / "escape");
  stdfs::create_symlink("../../../..", extra / "usr/lib/up");
  stdfs::create_symlink("../../../../../../../../tmp", extra / "updir");
  t::FixtureOptions opts;
  opts.root_dir = extra.path();
  Disk disk(opts);
  const std::string probe =
      "pibake-escape-probe-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
  auto host_untouched = [&] {
    for (const std::string& dir : {std::string("/"), std::string("/etc"), std::string("/tmp"), disk.dir.path(),
                                   extra.path(), stdfs::current_path().string()}) {
      INFO(dir);
      CHECK_FALSE(stdfs::exists(stdfs::path(dir) / probe));
    }
  };
  {
    Ext4Fs fs = disk.open();
    CHECK(fs.read_file("/escape/hostname") == "ubuntu\n");  // the image's, not the host's
    fs.write_file("/escape/" + probe, "1\n");
    fs.write_file("/usr/lib/up/etc/" + probe + "-2", "2\n");
    fs.write_file("/usr/lib/up/../../../../" + probe + "-3", "3\n");
    fs.write_file("/etc/../../" + probe + "-4", "4\n");
    fs.write_file("/../../../" + probe + "-5", "5\n");
    fs.write_file("/updir/" + probe + "-6", "6\n");
    fs.mkdir_p("/escape/../../../" + probe + "-dir/sub");
    fs.symlink("/etc/rel-escape", "../../../../../../var");
    fs.write_file("/etc/rel-escape/" + probe + "-7", "7\n");
    fs.write_file("/escape", "the link itself\n");  // final component: replaced, not followed
    CHECK(fs.is_directory("/etc"));
    host_untouched();
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/etc/" + probe) == "1\n");
  CHECK(debugfs_content(disk.spec, "/etc/" + probe + "-2") == "2\n");
  CHECK(debugfs_content(disk.spec, "/" + probe + "-3") == "3\n");
  CHECK(debugfs_content(disk.spec, "/" + probe + "-4") == "4\n");
  CHECK(debugfs_content(disk.spec, "/" + probe + "-5") == "5\n");
  CHECK(debugfs_content(disk.spec, "/tmp/" + probe + "-6") == "6\n");
  CHECK_THAT(debugfs(disk.spec, "stat /" + probe + "-dir/sub"), Contains("Type: directory"));
  CHECK(debugfs_content(disk.spec, "/var/" + probe + "-7") == "7\n");
  CHECK(debugfs_content(disk.spec, "/escape") == "the link itself\n");
  host_untouched();
}

TEST_CASE("Ext4Fs reports symlink loops instead of following them forever", "[ext4]") {
  Disk disk;
  Ext4Fs fs = disk.open();
  fs.symlink("/loop-a", "/loop-b");
  fs.symlink("/loop-b", "loop-a");
  fs.symlink("/loop-self", "./loop-self");
  CHECK_THROWS_WITH(fs.write_file("/loop-a/x", "y"), Contains("too many levels of symbolic links"));
  CHECK_THROWS_WITH(fs.read_file("/loop-self"), Contains("symbolic links"));
  CHECK_THROWS_AS(fs.mkdir_p("/loop-b/d"), pibake::Error);
  CHECK_THROWS_AS(fs.is_directory("/loop-a"), pibake::Error);
  CHECK(fs.exists("/loop-a"));  // the final component is not followed by exists()
  // A chain of exactly 40 hops resolves (Linux's limit), 41 do not.
  for (int i = 0; i < 40; ++i) {
    fs.symlink("/chain" + std::to_string(i), "chain" + std::to_string(i + 1));
  }
  fs.symlink("/chain40", "etc");
  CHECK(fs.read_file("/chain1/hostname") == "ubuntu\n");
  CHECK_THROWS_WITH(fs.read_file("/chain0/hostname"), Contains("symbolic links"));
  fs.close();
  require_fsck_clean(disk.spec);
}

TEST_CASE("Ext4Fs reads inline-data symlinks and writes on an inline_data filesystem", "[ext4]") {
  t::ScratchDir tree;
  stdfs::create_directories(tree / "usr/lib/deep/directory/for/inline/symlink/targets");
  t::write_text(tree / "usr/lib/deep/directory/for/inline/symlink/targets/f", "found\n");
  stdfs::create_symlink("/usr/lib/deep/directory/for/inline/symlink/targets/./././././.",
                        tree / "inline-link");  // 62 bytes: too long for i_block, stored inline
  PlainFs plain({"-t", "ext4", "-b", "4096", "-O", "inline_data", "-d", tree.path()}, "32M");
  std::string st = debugfs(plain.path, "stat /inline-link");
  REQUIRE_THAT(st, Contains("Size: 62"));     // more than i_block's 60 bytes, and yet:
  REQUIRE_THAT(st, Contains("system.data"));  // stored in the inline-data attribute
  {
    Ext4Fs fs(plain.path, 0, true);
    CHECK(fs.read_file("/inline-link/f") == "found\n");
    fs.write_file("/inline-link/small", "tiny\n");
    fs.write_file("/inline-link/large", random_bytes(20000, 8));
    fs.mkdir_p("/var/many");
    for (int i = 0; i < 100; ++i) fs.write_file("/var/many/entry-" + std::to_string(i), "x");
    fs.symlink("/another-inline-link", "/usr/lib/deep/directory/for/inline/symlink/targets/./././././f");
    CHECK(fs.read_file("/another-inline-link") == "found\n");
    fs.write_file("/inline-link/small", "replaced\n");
  }
  require_fsck_clean(plain.path);
  const std::string dir = "/usr/lib/deep/directory/for/inline/symlink/targets/";
  CHECK(debugfs_inline_content(plain.path, dir + "small") == "replaced\n");
  CHECK_THAT(debugfs(plain.path, "stat " + dir + "small"), Contains("Size of inline data"));
  CHECK(debugfs_content(plain.path, dir + "large") == random_bytes(20000, 8));
  CHECK(debugfs_inline_content(plain.path, "/var/many/entry-99") == "x");
  CHECK_THAT(debugfs(plain.path, "stat /another-inline-link"), Contains("system.data"));
}
