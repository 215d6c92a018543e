// Tests of the in-process FAT writer (builder/image/fat.*). Every change is checked with tools
// that share no code with pibake: mtools (mtype, mdir, mshowfat) for content and names, and
// fsck.fat -n for the consistency of FATs, chains, directories and FSInfo.
#include "image/fat.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "util/error.h"

namespace {

using Catch::Matchers::Contains;
using pibake::FatFs;
using pibake::test::EnvVar;
using pibake::test::FixtureOptions;
using pibake::test::must_run;
using pibake::test::random_bytes;
using pibake::test::run_tool;
using pibake::test::ScratchDir;
using pibake::test::sha256;

// A FAT filesystem inside a file: the fixture's system-boot, or a whole mkfs.vfat file.
struct Volume {
  std::string path;
  uint64_t offset = 0, size = 0;
  std::string mtools() const { return path + "@@" + std::to_string(offset); }
};

FatFs open_fs(const Volume& v, bool writable = true) { return FatFs(v.path, v.offset, v.size, writable); }

struct BootFixture {
  ScratchDir dir;
  Volume vol;
  explicit BootFixture(const FixtureOptions& opts = {}) {
    auto img = pibake::test::make_fixture_image(dir / "base.img", opts);
    vol = {img.path, img.boot_offset, img.boot_size};
  }
};

Volume make_plain_fat(const ScratchDir& dir, int bits, const std::string& label = "") {
  std::string path = dir / ("fat" + std::to_string(bits) + ".img");
  std::vector<std::string> argv = {"mkfs.vfat", "-F", std::to_string(bits), "-C", path, "20000"};
  if (!label.empty()) argv.insert(argv.begin() + 1, {"-n", label});
  must_run(argv);
  return {path, 0, 20000ull * 1024};
}

std::string mtype(const Volume& v, const std::string& path) {
  return must_run({"mtype", "-i", v.mtools(), "::/" + path});
}

std::string mdir(const Volume& v, const std::string& path = "") {
  return must_run({"mdir", "-i", v.mtools(), "::/" + path});
}

// Full paths, long names included, one per line (mdir -b).
std::set<std::string> mdir_bare(const Volume& v, const std::string& path = "", bool recursive = false) {
  std::vector<std::string> argv = {"mdir", "-b", "-i", v.mtools(), "::/" + path};
  if (recursive) argv.insert(argv.begin() + 1, "-/");
  std::stringstream ss(must_run(argv));
  std::set<std::string> out;
  for (std::string line; std::getline(ss, line);)
    if (!line.empty()) out.insert(line);
  return out;
}

// The mdir line that shows `long_name` (mdir prints the long name last, after the 8.3 one).
std::string mdir_line(const std::string& listing, const std::string& long_name) {
  std::stringstream ss(listing);
  for (std::string line; std::getline(ss, line);) {
    if (line.size() > long_name.size() &&
        line.compare(line.size() - long_name.size() - 1, std::string::npos, " " + long_name) == 0)
      return line;
  }
  return "";
}

// fsck.fat -n on the filesystem alone (extracted when it sits inside a disk image): exit 0 and
// nothing but its banner and summary.
void require_fsck_clean(const Volume& v) {
  std::string part = v.path;
  if (v.offset != 0) {
    part = v.path + ".part";
    must_run({"dd", "if=" + v.path, "of=" + part, "bs=1M", "skip=" + std::to_string(v.offset),
              "count=" + std::to_string(v.size), "iflag=skip_bytes,count_bytes", "status=none"});
  }
  auto r = run_tool({"fsck.fat", "-n", part});
  INFO("fsck.fat -n output:\n" << r.output);
  REQUIRE(r.exit_code == 0);
  std::stringstream ss(r.output);
  for (std::string line; std::getline(ss, line);) {
    if (line.empty()) continue;
    INFO("line: " << line);
    CHECK((line.rfind("fsck.fat ", 0) == 0 || line.find(" files, ") != std::string::npos));
  }
  if (part != v.path) std::remove(part.c_str());
}

uint64_t allocated_bytes(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::string peek(const std::string& path, uint64_t pos, size_t n) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(pos));
  std::string out(n, '\0');
  f.read(out.data(), static_cast<std::streamsize>(n));
  REQUIRE(f.good());
  return out;
}

void poke(const std::string& path, uint64_t pos, const std::string& bytes) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(pos));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string le32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
}

// A FAT32 boot sector's geometry, read by hand (independently of pibake's parser).
struct Fat32Geometry {
  uint32_t bps = 0, sectors_per_cluster = 0, reserved = 0, fats = 0, total_sectors = 0, fat_sectors = 0;
  uint32_t root_cluster = 0;
  explicit Fat32Geometry(const Volume& v) {
    std::string bs = peek(v.path, v.offset, 512);
    auto u8 = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bs[i])); };
    auto u32 = [&](size_t i) { return u8(i) | u8(i + 1) << 8 | u8(i + 2) << 16 | u8(i + 3) << 24; };
    bps = u8(11) | u8(12) << 8, sectors_per_cluster = u8(13), reserved = u8(14) | u8(15) << 8, fats = u8(16);
    const uint32_t total16 = u8(19) | u8(20) << 8;
    total_sectors = total16 != 0 ? total16 : u32(32), fat_sectors = u32(36), root_cluster = u32(44);
  }
  // The last data cluster (they are numbered from 2).
  uint32_t max_cluster() const { return (total_sectors - reserved - fats * fat_sectors) / sectors_per_cluster + 1; }
  // Where FAT copy `i`'s entry for `cluster` is in the image file.
  uint64_t entry_pos(const Volume& v, uint32_t i, uint32_t cluster) const {
    return v.offset + (reserved + static_cast<uint64_t>(i) * fat_sectors) * bps + cluster * 4ull;
  }
};

// Sets FAT32 entries `cluster`, `cluster` + 1, ... to `values` in every FAT copy.
void set_fat32_entries(const Volume& v, uint32_t cluster, const std::vector<uint32_t>& values) {
  Fat32Geometry g(v);
  std::string bytes;
  for (uint32_t value : values) bytes += le32(value);
  for (uint32_t i = 0; i < g.fats; ++i) poke(v.path, g.entry_pos(v, i, cluster), bytes);
}

void corrupt_fat32_entry(const Volume& v, uint32_t cluster, uint32_t value) { set_fat32_entries(v, cluster, {value}); }

// FAT32 entry `cluster` of the first FAT, without its reserved top 4 bits.
uint32_t fat32_entry(const Volume& v, uint32_t cluster) {
  std::string e = peek(v.path, Fat32Geometry(v).entry_pos(v, 0, cluster), 4);
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = value << 8 | static_cast<uint8_t>(e[static_cast<size_t>(i)]);
  return value & 0x0FFFFFFF;
}

uint32_t first_cluster(const Volume& v, const std::string& path) {
  std::string out = must_run({"mshowfat", "-i", v.mtools(), "::/" + path});  // "::/vmlinuz <5-590>"
  size_t lt = out.find('<');
  REQUIRE(lt != std::string::npos);
  return static_cast<uint32_t>(std::stoul(out.substr(lt + 1)));
}

}  // namespace

TEST_CASE("FatFs reads the fixture's FAT32 system-boot partition", "[fat]") {
  BootFixture f;
  FatFs fs = open_fs(f.vol, false);
  CHECK(fs.fat_bits() == 32);
  CHECK(fs.label() == "system-boot");
  CHECK(fs.read_file("cmdline.txt") == mtype(f.vol, "cmdline.txt"));
  CHECK(fs.read_file("/overlays/README") == "overlay readme\n");
  CHECK(fs.read_file("vmlinuz") == mtype(f.vol, "vmlinuz"));
  // Case-insensitive, over both the long and the 8.3 name.
  CHECK(fs.read_file("CMDLINE.TXT") == fs.read_file("cmdline.txt"));
  CHECK(fs.read_file("NETWOR~1") == fs.read_file("network-config"));
  CHECK(fs.exists("Network-Config"));
  CHECK(fs.is_directory("overlays"));
  CHECK_FALSE(fs.is_directory("cmdline.txt"));
  CHECK_FALSE(fs.exists("missing"));
  CHECK_FALSE(fs.exists("missing/README"));

  std::set<std::string> names;
  for (const auto& e : fs.list("/")) names.insert(e.name + (e.is_directory ? "/" : ""));
  CHECK(names == std::set<std::string>{"overlays/", "network-config", "vmlinuz", "cmdline.txt", "config.txt",
                                       "meta-data", "README", "user-data"});
  // mdir's "bytes free" line, digits only.
  std::string listing = mdir(f.vol), digits;
  size_t free_at = listing.find(" bytes free");
  REQUIRE(free_at != std::string::npos);
  for (size_t i = listing.rfind('\n', free_at) + 1; i < free_at; ++i)
    if (listing[i] >= '0' && listing[i] <= '9') digits += listing[i];
  CHECK(fs.free_bytes() == std::stoull(digits));

  CHECK_THROWS_WITH(fs.read_file("overlays"), Contains("is a directory"));
  CHECK_THROWS_WITH(fs.read_file("nope.txt"), Contains("system-boot: nope.txt: no such file"));
  CHECK_THROWS_WITH(fs.read_file("cmdline.txt/x"), Contains("is not a directory"));
  // Larger than the caller reads whole: refused from the directory entry's size.
  const uint64_t cmdline_size = mtype(f.vol, "cmdline.txt").size();
  CHECK(fs.read_file("cmdline.txt", cmdline_size).size() == cmdline_size);
  CHECK_THROWS_WITH(fs.read_file("cmdline.txt", cmdline_size - 1),
                    Contains("cmdline.txt: it claims " + std::to_string(cmdline_size) + " bytes"));
  for (const char* bad : {"a//b", "../x", "./cmdline.txt", "overlays/", "overlays/.."})
    CHECK_THROWS_AS(fs.exists(bad), pibake::Error);
}

TEST_CASE("Replacing cmdline.txt with longer and then shorter content keeps fsck.fat happy", "[fat]") {
  BootFixture f;
  uint64_t allocated_before = allocated_bytes(f.vol.path);
  std::string longer = "console=serial0,115200 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait " +
                       std::string(1500, 'x') + " cfg80211.ieee80211_regdom=DE\n";
  {
    FatFs fs = open_fs(f.vol);
    uint64_t free_before = fs.free_bytes();
    fs.write_file("cmdline.txt", longer);
    CHECK(fs.read_file("cmdline.txt") == longer);
    // 122 bytes took one 512-byte cluster; the new content takes more.
    CHECK(fs.free_bytes() == free_before - ((longer.size() + 511) / 512 - 1) * 512);
    fs.close();
  }
  CHECK(mtype(f.vol, "cmdline.txt") == longer);
  require_fsck_clean(f.vol);
  // Sparse image: only a few sectors were written (the FAT sectors, FSInfo, the data, one slot).
  CHECK(allocated_bytes(f.vol.path) <= allocated_before + 64 * 1024);

  std::string shorter = "root=LABEL=writable quiet\n";
  {
    FatFs fs = open_fs(f.vol);
    fs.write_file("/CMDLINE.TXT", shorter);  // replaces, keeping the entry and its name
  }
  CHECK(mtype(f.vol, "cmdline.txt") == shorter);
  std::string line = mdir_line(mdir(f.vol), "cmdline.txt");
  CHECK(line.empty());  // still a plain 8.3 entry: mdir shows it as "cmdline  txt"
  CHECK(mdir(f.vol).find("cmdline  txt        26") != std::string::npos);
  require_fsck_clean(f.vol);

  {
    FatFs fs = open_fs(f.vol);
    fs.write_file("cmdline.txt", "");  // empty: no cluster at all
    CHECK(fs.read_file("cmdline.txt").empty());
  }
  CHECK(mtype(f.vol, "cmdline.txt").empty());
  require_fsck_clean(f.vol);
}

TEST_CASE("Long names and names that collide in 8.3 form get unique short aliases", "[fat]") {
  BootFixture f;
  const std::vector<std::pair<std::string, std::string>> files = {
      {"network-config-1", "one\n"},
      {"network-config-2", "two\n"},
      {"ReadMe.Md", "mixed case 8.3\n"},
      {"lower.txt", "lower\n"},
      {"UPPER.TXT", "upper\n"},
      {"a name with spaces, commas + plus [brackets].conf", "odd characters\n"},
      {"many.dots.in.name.tar.gz", "dots\n"},
      {std::string(200, 'L') + ".txt", "long\n"},
  };
  const std::string utf8_name = "caf\xc3\xa9-\xe2\x82\xac.txt";  // "café-€.txt"
  {
    FatFs fs = open_fs(f.vol);
    for (const auto& [name, data] : files) fs.write_file(name, data);
    fs.write_file(utf8_name, "utf8\n");
    for (const auto& [name, data] : files) CHECK(fs.read_file(name) == data);
  }
  std::string listing = mdir(f.vol);
  INFO(listing);
  // The fixture's network-config already holds NETWOR~1.
  CHECK(mdir_line(listing, "network-config-1").rfind("NETWOR~2 ", 0) == 0);
  CHECK(mdir_line(listing, "network-config-2").rfind("NETWOR~3 ", 0) == 0);
  CHECK(mdir_line(listing, "ReadMe.Md").rfind("README   MD ", 0) == 0);
  CHECK(mdir_line(listing, "many.dots.in.name.tar.gz").rfind("MANYDO~1 GZ ", 0) == 0);
  CHECK(mdir_line(listing, "a name with spaces, commas + plus [brackets].conf").rfind("ANAMEW~1 CON ", 0) == 0);
  CHECK(listing.find("lower    txt ") != std::string::npos);
  CHECK(listing.find("UPPER    TXT ") != std::string::npos);

  std::set<std::string> bare = mdir_bare(f.vol);
  for (const auto& [name, data] : files) {
    CHECK(bare.count("::/" + name) == 1);
    // mtools takes '[' as a wildcard: read that one through its 8.3 alias.
    CHECK(mtype(f.vol, name.find('[') == std::string::npos ? name : "ANAMEW~1.CON") == data);
  }
  require_fsck_clean(f.vol);

  FatFs fs = open_fs(f.vol, false);
  std::set<std::string> names;
  for (const auto& e : fs.list("")) names.insert(e.name);
  for (const auto& [name, data] : files) CHECK(names.count(name) == 1);
  CHECK(names.count(utf8_name) == 1);                               // UTF-8 -> UCS-2 -> UTF-8 is exact
  CHECK(fs.read_file("CAF\xc3\xa9-\xe2\x82\xac.TXT") == "utf8\n");  // only ASCII folds case
  CHECK(fs.read_file("lower.TXT") == "lower\n");
  CHECK(fs.read_file("netwoR~3") == "two\n");
}

TEST_CASE("Names FAT cannot hold are rejected", "[fat]") {
  BootFixture f;
  FatFs fs = open_fs(f.vol);
  CHECK_THROWS_WITH(fs.write_file("a*b", "x"), Contains("system-boot: a*b: the name contains a character"));
  CHECK_THROWS_WITH(fs.write_file("trailing.", "x"), Contains("ends with a dot"));
  CHECK_THROWS_WITH(fs.write_file(std::string(256, 'n'), "x"), Contains("255"));
  CHECK_THROWS_WITH(fs.write_file("bad\xff", "x"), Contains("not valid UTF-8"));
  CHECK_THROWS_WITH(fs.write_file("emoji-\xf0\x9f\x98\x80", "x"), Contains("Basic Multilingual Plane"));
  CHECK_THROWS_WITH(fs.write_file("", "x"), Contains("root directory"));
  CHECK_THROWS_WITH(fs.write_file("missing/file", "x"), Contains("system-boot: missing: no such directory"));
  CHECK_THROWS_WITH(fs.write_file("overlays", "x"), Contains("is a directory"));
  CHECK_THROWS_AS(fs.write_file("overlays/../x", "x"), pibake::Error);
  fs.close();
  require_fsck_clean(f.vol);
}

TEST_CASE("mkdir_p creates nested directories with correct dot entries", "[fat]") {
  BootFixture f;
  {
    FatFs fs = open_fs(f.vol);
    fs.mkdir_p("/a/b/c");
    fs.mkdir_p("a/b/c");  // already there: nothing to do
    fs.mkdir_p("overlays/extra dir with a long name");
    fs.write_file("a/b/c/deep.txt", "deep\n");
    fs.write_file("overlays/extra dir with a long name/x.dtbo", "dtbo\n");
    CHECK(fs.is_directory("A/B/C"));
    CHECK_THROWS_WITH(fs.mkdir_p("cmdline.txt/x"), Contains("system-boot: cmdline.txt: exists and is not a directory"));
    auto listing = fs.list("a/b");
    REQUIRE(listing.size() == 1);
    CHECK(listing[0].name == "c");
    CHECK(listing[0].is_directory);
  }
  CHECK(mtype(f.vol, "a/b/c/deep.txt") == "deep\n");
  CHECK(mtype(f.vol, "overlays/extra dir with a long name/x.dtbo") == "dtbo\n");
  std::set<std::string> all = mdir_bare(f.vol, "", true);
  CHECK(all.count("::/a/b/c/deep.txt") == 1);
  CHECK(all.count("::/overlays/extra dir with a long name/x.dtbo") == 1);
  // fsck.fat checks that "." points to the directory itself and ".." to its parent (0 = root).
  require_fsck_clean(f.vol);
  std::string sub = mdir(f.vol, "a");
  CHECK(sub.find(".            <DIR>") != std::string::npos);
  CHECK(sub.find("..           <DIR>") != std::string::npos);
}

TEST_CASE("A multi-cluster file round-trips byte for byte", "[fat]") {
  BootFixture f;
  std::string data = random_bytes(300 * 1024 + 7, 42);
  uint64_t free_before = 0;
  {
    FatFs fs = open_fs(f.vol);
    free_before = fs.free_bytes();
    fs.mkdir_p("firmware");
    fs.write_file("firmware/big.bin", data);
    // 601 data clusters of 512 bytes, plus the new directory's cluster.
    CHECK(fs.free_bytes() == free_before - (601 + 1) * 512);
  }
  CHECK(mtype(f.vol, "firmware/big.bin") == data);
  require_fsck_clean(f.vol);
  FatFs fs = open_fs(f.vol, false);
  CHECK(fs.read_file("firmware/BIG.BIN") == data);
  // Allocation prefers one contiguous run.
  std::string chain = must_run({"mshowfat", "-i", f.vol.mtools(), "::/firmware/big.bin"});
  CHECK(std::count(chain.begin(), chain.end(), '<') == 1);
  CHECK(chain.find(',') == std::string::npos);
}

TEST_CASE("Directories grow by a cluster when their slots run out, the FAT32 root included", "[fat]") {
  BootFixture f;
  std::set<std::string> expected_root, expected_sub;
  {
    FatFs fs = open_fs(f.vol);
    fs.mkdir_p("many");
    // A 512-byte cluster holds 16 slots; each of these names takes 3 (two LFN slots + 8.3).
    for (int i = 0; i < 60; ++i) {
      std::string name = "generated-file-" + std::to_string(i) + ".txt";
      fs.write_file(name, name);
      expected_root.insert("::/" + name);
    }
    for (int i = 0; i < 150; ++i) {
      std::string name = "F" + std::to_string(i);
      fs.write_file("many/" + name, name);
      expected_sub.insert("::/many/" + name);
    }
    CHECK(fs.list("many").size() == 150);
    CHECK(fs.read_file("generated-file-59.txt") == "generated-file-59.txt");
  }
  std::set<std::string> root = mdir_bare(f.vol);
  for (const auto& name : expected_root) CHECK(root.count(name) == 1);
  CHECK(mdir_bare(f.vol, "many") == expected_sub);
  CHECK(mtype(f.vol, "generated-file-0.txt") == "generated-file-0.txt");
  CHECK(mtype(f.vol, "many/F149") == "F149");
  require_fsck_clean(f.vol);
}

TEST_CASE("remove frees files and empty directories and refuses non-empty ones", "[fat]") {
  BootFixture f;
  {
    FatFs fs = open_fs(f.vol);
    uint64_t free_before = fs.free_bytes();
    CHECK(fs.remove("network-config"));  // a long-name entry: LFN slots go too
    CHECK(fs.remove("vmlinuz"));
    CHECK(fs.free_bytes() == free_before + 512 + 586 * 512);
    CHECK_FALSE(fs.remove("vmlinuz"));
    CHECK_FALSE(fs.remove("missing/dir/file"));
    CHECK_THROWS_WITH(fs.remove("overlays"), Contains("system-boot: overlays: directory is not empty"));
    CHECK_THROWS_WITH(fs.remove("/"), Contains("root directory"));
    CHECK(fs.remove("overlays/README"));
    CHECK(fs.remove("OVERLAYS"));
    CHECK_FALSE(fs.exists("overlays"));
    // Freed slots and clusters are reused.
    fs.write_file("network-config", "version: 2\n");
  }
  std::set<std::string> bare = mdir_bare(f.vol, "", true);
  CHECK(bare.count("::/vmlinuz") == 0);
  CHECK(bare.count("::/overlays/") == 0);
  CHECK(bare.count("::/network-config") == 1);
  CHECK(mtype(f.vol, "network-config") == "version: 2\n");
  require_fsck_clean(f.vol);
}

TEST_CASE("Opening read-only, or writable without changes, writes nothing", "[fat]") {
  BootFixture f;
  std::string before = sha256(f.vol.path);
  {
    FatFs fs = open_fs(f.vol, false);
    CHECK(fs.read_file("config.txt") == mtype(f.vol, "config.txt"));
    CHECK_THROWS_WITH(fs.write_file("cmdline.txt", "x"), Contains("read-only"));
    CHECK_THROWS_WITH(fs.mkdir_p("dir"), Contains("read-only"));
    CHECK_THROWS_WITH(fs.remove("cmdline.txt"), Contains("read-only"));
    fs.close();
  }
  CHECK(sha256(f.vol.path) == before);
  {
    FatFs fs = open_fs(f.vol);
    (void)fs.list("overlays");
    (void)fs.read_file("vmlinuz");
  }
  CHECK(sha256(f.vol.path) == before);
}

TEST_CASE("Timestamps follow set_timestamp, else SOURCE_DATE_EPOCH, else 2000-01-01", "[fat]") {
  BootFixture f;
  EnvVar guard("SOURCE_DATE_EPOCH");  // as the test found it, afterwards
  {
    unsetenv("SOURCE_DATE_EPOCH");
    FatFs fs = open_fs(f.vol);
    fs.write_file("default.txt", "x");
    setenv("SOURCE_DATE_EPOCH", "1600000000", 1);  // 2020-09-13 12:26:40 UTC
    fs.write_file("epoch.txt", "x");
    setenv("SOURCE_DATE_EPOCH", "yesterday", 1);
    CHECK_THROWS_WITH(fs.write_file("bad-epoch.txt", "x"), Contains("SOURCE_DATE_EPOCH"));
    CHECK_FALSE(fs.exists("bad-epoch.txt"));
    fs.set_timestamp(1700000000);  // 2023-11-14 22:13:20 UTC
    fs.write_file("explicit.txt", "x");
    fs.mkdir_p("explicit-dir");
  }
  std::string listing = mdir(f.vol);
  INFO(listing);
  CHECK(listing.find("default  txt         1 2000-01-01   0:00") != std::string::npos);
  CHECK(listing.find("epoch    txt         1 2020-09-13  12:26") != std::string::npos);
  CHECK(listing.find("explicit txt         1 2023-11-14  22:13") != std::string::npos);
  CHECK(mdir_line(listing, "explicit-dir").find("<DIR>     2023-11-14  22:13") != std::string::npos);
  require_fsck_clean(f.vol);
}

TEST_CASE("A boot sector that is not FAT is rejected with the reason", "[fat]") {
  BootFixture f;
  const Volume& v = f.vol;
  CHECK_THROWS_WITH(FatFs(v.path, f.vol.offset + v.size, 100ull << 20, false), Contains("not a FAT filesystem"));
  CHECK_THROWS_WITH(FatFs(v.path, v.offset, v.size / 2, false), Contains("not a FAT filesystem: the boot sector says"));
  CHECK_THROWS_WITH(FatFs(v.path + ".missing", 0, v.size, false), Contains("cannot open"));

  std::string original = peek(v.path, v.offset, 512);
  auto with_byte = [&](size_t at, char value, const std::string& reason) {
    std::string bs = original;
    bs[at] = value;
    poke(v.path, v.offset, bs);
    CHECK_THROWS_WITH(FatFs(v.path, v.offset, v.size, true), Contains("not a FAT filesystem: " + reason));
    poke(v.path, v.offset, original);
  };
  with_byte(510, 0, "no 0x55AA");
  with_byte(12, 3, "bytes per sector is 768");  // 0x0300
  with_byte(13, 3, "sectors per cluster is 3");
  with_byte(16, 0, "the number of FATs is 0");
  with_byte(14, 0, "no reserved sectors");
  with_byte(21, 0x12, "invalid media byte");
  with_byte(47, 0x7F, "the root directory cluster");
  FatFs fs = open_fs(v, false);  // the restored boot sector opens again
  CHECK(fs.fat_bits() == 32);
}

TEST_CASE("A looping or out-of-range cluster chain is an error, not a hang", "[fat]") {
  BootFixture f;
  std::string config = mtype(f.vol, "config.txt");
  uint32_t first = first_cluster(f.vol, "vmlinuz");
  corrupt_fat32_entry(f.vol, first + 3, first + 1);  // ... -> first+3 -> first+1 -> ... loops
  uint32_t cmdline = first_cluster(f.vol, "cmdline.txt");
  corrupt_fat32_entry(f.vol, cmdline, 0x0FFFFFF0);  // reserved value, not a data cluster
  std::string before = sha256(f.vol.path);
  {
    FatFs fs = open_fs(f.vol);
    CHECK_THROWS_WITH(fs.read_file("vmlinuz"), Contains("system-boot: vmlinuz: cluster chain loops"));
    CHECK_THROWS_WITH(fs.write_file("vmlinuz", "new"), Contains("cluster chain loops"));
    CHECK_THROWS_WITH(fs.remove("vmlinuz"), Contains("cluster chain loops"));
    CHECK_THROWS_WITH(fs.read_file("cmdline.txt"), Contains("system-boot: cmdline.txt: cluster chain points outside"));
    CHECK(fs.read_file("config.txt") == config);
  }
  CHECK(sha256(f.vol.path) == before);  // nothing was changed by the failed calls
}

TEST_CASE("A file that does not fit is an error and leaves the filesystem clean", "[fat]") {
  BootFixture f;
  std::string old_cmdline = mtype(f.vol, "cmdline.txt");
  {
    FatFs fs = open_fs(f.vol);
    uint64_t free_before = fs.free_bytes();
    CHECK_THROWS_WITH(fs.write_file("huge.bin", std::string(free_before + 1, 'h')),
                      Contains("system-boot is full: need " + std::to_string(free_before + 512) + " bytes, " +
                               std::to_string(free_before) + " free"));
    CHECK_FALSE(fs.exists("huge.bin"));
    CHECK_THROWS_WITH(fs.write_file("cmdline.txt", std::string(free_before + 1024, 'c')), Contains("is full"));
    CHECK(fs.read_file("cmdline.txt") == old_cmdline);
    CHECK(fs.free_bytes() == free_before);
    // Fill it but for two clusters, then ask for three.
    fs.write_file("fill.bin", std::string(free_before - 2 * 512, 'f'));
    CHECK(fs.free_bytes() == 2 * 512);
    CHECK_THROWS_WITH(fs.write_file("more.bin", std::string(3 * 512, 'm')), Contains("is full"));
    CHECK_FALSE(fs.exists("more.bin"));
    fs.write_file("last.bin", std::string(512, 'l'));
  }
  require_fsck_clean(f.vol);
  CHECK(mtype(f.vol, "cmdline.txt") == old_cmdline);
  CHECK(mtype(f.vol, "last.bin") == std::string(512, 'l'));
  CHECK(mdir_bare(f.vol).count("::/fill.bin") == 1);
}

TEST_CASE("FAT16: files, directories, and a full fixed root directory", "[fat]") {
  ScratchDir dir;
  Volume v = make_plain_fat(dir, 16);
  {
    FatFs fs = open_fs(v);
    CHECK(fs.fat_bits() == 16);
    fs.mkdir_p("boot/overlays");
    fs.write_file("boot/overlays/a long overlay name.dtbo", random_bytes(10000, 7));
    fs.write_file("cmdline.txt", "root=/dev/mmcblk0p2\n");
    // 512 root slots; "boot" and cmdline.txt take two.
    for (int i = 0; i < 510; ++i) fs.write_file("F" + std::to_string(i), "");
    uint64_t free_before = fs.free_bytes();
    CHECK_THROWS_WITH(fs.write_file("one-too-many", "x"),
                      Contains(": one-too-many: the root directory is full (512 entries"));
    CHECK_FALSE(fs.exists("one-too-many"));
    CHECK(fs.free_bytes() == free_before);
    CHECK(fs.remove("F0"));
    fs.write_file("G", "reuses the slot");
  }
  require_fsck_clean(v);
  CHECK(mtype(v, "boot/overlays/a long overlay name.dtbo") == random_bytes(10000, 7));
  CHECK(mtype(v, "cmdline.txt") == "root=/dev/mmcblk0p2\n");
  CHECK(mtype(v, "G") == "reuses the slot");
  CHECK(mdir_bare(v).size() == 512);
}

TEST_CASE("FAT12: entries that straddle FAT sectors, directories and removal", "[fat]") {
  ScratchDir dir;
  Volume v = make_plain_fat(dir, 12, "PIBOOT");
  // 8 KiB clusters: 3 MB crosses the FAT12 entries split over sector boundaries (cluster 341...).
  std::string big = random_bytes(3 * 1000 * 1000, 12);
  {
    FatFs fs = open_fs(v);
    CHECK(fs.fat_bits() == 12);
    CHECK(fs.label() == "PIBOOT");
    CHECK_THROWS_WITH(fs.read_file("nothing"), Contains("PIBOOT: nothing: no such file"));
    fs.write_file("small-1.txt", "one\n");
    fs.write_file("big.bin", big);
    fs.mkdir_p("sub/dir");
    fs.write_file("sub/dir/small-2.txt", "two\n");
    fs.write_file("small-1.txt", "one, replaced\n");
    CHECK(fs.remove("sub/dir/small-2.txt"));
    fs.write_file("sub/dir/small-3.txt", "three\n");
  }
  require_fsck_clean(v);
  CHECK(mtype(v, "big.bin") == big);
  CHECK(mtype(v, "small-1.txt") == "one, replaced\n");
  CHECK(mtype(v, "sub/dir/small-3.txt") == "three\n");
  CHECK(mdir_bare(v, "", true) ==
        std::set<std::string>{"::/small-1.txt", "::/big.bin", "::/sub/", "::/sub/dir/", "::/sub/dir/small-3.txt"});
  FatFs fs = open_fs(v, false);
  CHECK(fs.read_file("big.bin") == big);
}

TEST_CASE("A file size near 4 GiB with a short cluster chain is an error and not a 4 GiB allocation", "[fat]") {
  // Found by fuzz_fat: size + cluster size - 1 wrapped in 32 bits, so the chain check passed.
  ScratchDir dir;
  Volume v = make_plain_fat(dir, 16);
  {
    FatFs fs = open_fs(v);
    fs.write_file("big.txt", "four bytes");
    fs.close();
  }
  std::string img = pibake::test::read_text(v.path);
  auto get16 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<uint8_t>(img[at])) |
           static_cast<uint32_t>(static_cast<uint8_t>(img[at + 1])) << 8;
  };
  const uint32_t bps = get16(11), reserved = get16(14), fats = static_cast<uint8_t>(img[16]), fat_sectors = get16(22);
  const size_t root = static_cast<size_t>(reserved + fats * fat_sectors) * bps;
  size_t slot = img.find("BIG     TXT", root);
  REQUIRE(slot != std::string::npos);
  {
    int fd = open(v.path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    const unsigned char size[4] = {0xff, 0xff, 0xff, 0xff};
    REQUIRE(pwrite(fd, size, 4, static_cast<off_t>(slot + 28)) == 4);
    close(fd);
  }
  FatFs fs = open_fs(v, /*writable=*/false);
  // Refused from the entry's size before the chain is walked; with no limit, by the chain check.
  CHECK_THROWS_WITH(fs.read_file("big.txt"), Contains("it claims 4294967295 bytes, more than the 64 MiB"));
  CHECK_THROWS_WITH(fs.read_file("big.txt", UINT64_MAX),
                    Contains("file is 4294967295 bytes but its cluster chain holds only"));
}

TEST_CASE("A directory whose cluster chain holds more than 2 MiB is refused while the chain is walked", "[fat]") {
  // Microsoft FAT spec, "FAT Directory Structure": at most 65536 entries of 32 bytes. A crafted
  // root directory looping through every cluster of a 512 MiB partition took 135 s and 1 GB.
  BootFixture f;
  const Volume& v = f.vol;
  const Fat32Geometry g(v);
  REQUIRE(g.bps * g.sectors_per_cluster == 512);
  const uint32_t two_mib = (2u << 20) / 512;  // clusters
  const uint32_t run = 60000, max = g.max_cluster();
  // Every cluster from `run` to the last is free: the fixture's files sit near the start.
  REQUIRE(max > run + two_mib);
  REQUIRE(peek(v.path, g.entry_pos(v, 0, run), 4ull * (max - run + 1)) == std::string(4ull * (max - run + 1), '\0'));
  const std::string config = mtype(v, "config.txt");
  // Chains the free clusters run .. run + n - 1 after `from`, the last one ending the chain.
  auto extend = [&](uint32_t from, uint32_t n) {
    std::vector<uint32_t> links;
    for (uint32_t c = run + 1; c < run + n; ++c) links.push_back(c);
    links.push_back(0x0FFFFFFF);
    corrupt_fat32_entry(v, from, run);
    set_fat32_entries(v, run, links);
  };
  const uint32_t overlays = first_cluster(v, "overlays");
  REQUIRE(fat32_entry(v, overlays) >= 0x0FFFFFF8);  // one cluster
  const std::string too_long = ": directory's cluster chain holds more than 2 MiB, FAT's limit of 65536 entries";
  auto names = [](const std::vector<std::string>& problems, const std::string& what) {
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.find(what) != std::string::npos; });
  };

  // Exactly 2 MiB: still a directory (the new clusters hold zeros: the listing ends as before).
  extend(overlays, two_mib - 1);
  {
    FatFs fs = open_fs(v, false);
    REQUIRE(fs.list("overlays").size() == 1);
    CHECK_FALSE(names(fs.check(), "overlays"));  // FSInfo's free count is stale now, nothing else
  }

  // One cluster more: refused wherever the directory's chain is walked.
  extend(overlays, two_mib);
  const std::string before = sha256(v.path);
  {
    FatFs fs = open_fs(v);
    const std::string why = "system-boot: overlays" + too_long;
    CHECK_THROWS_WITH(fs.list("overlays"), Contains(why));
    CHECK_THROWS_WITH(fs.exists("overlays/README"), Contains(why));
    CHECK_THROWS_WITH(fs.read_file("overlays/README"), Contains(why));
    CHECK_THROWS_WITH(fs.write_file("overlays/new", "x"), Contains(why));
    CHECK_THROWS_WITH(fs.mkdir_p("overlays/sub"), Contains(why));
    CHECK_THROWS_WITH(fs.remove("overlays"), Contains(why));
    CHECK(names(fs.check(), "system-boot: /overlays" + too_long));
    CHECK(fs.read_file("config.txt") == config);
  }
  CHECK(sha256(v.path) == before);  // nothing was changed by the failed calls

  // The FAT32 root, its chain running on through every later cluster and looping back to the
  // first of them: refused at 2 MiB, not walked through the whole partition.
  corrupt_fat32_entry(v, overlays, 0x0FFFFFFF);
  uint32_t root_last = g.root_cluster;
  while (fat32_entry(v, root_last) < 0x0FFFFFF8) root_last = fat32_entry(v, root_last);
  extend(root_last, max - run + 1);
  corrupt_fat32_entry(v, max, run);
  {
    FatFs fs = open_fs(v, false);  // opens: the label is then the boot sector's
    const std::string why = "system-boot: /" + too_long;
    CHECK_THROWS_WITH(fs.exists("config.txt"), Contains(why));
    CHECK_THROWS_WITH(fs.list("/"), Contains(why));
    std::vector<std::string> problems = fs.check();
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Contains("the root directory: " + why));
  }
}

TEST_CASE("A boot sector claiming a FAT over 64 MiB is refused before the FAT is allocated", "[fat]") {
  // The FAT's size comes from the boot sector alone: a sparse image file claiming a 130 GiB
  // partition made pibake allocate (and read) 1 GiB for it.
  ScratchDir dir;
  Volume v = make_plain_fat(dir, 32);
  const std::string original = peek(v.path, 0, 512);
  const Fat32Geometry g(v);
  // The boot sector rewritten for `clusters` clusters of `sectors_per_cluster` 512-byte sectors,
  // the FATs sized to fit, the file (sparse) as long as the filesystem.
  auto claim = [&](uint64_t clusters, uint8_t sectors_per_cluster) {
    REQUIRE(g.bps == 512);
    const uint64_t fat_sectors = ((clusters + 2) * 4 + 511) / 512;
    const uint64_t total = g.reserved + g.fats * fat_sectors + clusters * sectors_per_cluster;
    REQUIRE(total <= UINT32_MAX);
    std::string bs = original;
    bs[13] = static_cast<char>(sectors_per_cluster);
    bs[19] = bs[20] = 0;  // BPB_TotSec16 (mkfs.vfat sets it on a small filesystem): BPB_TotSec32 counts
    bs.replace(32, 4, le32(static_cast<uint32_t>(total)));
    bs.replace(36, 4, le32(static_cast<uint32_t>(fat_sectors)));
    poke(v.path, 0, bs);
    REQUIRE(truncate(v.path.c_str(), static_cast<off_t>(total * 512)) == 0);
    v.size = total * 512;
  };
  const std::string refused = "not a FAT filesystem: its FAT for ";

  // One FAT sector over 64 MiB (16 Mi - 1 clusters): refused, naming the sizes.
  claim((uint64_t{16} << 20) - 1, 1);
  REQUIRE_THROWS_WITH(FatFs(v.path, 0, v.size, false),
                      Contains(refused + "16777215 clusters takes 67109376 bytes, more than the 64 MiB pibake holds "
                                         "in memory (a damaged or hostile image?)"));
  // 130 GiB of 512-byte clusters (nearly FAT32's most), a 1 GiB FAT: refused the same way, at once.
  claim((uint64_t{256} << 20) - 16, 1);
  CHECK_THROWS_WITH(FatFs(v.path, 0, v.size, false), Contains(refused + "268435440 clusters takes 1073741824 bytes"));
  // Exactly 64 MiB (16 Mi - 2 clusters and the two reserved entries) opens.
  claim((uint64_t{16} << 20) - 2, 1);
  FatFs fs(v.path, 0, v.size, false);
  CHECK(fs.fat_bits() == 32);
}
