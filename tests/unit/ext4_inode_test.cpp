// Tests of creating, replacing, linking and freeing inodes through the libext2fs wrapper
// (builder/image/ext4_inode.cpp): files, directories, symlinks, htree directories, a full
// filesystem; checked with e2fsck -fn, debugfs and dumpe2fs, which share no code path with pibake's.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "ext4_test_support.h"
#include "image/ext4.h"
#include "test_support.h"
#include "util/error.h"

namespace t = pibake::test;
using namespace pibake::test::ext4;  // Disk, debugfs, ... and the names they use (ext4_test_support.h)

TEST_CASE("Ext4Fs writes a new file that e2fsck and debugfs agree on", "[ext4]") {
  Disk disk;
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/etc/pibake-node", "node-1\n", Ownership{0640, 1000, 1001});
    CHECK(fs.read_file("/etc/pibake-node") == "node-1\n");
    Ownership own = fs.stat("/etc/pibake-node");
    CHECK(own.mode == 0640);
    CHECK(own.uid == 1000);
    CHECK(own.gid == 1001);
    fs.write_file("/etc/empty", "");
    fs.write_file("/etc/big-ids", "x", Ownership{0600, 100000, 70000});  // needs the _high fields
    fs.close();
    fs.close();  // idempotent
    CHECK_THROWS_WITH(fs.read_file("/etc/hostname"), Contains("closed"));
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/etc/pibake-node") == "node-1\n");
  CHECK(debugfs_content(disk.spec, "/etc/empty").empty());
  std::string st = debugfs(disk.spec, "stat /etc/pibake-node");
  CHECK_THAT(st, Contains("Type: regular"));
  CHECK_THAT(st, Contains("Mode:  0640"));
  CHECK_THAT(st, Contains("User:  1000   Group:  1001"));
  CHECK_THAT(st, Contains("Size: 7"));
  CHECK_THAT(debugfs(disk.spec, "stat /etc/big-ids"), Contains("User: 100000   Group: 70000"));
  CHECK_THAT(debugfs(disk.spec, "ls -l /etc"), Contains("100640 (1)   1000   1001"));
}

TEST_CASE("Ext4Fs replaces files, bigger and smaller, and frees the old blocks", "[ext4]") {
  Disk disk;
  uint64_t free_with_small = 0;
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/etc/hostname", "node-7\n");
    free_with_small = fs.free_bytes();
    fs.write_file("/etc/hostname", random_bytes(300 * 1024, 1));
    CHECK(fs.free_bytes() == free_with_small - 300 * 1024 + 4096);  // 75 blocks instead of 1
    fs.write_file("/etc/hostname", "n\n");
    CHECK(fs.free_bytes() == free_with_small);
    fs.write_file("/etc/hostname", random_bytes(100 * 1024, 2), Ownership{0600, 5, 6});
    fs.write_file("/etc/hostname", "node-8\n");
    CHECK(fs.free_bytes() == free_with_small);
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/etc/hostname") == "node-8\n");
  CHECK_THAT(debugfs(disk.spec, "stat /etc/hostname"), Contains("User:     0   Group:     0"));
  CHECK(dumpe2fs_free_blocks(disk.spec) * 4096 == free_with_small);
}

// Fragmentation may legitimately change how many extent-tree blocks a file needs, so the exact
// check is: after the cycles, removing the file gives back every block it ever took.
TEST_CASE("Ext4Fs does not leak blocks over 50 replace cycles", "[ext4]") {
  Disk disk;
  uint64_t free_before = 0;
  {
    Ext4Fs fs = disk.open();
    free_before = fs.free_bytes();
    for (int i = 0; i < 50; ++i) {
      std::size_t size = (i % 3 == 0) ? 1 : (i % 3 == 1) ? 200 * 1024 : 2 * kMiB;
      fs.write_file("/etc/cycle", random_bytes(size, 100 + i));
    }
    CHECK(fs.read_file("/etc/cycle") == random_bytes(200 * 1024, 149));
  }
  require_fsck_clean(disk.spec);
  {
    Ext4Fs fs = disk.open();
    CHECK(fs.remove("/etc/cycle"));
    CHECK(fs.free_bytes() == free_before);
  }
  require_fsck_clean(disk.spec);
  CHECK(dumpe2fs_free_blocks(disk.spec) * 4096 == free_before);
}

TEST_CASE("Ext4Fs writes a 5 MB file byte-exact, with holes for zero blocks", "[ext4]") {
  Disk disk;
  std::string data = random_bytes(5 * kMiB + 123, 4);
  std::fill(data.begin() + 1 * kMiB, data.begin() + 2 * kMiB, '\0');  // a hole
  std::fill(data.end() - 10000, data.end(), '\0');                    // a zero tail
  t::write_text(disk.dir / "source.bin", data);
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/usr/lib/blob", data);
    int fd = ::open((disk.dir / "source.bin").c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    fs.write_file_from("/usr/lib/streamed", fd, Ownership{0755, 0, 0});
    ::close(fd);
    CHECK(fs.read_file("/usr/lib/blob") == data);
    CHECK(fs.read_file("/usr/lib/streamed") == data);
    CHECK_THROWS_WITH(fs.write_file_from("/usr/lib/unreadable", -1),
                      Contains("while writing /usr/lib/unreadable") && Contains("cannot read the source"));
    CHECK_FALSE(fs.exists("/usr/lib/unreadable"));
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/usr/lib/blob") == data);
  CHECK(debugfs_content(disk.spec, "/usr/lib/streamed") == data);
  std::string st = debugfs(disk.spec, "stat /usr/lib/streamed");
  CHECK_THAT(st, Contains("Mode:  0755"));
  CHECK_THAT(st, Contains("Size: " + std::to_string(data.size())));
  // 4 MiB of data in 4 KiB blocks is 8192 sectors; the holes hold none.
  auto pos = st.find("Blockcount: ");
  REQUIRE(pos != std::string::npos);
  CHECK(std::stoull(st.substr(pos + 12)) < 5 * kMiB / 512);
}

TEST_CASE("Ext4Fs mkdir_p creates nested directories with their modes", "[ext4]") {
  Disk disk;
  {
    Ext4Fs fs = disk.open();
    fs.mkdir_p("/opt/pibake/a/b", Ownership{0750, 1000, 1000});
    fs.mkdir_p("/opt/pibake/a/b");  // already there: nothing changes
    fs.mkdir_p("/etc/systemd/system/k3s.service.d");
    fs.mkdir_p("/lib/pibake-modules");  // through the /lib -> usr/lib symlink
    fs.mkdir_p("/lib");                 // a symlink to a directory counts
    CHECK(fs.is_directory("/opt/pibake/a/b"));
    CHECK_THROWS_WITH(fs.mkdir_p("/etc/hostname/x"), Contains("/etc/hostname is not a directory"));
    CHECK_THROWS_WITH(fs.mkdir_p("/etc/hostname"), Contains("not a directory"));
    // A dangling symlink's target is not created (mkdir -p fails there too).
    CHECK_THROWS_WITH(fs.mkdir_p("/etc/resolv.conf/x"), Contains("does not exist"));
    CHECK_FALSE(fs.exists("/run/systemd"));
    fs.write_file("/opt/pibake/a/b/c.txt", "deep\n");
  }
  require_fsck_clean(disk.spec);
  for (const char* dir : {"/opt", "/opt/pibake", "/opt/pibake/a", "/opt/pibake/a/b"}) {
    INFO(dir);
    std::string st = debugfs(disk.spec, std::string("stat ") + dir);
    CHECK_THAT(st, Contains("Type: directory"));
    CHECK_THAT(st, Contains("Mode:  0750"));
    CHECK_THAT(st, Contains("User:  1000   Group:  1000"));
  }
  CHECK_THAT(debugfs(disk.spec, "stat /etc/systemd/system/k3s.service.d"), Contains("Mode:  0755"));
  CHECK_THAT(debugfs(disk.spec, "stat /usr/lib/pibake-modules"), Contains("Type: directory"));
  CHECK_THAT(debugfs(disk.spec, "stat /lib"), Contains("Type: symlink"));
  CHECK(debugfs_content(disk.spec, "/opt/pibake/a/b/c.txt") == "deep\n");
  CHECK_THAT(debugfs(disk.spec, "ls -l /opt/pibake/a"), Contains("40750 (2)   1000   1000"));
}

TEST_CASE("Ext4Fs creates and replaces symlinks, fast and slow", "[ext4]") {
  Disk disk;
  const std::string wants = "/etc/systemd/system/multi-user.target.wants/";
  const std::string slow_target = "/usr/lib/systemd/system/" + dot_slashes(20) + "../system";
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/usr/lib/systemd/system/foo.service", "[Service]\nExecStart=/bin/foo\n");
    fs.symlink(wants + "foo.service", "/usr/lib/systemd/system/foo.service");
    CHECK(fs.read_file(wants + "foo.service") == "[Service]\nExecStart=/bin/foo\n");
    fs.symlink(wants + "ssh.service", "/dev/null");        // replaces the existing link
    fs.symlink("/etc/hostname", "../usr/lib/os-release");  // replaces a regular file
    CHECK(fs.stat("/etc/hostname").mode == 0777);
    fs.symlink("/etc/systemd/slow", slow_target);
    CHECK(fs.read_file("/etc/systemd/slow/foo.service") == "[Service]\nExecStart=/bin/foo\n");
    CHECK_THROWS_WITH(fs.symlink("/etc", "/x"), Contains("is a directory"));
    CHECK_THROWS_WITH(fs.symlink("/etc/x", ""), Contains("empty"));
    CHECK_THROWS_WITH(fs.symlink("/etc/x", std::string(5000, 'a')), Contains("longer than a block"));
  }
  require_fsck_clean(disk.spec);
  std::string st = debugfs(disk.spec, "stat " + wants + "foo.service");
  CHECK_THAT(st, Contains("Type: symlink"));
  CHECK_THAT(st, Contains("Fast link dest: \"/usr/lib/systemd/system/foo.service\""));
  CHECK_THAT(debugfs(disk.spec, "stat " + wants + "ssh.service"), Contains("Fast link dest: \"/dev/null\""));
  CHECK_THAT(debugfs(disk.spec, "stat /etc/hostname"), Contains("Type: symlink"));
  CHECK_THAT(debugfs(disk.spec, "stat /usr/lib/systemd/system/ssh.service"), Contains("Type: regular"));
  CHECK(debugfs(disk.spec, "cat /etc/systemd/slow") == slow_target);  // target in a data block
}

TEST_CASE("Ext4Fs removes files and symlinks, not directories", "[ext4]") {
  Disk disk;
  {
    Ext4Fs fs = disk.open();
    uint64_t free_before = fs.free_bytes();
    fs.write_file("/var/lib/big", random_bytes(kMiB, 5));
    CHECK(fs.remove("/var/lib/big"));
    CHECK(fs.free_bytes() == free_before);
    CHECK(fs.remove("/etc/hosts"));
    CHECK(fs.remove("/etc/resolv.conf"));  // the dangling symlink itself
    CHECK(fs.remove("/etc/systemd/system/multi-user.target.wants/ssh.service"));
    CHECK(fs.exists("/usr/lib/systemd/system/ssh.service"));  // the link's target stays
    CHECK_FALSE(fs.remove("/etc/hosts"));
    CHECK_FALSE(fs.remove("/nope/hosts"));
    CHECK_THROWS_WITH(fs.remove("/etc"), Contains("is a directory"));
    CHECK_THROWS_WITH(fs.remove("/"), Contains("is a directory"));
    CHECK_FALSE(fs.exists("/etc/hosts"));
  }
  require_fsck_clean(disk.spec);
  std::string ls = debugfs(disk.spec, "ls -l /etc");
  CHECK_THAT(ls, !Contains("hosts"));
  CHECK_THAT(ls, !Contains("resolv.conf"));
  CHECK_THAT(ls, Contains("hostname"));
  CHECK_THAT(debugfs(disk.spec, "ls -l /etc/systemd/system/multi-user.target.wants"), !Contains("ssh.service"));
}

TEST_CASE("Ext4Fs grows a directory that runs out of room", "[ext4]") {
  Disk disk;
  {
    Ext4Fs fs = disk.open();
    fs.mkdir_p("/var/lib/many");
    for (int i = 0; i < 300; ++i) {
      fs.write_file("/var/lib/many/file-" + std::to_string(i) + ".conf", std::to_string(i));
    }
    for (int i = 0; i < 300; i += 7) {
      fs.symlink("/var/lib/many/link-" + std::to_string(i), "file-" + std::to_string(i) + ".conf");
    }
    for (int i = 0; i < 300; ++i) {
      CHECK(fs.read_file("/var/lib/many/file-" + std::to_string(i) + ".conf") == std::to_string(i));
    }
    CHECK(fs.read_file("/var/lib/many/link-294") == "294");
  }
  require_fsck_clean(disk.spec);
  std::string ls = debugfs(disk.spec, "ls -l /var/lib/many");
  std::size_t count = 0;
  for (std::size_t pos = ls.find("file-"); pos != std::string::npos; pos = ls.find("file-", pos + 1)) {
    ++count;
  }
  CHECK(count == 300);
  CHECK(debugfs_content(disk.spec, "/var/lib/many/file-299.conf") == "299");
  std::string st = debugfs(disk.spec, "stat /var/lib/many");
  auto pos = st.find("Size: ");
  REQUIRE(pos != std::string::npos);
  CHECK(std::stoull(st.substr(pos + 6)) > 4096);
}

// Splitting an htree leaf goes through libext2fs' dx_split_leaf, which builds blocks in an
// uninitialised buffer; the images must still come out identical (Impl::scrub_split_leaves).
TEST_CASE("Ext4Fs adds to and removes from an htree-indexed directory, reproducibly", "[ext4]") {
  t::ScratchDir extra;
  stdfs::create_directories(extra / "usr/share/big");
  for (int i = 0; i < 500; ++i) {
    t::write_text(extra / ("usr/share/big/entry-with-a-long-name-" + std::to_string(i)), "x");
  }
  for (const char* type : {"ext4", "ext3"}) {  // with and without metadata_csum
    DYNAMIC_SECTION(type) {
      t::FixtureOptions opts;
      opts.root_dir = extra.path();
      opts.root_fs = type;
      Disk disk(opts);
      t::ToolResult optimize = t::run_tool({"e2fsck", "-fyD", disk.spec});  // builds the index
      INFO(optimize.output);
      REQUIRE(optimize.exit_code <= 1);
      REQUIRE_THAT(debugfs(disk.spec, "htree /usr/share/big"), Contains("Root node dump"));
      const std::string copy = disk.dir / "copy.img";
      t::must_run({"cp", "--sparse=always", disk.img.path, copy});
      auto edit = [&](const std::string& image, int junk) {
        HeapJunk heap(junk);
        Ext4Fs fs(image, disk.img.root_offset, true);
        for (int i = 0; i < 300; ++i) {
          fs.write_file("/usr/share/big/new-" + std::to_string(i), std::to_string(i));
        }
        for (int i = 0; i < 500; i += 3) {
          CHECK(fs.remove("/usr/share/big/entry-with-a-long-name-" + std::to_string(i)));
        }
        for (int i = 0; i < 100; ++i) {
          fs.mkdir_p("/usr/share/big/dir-with-a-longer-name-" + std::to_string(i));
          fs.symlink("/usr/share/big/link-with-a-longer-name-" + std::to_string(i), "new-1");
        }
        fs.write_file("/usr/share/big/entry-with-a-long-name-1", "replaced");
        fs.close();
      };
      edit(disk.img.path, 0x5a);
      edit(copy, 0xa5);
      require_fsck_clean(disk.spec);
      CHECK(debugfs_content(disk.spec, "/usr/share/big/new-299") == "299");
      CHECK(debugfs_content(disk.spec, "/usr/share/big/entry-with-a-long-name-1") == "replaced");
      CHECK_THAT(debugfs(disk.spec, "stat /usr/share/big/link-with-a-longer-name-99"),
                 Contains("Fast link dest: \"new-1\""));
      CHECK_THAT(debugfs(disk.spec, "stat /usr/share/big/dir-with-a-longer-name-99"), Contains("Type: directory"));
      CHECK_THAT(debugfs(disk.spec, "ls /usr/share/big"), !Contains("entry-with-a-long-name-3 "));
      CHECK_THAT(debugfs(disk.spec, "htree /usr/share/big"), Contains("Root node dump"));
      CHECK(sha256(disk.img.path) == sha256(copy));
    }
  }
}

TEST_CASE("Ext4Fs reports a full filesystem and leaves it consistent", "[ext4]") {
  t::FixtureOptions opts;
  opts.root_mib = 24;
  Disk disk(opts);
  {
    Ext4Fs fs = disk.open();
    uint64_t free_before = fs.free_bytes();
    std::string too_big(free_before + kMiB, 'x');
    CHECK_THROWS_WITH(fs.write_file("/big", too_big),
                      Contains("while writing /big in") && Contains("Could not allocate block"));
    CHECK_FALSE(fs.exists("/big"));
    CHECK(fs.free_bytes() == free_before);
    // Replacing: the old file survives a failed write.
    CHECK_THROWS_AS(fs.write_file("/etc/hostname", too_big), pibake::Error);
    CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
    CHECK(fs.free_bytes() == free_before);
    fs.write_file("/etc/after", "still works\n");
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/etc/hostname") == "ubuntu\n");
  CHECK(debugfs_content(disk.spec, "/etc/after") == "still works\n");
}

TEST_CASE("Ext4Fs keeps hard links and frees extended-attribute blocks", "[ext4]") {
  t::ScratchDir tree;
  stdfs::create_directories(tree / "etc");
  t::write_text(tree / "etc/a", "shared\n");
  stdfs::create_hard_link(tree / "etc/a", tree / "etc/b");
  t::FixtureOptions opts;
  opts.root_dir = tree.path();
  Disk disk(opts);
  t::write_text(disk.dir / "xattr", random_bytes(900, 10));  // too big for the inode: own block
  t::must_run({"debugfs", "-w", "-R", "ea_set -f " + (disk.dir / "xattr") + " /etc/hostname user.big", disk.spec});
  REQUIRE_THAT(debugfs(disk.spec, "stat /etc/hostname"), !Contains("File ACL: 0"));
  {
    Ext4Fs fs = disk.open();
    fs.write_file("/etc/a", "mine\n");
    CHECK(fs.read_file("/etc/b") == "shared\n");
    fs.write_file("/etc/hostname", "node-9\n");  // frees the inode and its attribute block
  }
  require_fsck_clean(disk.spec);
  CHECK(debugfs_content(disk.spec, "/etc/a") == "mine\n");
  CHECK(debugfs_content(disk.spec, "/etc/b") == "shared\n");
  CHECK_THAT(debugfs(disk.spec, "stat /etc/b"), Contains("Links: 1"));
}
