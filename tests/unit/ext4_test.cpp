// Tests of the libext2fs wrapper's opening, state checks, timestamps and reproducibility
// (builder/image/ext4.cpp) on fixture images, checked with tools that share no code path with
// pibake's: e2fsck -fn after every change, debugfs for content and inodes. Inodes are tested in
// ext4_inode_test.cpp, path resolution in ext4_path_test.cpp.
#include "image/ext4.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "ext4_test_support.h"
#include "test_support.h"
#include "util/error.h"

namespace t = pibake::test;
using namespace pibake::test::ext4;  // Disk, debugfs, ... and the names they use (ext4_test_support.h)

TEST_CASE("Ext4Fs opens the fixture's writable partition and reads it", "[ext4]") {
  Disk disk;
  Ext4Fs fs = disk.open(false);
  CHECK(fs.label() == "writable");
  CHECK(fs.block_size() == 4096);
  CHECK(fs.blocks_count() == 96 * kMiB / 4096);
  CHECK(fs.free_bytes() > 60 * kMiB);
  CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
  CHECK(fs.read_file("//etc//hostname") == "ubuntu\n");
  CHECK(fs.read_file("/etc/os-release").find("Ubuntu") != std::string::npos);  // final symlink
  CHECK(fs.read_file("/lib/os-release") == fs.read_file("/usr/lib/os-release"));
  CHECK(fs.exists("/etc/resolv.conf"));  // dangling symlink: lstat semantics
  CHECK_FALSE(fs.exists("/etc/nope"));
  CHECK_FALSE(fs.exists("/nope/nope"));
  CHECK_FALSE(fs.exists("/etc/hostname/x"));
  CHECK(fs.is_directory("/lib"));
  CHECK(fs.is_directory("/"));
  CHECK_FALSE(fs.is_directory("/etc/hostname"));
  CHECK_FALSE(fs.is_directory("/etc/resolv.conf"));
  CHECK(fs.stat("/tmp").mode == 01777);
  CHECK(fs.stat("/lib").mode == 0777);
  CHECK(fs.stat("/etc/hostname").mode == 0644);
  CHECK(fs.file_size("/etc/hostname") == 7);
  CHECK(fs.file_size("/etc/os-release") == fs.read_file("/usr/lib/os-release").size());  // final symlink
  CHECK_THROWS_WITH(fs.file_size("/etc"), Contains("not a regular file"));
  CHECK_THROWS_WITH(fs.file_size("/etc/nope"), Contains("/etc/nope"));
  CHECK_THROWS_WITH(fs.read_file("/etc/resolv.conf"), Contains("/run/systemd does not exist"));
  CHECK_THROWS_WITH(fs.read_file("/etc"), Contains("is a directory"));
  CHECK_THROWS_WITH(fs.read_file("/etc/nope"), Contains("while reading /etc/nope in"));
  CHECK_THROWS_WITH(fs.stat("/nope"), Contains("/nope does not exist"));
  CHECK_THROWS_WITH(fs.read_file("etc/hostname"), Contains("absolute"));
  CHECK_THROWS_WITH(fs.read_file(""), Contains("absolute"));
  // A file larger than the caller reads whole is refused from its inode's size, before any read.
  CHECK(fs.read_file("/etc/hostname", 7) == "ubuntu\n");
  CHECK_THROWS_WITH(fs.read_file("/etc/hostname", 6),
                    Contains("while reading /etc/hostname in") && Contains("it claims 7 bytes, more than the 6 bytes"));
  // Streamed: the same bytes, in order, whatever the size.
  std::string streamed;
  fs.read_chunks("/etc/os-release", [&](std::string_view chunk) { streamed.append(chunk); });
  CHECK(streamed == fs.read_file("/usr/lib/os-release"));
  CHECK_THROWS_WITH(fs.read_chunks("/etc", [](std::string_view) {}), Contains("is a directory"));
}

TEST_CASE("Ext4Fs refuses to read whole a sparse file that claims more than read_limit.h allows", "[ext4]") {
  Disk disk;
  // A 12 GiB file of holes: a few blocks on disk, twelve gigabytes of memory if read whole.
  t::must_run({"debugfs", "-w", "-R", "write /dev/null huge", disk.spec});
  t::must_run({"debugfs", "-w", "-R", "sif /huge size 12884901888", disk.spec});
  Ext4Fs fs = disk.open(false);
  CHECK(fs.file_size("/huge") == 12884901888ull);
  CHECK_THROWS_WITH(fs.read_file("/huge"), Contains("it claims 12884901888 bytes, more than the 64 MiB"));
}

TEST_CASE("Ext4Fs refuses a partition that is not ext2/3/4", "[ext4]") {
  t::FixtureOptions opts;
  opts.root_fs = "vfat";
  Disk disk(opts);
  CHECK_THROWS_WITH(disk.open(true), Contains("is not an ext4 filesystem"));
  CHECK_THROWS_WITH(disk.open(false), Contains("is not an ext4 filesystem"));
  CHECK_THROWS_WITH(Ext4Fs(disk.img.path, 0, false), Contains("is not an ext4 filesystem"));
  CHECK_THROWS_WITH(Ext4Fs(disk.dir / "missing.img", 0, false), Contains("missing.img"));
}

TEST_CASE("Ext4Fs opened read-only changes nothing", "[ext4]") {
  Disk disk;
  std::string before = sha256(disk.img.path);
  {
    Ext4Fs fs = disk.open(false);
    CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
    CHECK_THROWS_WITH(fs.write_file("/etc/hostname", "x"), Contains("read-only"));
    CHECK_THROWS_WITH(fs.mkdir_p("/opt/x"), Contains("read-only"));
    CHECK_THROWS_WITH(fs.symlink("/etc/x", "y"), Contains("read-only"));
    CHECK_THROWS_WITH(fs.remove("/etc/hostname"), Contains("read-only"));
    fs.close();
  }
  CHECK(sha256(disk.img.path) == before);
}

TEST_CASE("Ext4Fs refuses to write a filesystem that needs recovery or has errors", "[ext4]") {
  Disk disk;
  t::must_run({"debugfs", "-w", "-R", "feature needs_recovery", disk.spec});
  std::string before = sha256(disk.img.path);
  CHECK_THROWS_WITH(disk.open(true), Contains("needs journal recovery"));
  CHECK(sha256(disk.img.path) == before);
  CHECK(disk.open(false).read_file("/etc/hostname") == "ubuntu\n");

  Disk damaged;
  t::must_run({"debugfs", "-w", "-R", "ssv state 2", damaged.spec});  // EXT2_ERROR_FS
  CHECK_THROWS_WITH(damaged.open(true), Contains("marked as having errors"));
}

TEST_CASE("Ext4Fs gives every inode it touches the fixed timestamp", "[ext4]") {
  Disk disk;
  {
    EnvVar unset("SOURCE_DATE_EPOCH", nullptr);
    Ext4Fs fs = disk.open();
    fs.write_file("/etc/default-time", "a");
  }
  {
    EnvVar sde("SOURCE_DATE_EPOCH", "1700000000");
    Ext4Fs fs = disk.open();
    fs.write_file("/etc/sde-time", "b");
    fs.mkdir_p("/etc/sde-dir");
    fs.symlink("/etc/sde-link", "sde-time");
    fs.set_timestamp(4102444800);  // 2100-01-01: needs the epoch bits of the _extra fields
    fs.write_file("/etc/future", "c");
  }
  {
    EnvVar bad("SOURCE_DATE_EPOCH", "yesterday");
    CHECK_THROWS_WITH(disk.open(), Contains("SOURCE_DATE_EPOCH"));
  }
  require_fsck_clean(disk.spec);
  std::string st = debugfs(disk.spec, "stat /etc/default-time");
  for (const char* field : {" ctime: ", " atime: ", " mtime: ", "crtime: "}) {
    INFO(field);
    CHECK_THAT(st, Contains(std::string(field) + "0x386d4380:00000000"));  // 2000-01-01
  }
  for (const char* path : {"/etc/sde-time", "/etc/sde-dir", "/etc/sde-link"}) {
    INFO(path);
    st = debugfs(disk.spec, std::string("stat ") + path);
    CHECK_THAT(st, Contains(" mtime: 0x6553f100:00000000"));
    CHECK_THAT(st, Contains("crtime: 0x6553f100:00000000"));
  }
  st = debugfs(disk.spec, "stat /etc/future");
  CHECK_THAT(st, Contains(" mtime: 0xf4865700:00000001"));
  CHECK_THAT(st, Contains("crtime: 0xf4865700:00000001"));
}

TEST_CASE("Ext4Fs makes byte-identical images from identical edits", "[ext4]") {
  Disk disk;
  std::string copy = disk.dir / "copy.img";
  t::must_run({"cp", "--sparse=always", disk.img.path, copy});
  auto edit = [&](const std::string& image, int junk) {
    HeapJunk heap(junk);  // uninitialised heap bytes differ between the runs
    {
      Ext4Fs fs(image, disk.img.root_offset, true);
      fs.write_file("/etc/hostname", "node-3\n");
      fs.mkdir_p("/etc/ssh/sshd_config.d");
      fs.write_file("/etc/ssh/sshd_config.d/pibake.conf", random_bytes(70000, 9), {0600, 0, 0});
      fs.write_file("/usr/local/bin/k3s", random_bytes(3 * kMiB, 10), {0755, 0, 0});
      fs.symlink("/etc/systemd/system/multi-user.target.wants/k3s.service", "/lib/k3s.service");
      fs.symlink("/etc/slow-link", "/usr/lib/" + dot_slashes(40) + "os-release");
      fs.remove("/etc/hosts");
      for (int i = 0; i < 200; ++i) fs.write_file("/etc/many-" + std::to_string(i), "x");
    }
  };
  edit(disk.img.path, 0x5a);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a clock leak would show
  edit(copy, 0xa5);
  CHECK(sha256(disk.img.path) == sha256(copy));
  require_fsck_clean(disk.spec);
}

TEST_CASE("Ext4Fs handles ext2 and ext3 (block-mapped) root filesystems", "[ext4]") {
  for (const char* type : {"ext2", "ext3"}) {
    DYNAMIC_SECTION(type) {
      t::FixtureOptions opts;
      opts.root_fs = type;
      Disk disk(opts);
      std::string data = random_bytes(5 * kMiB, 6);  // past the double-indirect boundary
      uint64_t free_before = 0;
      {
        Ext4Fs fs = disk.open();
        free_before = fs.free_bytes();
        fs.write_file("/usr/lib/blob", data);
        fs.write_file("/usr/lib/blob", data.substr(0, 100000));
        fs.write_file("/usr/lib/blob", data);
        fs.mkdir_p("/opt/a/b");
        fs.symlink("/opt/a/link", "/usr/lib/" + dot_slashes(40) + "../lib/blob");
        CHECK(fs.read_file("/opt/a/link") == data);
        fs.write_file("/lib/systemd/system/x.service", "[Unit]\n");
        CHECK(fs.remove("/usr/lib/blob"));
        CHECK(fs.remove("/opt/a/link"));
        fs.write_file("/usr/lib/blob", data);
      }
      require_fsck_clean(disk.spec);
      CHECK(debugfs_content(disk.spec, "/usr/lib/blob") == data);
      CHECK(debugfs_content(disk.spec, "/usr/lib/systemd/system/x.service") == "[Unit]\n");
      Ext4Fs fs = disk.open(false);
      CHECK(fs.free_bytes() < free_before);
    }
  }
}

TEST_CASE("Ext4Fs works on a 1 KiB-block ext4 at offset 0", "[ext4]") {
  PlainFs plain({"-t", "ext4", "-b", "1024", "-L", "tiny"}, "48M");
  std::string data = random_bytes(5 * kMiB + 7, 7);
  {
    Ext4Fs fs(plain.path, 0, true);
    CHECK(fs.block_size() == 1024);
    CHECK(fs.label() == "tiny");
    fs.mkdir_p("/etc/many");
    for (int i = 0; i < 300; ++i) {
      fs.write_file("/etc/many/f" + std::to_string(i), std::string(i, 'z'));
    }
    uint64_t free_before = fs.free_bytes();
    for (int i = 0; i < 20; ++i) fs.write_file("/data", random_bytes(i * 50000, i));
    CHECK(fs.remove("/data"));
    CHECK(fs.free_bytes() == free_before);
    fs.write_file("/data", data);
    std::string long_target = "/etc/" + dot_slashes(100) + "many";  // slow symlink
    fs.symlink("/slow", long_target);
    CHECK(fs.read_file("/slow/f299") == std::string(299, 'z'));
  }
  require_fsck_clean(plain.path);
  CHECK(debugfs_content(plain.path, "/data") == data);
  CHECK(debugfs_content(plain.path, "/etc/many/f250") == std::string(250, 'z'));
  CHECK(debugfs(plain.path, "cat /slow") == "/etc/" + dot_slashes(100) + "many");
}
