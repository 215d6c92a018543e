// Tests of the libext2fs wrapper (builder/image/ext4.h) on fixture images, checked with tools that
// share no code path with pibake's: e2fsck -fn after every change, debugfs for content and inodes.
#include "image/ext4.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"
#include "util/error.h"

namespace {

namespace stdfs = std::filesystem;
namespace t = pibake::test;
using Catch::Matchers::Contains;
using pibake::Ext4Fs;
using pibake::Ownership;
using pibake::test::EnvVar;

constexpr uint64_t kMiB = 1024 * 1024;

// A fixture disk image in its own scratch directory; `spec` names the ext4 partition the way
// e2fsck and debugfs take it ("disk.img?offset=N").
struct Disk {
  t::ScratchDir dir;
  t::FixtureImage img;
  std::string spec;

  explicit Disk(const t::FixtureOptions& opts = {}) {
    img = t::make_fixture_image(dir / "disk.img", opts);
    spec = img.path + "?offset=" + std::to_string(img.root_offset);
  }
  Ext4Fs open(bool writable = true) const { return Ext4Fs(img.path, img.root_offset, writable); }
};

// A bare filesystem made by mke2fs on a plain file (offset 0), for layouts the fixture lacks.
struct PlainFs {
  t::ScratchDir dir;
  std::string path;

  PlainFs(const std::vector<std::string>& mke2fs_args, const std::string& size) {
    path = dir / "fs.img";
    std::vector<std::string> argv = {"mke2fs", "-q", "-F"};
    argv.insert(argv.end(), mke2fs_args.begin(), mke2fs_args.end());
    argv.insert(argv.end(), {path, size});
    t::must_run(argv);
  }
};

void require_fsck_clean(const std::string& spec) { t::must_run({"e2fsck", "-fn", spec}); }

// debugfs prints its banner on stderr, which run_tool merges in front of the output.
std::string debugfs(const std::string& spec, const std::string& command) {
  std::string out = t::must_run({"debugfs", "-R", command, spec});
  if (out.rfind("debugfs ", 0) == 0) out.erase(0, out.find('\n') + 1);
  return out;
}

// Byte-exact content of `path` as debugfs reads it (dump, not cat, to keep binary data intact).
std::string debugfs_content(const std::string& spec, const std::string& path) {
  t::ScratchDir out_dir;
  std::string out = out_dir / "dump";
  std::string log = debugfs(spec, "dump " + path + " " + out);
  INFO("debugfs dump " << path << ": " << log);
  REQUIRE(stdfs::exists(out));
  return t::read_text(out);
}

// debugfs 1.47.0 dumps an inline-data file's whole inline area (60 bytes and more), not i_size
// bytes; cut it to the size `stat` reports.
std::string debugfs_inline_content(const std::string& spec, const std::string& path) {
  std::string st = debugfs(spec, "stat " + path);
  auto pos = st.find("Size: ");
  REQUIRE(pos != std::string::npos);
  return debugfs_content(spec, path).substr(0, std::stoull(st.substr(pos + 6)));
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// "./" n times: pads a symlink target past the 60 bytes of a fast symlink without changing
// where it leads.
std::string dot_slashes(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "./";
  return s;
}

std::string sha256(const std::string& path) { return t::must_run({"sha256sum", path}).substr(0, 64); }

uint64_t dumpe2fs_free_blocks(const std::string& spec) {
  std::string out = t::must_run({"dumpe2fs", "-h", spec});
  auto pos = out.find("Free blocks:");
  REQUIRE(pos != std::string::npos);
  return std::stoull(out.substr(pos + 12));
}

}  // namespace

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
  CHECK_THROWS_WITH(fs.read_file("/etc/resolv.conf"), Contains("/run/systemd does not exist"));
  CHECK_THROWS_WITH(fs.read_file("/etc"), Contains("is a directory"));
  CHECK_THROWS_WITH(fs.read_file("/etc/nope"), Contains("while reading /etc/nope in"));
  CHECK_THROWS_WITH(fs.stat("/nope"), Contains("/nope does not exist"));
  CHECK_THROWS_WITH(fs.read_file("etc/hostname"), Contains("absolute"));
  CHECK_THROWS_WITH(fs.read_file(""), Contains("absolute"));
}

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

// glibc's M_PERTURB fills every malloc'd buffer with ~junk for one scope: what libext2fs leaves
// uninitialised then differs between two runs, as it would between two processes.
class HeapJunk {
 public:
  explicit HeapJunk(int junk) { mallopt(M_PERTURB, junk); }
  ~HeapJunk() { mallopt(M_PERTURB, 0); }
  HeapJunk(const HeapJunk&) = delete;
  HeapJunk& operator=(const HeapJunk&) = delete;
};

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
