// Tests of the block-map check (builder/image/ext4_block_map.cpp): inodes whose extent tree or
// indirect blocks would make libext2fs walk far more than their size, crafted by patching bytes
// of a plain ext4 made by mke2fs and debugfs, are refused quickly with a clear message; sound
// trees of more than one level still work.
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "ext4_test_support.h"
#include "image/ext4.h"
#include "test_support.h"
#include "util/error.h"
#include "util/little_endian.h"
#include "util/unique_fd.h"

namespace t = pibake::test;
using namespace pibake::test::ext4;  // Disk, debugfs, ... and the names they use (ext4_test_support.h)

namespace {

constexpr uint64_t kBlock = 4096;
constexpr uint16_t kPerBlock = (kBlock - 12) / 12;  // extent entries in a 4 KiB block: 340

// A plain filesystem of 4 KiB blocks without metadata_csum, so that blocks and inodes patched
// byte by byte need no checksum, with /etc/hostname and an empty directory /hostile.
struct Crafted {
  PlainFs plain;
  explicit Crafted(const std::string& type = "ext4")
      : plain({"-t", type, "-b", "4096", "-O", "^metadata_csum"}, "64M") {
    t::write_text(plain.dir / "hostname", "ubuntu\n");
    t::write_text(plain.dir / "cmds",
                  "mkdir /etc\nmkdir /hostile\ncd /etc\nwrite " + (plain.dir / "hostname") + " hostname\n");
    t::must_run({"debugfs", "-w", "-f", plain.dir / "cmds", plain.path});
  }
  const std::string& path() const { return plain.path; }

  uint64_t number(const std::string& command, const std::string& after) const {
    std::string out = debugfs(path(), command);
    auto at = out.find(after);
    REQUIRE(at != std::string::npos);
    return std::stoull(out.substr(at + after.size()), nullptr, 0);
  }
  uint64_t inode(const std::string& file) const { return number("imap " + file, "Inode "); }
  uint64_t first_block(const std::string& file) const { return number("bmap " + file + " 0", ""); }
  // `n` free blocks, marked in use so that nothing else takes them.
  std::vector<uint64_t> take_blocks(int n) const {
    std::string out = debugfs(path(), "ffb " + std::to_string(n));
    auto at = out.find("Free blocks found: ");
    REQUIRE(at != std::string::npos);
    std::vector<uint64_t> blocks;
    std::size_t pos = at + 19;
    for (int i = 0; i < n; ++i) {
      std::size_t used = 0;
      blocks.push_back(std::stoull(out.substr(pos), &used));
      pos += used;
      debugfs_write("setb " + std::to_string(blocks.back()));
    }
    return blocks;
  }
  void debugfs_write(const std::string& command) const { t::must_run({"debugfs", "-w", "-R", command, path()}); }

  void put(uint64_t offset, const std::string& bytes) const {
    pibake::UniqueFd fd(::open(path().c_str(), O_WRONLY | O_CLOEXEC));
    REQUIRE(fd);
    REQUIRE(::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(bytes.size()));
  }
  void put_block(uint64_t block, std::string bytes) const {
    bytes.resize(kBlock, '\0');
    put(block * kBlock, bytes);
  }
  // The inode's i_block (60 bytes: the extent tree's root, or the block pointers) and i_size.
  void put_inode(const std::string& file, const std::string& i_block, uint64_t size) const {
    std::string out = debugfs(path(), "imap " + file);
    auto at = out.find("located at block ");
    REQUIRE(at != std::string::npos);
    uint64_t block = std::stoull(out.substr(at + 17));
    uint64_t offset = block * kBlock + std::stoull(out.substr(out.find("offset ", at) + 7), nullptr, 16);
    REQUIRE(i_block.size() == 60);
    put(offset + 40, i_block);
    put(offset + 4, le32(static_cast<uint32_t>(size)));
    put(offset + 108, le32(static_cast<uint32_t>(size >> 32)));
  }

  static std::string le16(uint16_t v) {
    std::string s(2, '\0');
    pibake::put16(reinterpret_cast<uint8_t*>(s.data()), v);
    return s;
  }
  static std::string le32(uint32_t v) {
    std::string s(4, '\0');
    pibake::put32(reinterpret_cast<uint8_t*>(s.data()), v);
    return s;
  }
  // struct ext3_extent_header, ext3_extent_idx and ext3_extent (e2fsprogs lib/ext2fs/ext3_extents.h).
  static std::string header(uint16_t entries, uint16_t max, uint16_t depth) {
    return le16(0xF30A) + le16(entries) + le16(max) + le16(depth) + le32(0);
  }
  static std::string index(uint32_t logical, uint64_t child) {
    return le32(logical) + le32(static_cast<uint32_t>(child)) + le16(static_cast<uint16_t>(child >> 32)) + le16(0);
  }
  static std::string extent(uint32_t logical, uint16_t len, uint64_t start) {
    return le32(logical) + le16(len) + le16(static_cast<uint16_t>(start >> 32)) + le32(static_cast<uint32_t>(start));
  }

  // Gives `file` an extent tree `depth` levels deep of one block per level, every index entry of a
  // level pointing to the same block below (a DAG: 4 * 340^depth leaf entries to walk), and 340
  // one-block extents in the leaf, all mapping `data`. Returns the tree's blocks, top first.
  std::vector<uint64_t> make_dag(const std::string& file, int depth, uint64_t data, uint64_t size) const {
    std::vector<uint64_t> blocks = take_blocks(depth);
    for (int level = 0; level < depth; ++level) {
      const bool leaf = level == depth - 1;
      std::string bytes = header(kPerBlock, kPerBlock, static_cast<uint16_t>(depth - 1 - level));
      for (uint32_t i = 0; i < kPerBlock; ++i) bytes += leaf ? extent(i, 1, data) : index(i, blocks[level + 1]);
      put_block(blocks[level], bytes);
    }
    std::string root = header(4, 4, static_cast<uint16_t>(depth));
    for (uint32_t i = 0; i < 4; ++i) root += index(i, blocks[0]);
    put_inode(file, root, size);
    return blocks;
  }
};

// The leaf entries libext2fs walks in inode `ino`'s extent tree, as ext2fs_block_iterate3 walks it
// for ext2fs_lookup and ext2fs_dir_iterate2 (ext2fs_extent_get, EXT2_EXTENT_NEXT), counted up to
// `cap`: what the image costs without pibake's check, measured by libext2fs itself.
uint64_t leaf_entries_walked(const std::string& image, uint64_t ino, uint64_t cap) {
  ext2_filsys fs = nullptr;
  REQUIRE(ext2fs_open2(image.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs) == 0);
  ext2_extent_handle_t handle = nullptr;
  REQUIRE(ext2fs_extent_open(fs, static_cast<ext2_ino_t>(ino), &handle) == 0);
  uint64_t leaves = 0;
  ext2fs_extent extent{};
  for (errcode_t rc = ext2fs_extent_get(handle, EXT2_EXTENT_ROOT, &extent); rc == 0 && leaves <= cap;
       rc = ext2fs_extent_get(handle, EXT2_EXTENT_NEXT, &extent)) {
    if (extent.e_flags & EXT2_EXTENT_FLAGS_LEAF) ++leaves;
  }
  ext2fs_extent_free(handle);
  ext2fs_free(fs);
  return leaves;
}

// How long `f` takes, in seconds.
template <typename F>
double seconds(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("Ext4Fs refuses a directory whose extent tree shares its blocks before libext2fs walks it", "[ext4]") {
  Crafted crafted;
  const uint64_t ino = crafted.inode("/hostile");
  const uint64_t data = crafted.first_block("/hostile");  // "." and ".."
  // Three levels: each lookup in /hostile walks 4 * 340^3 = 157 million leaf entries inside
  // libext2fs (ext2fs_lookup -> ext2fs_dir_iterate2 -> ext2fs_block_iterate3; 1 to 3 s here, and
  // a level more is 340 times that). The size is that of the 340 blocks one leaf maps, so that
  // the shared block is what the check finds. Counted up to 340^2 here:
  std::vector<uint64_t> tree = crafted.make_dag("/hostile", 3, data, kPerBlock * kBlock);
  CHECK(leaf_entries_walked(crafted.path(), ino, kPerBlock * kPerBlock) > kPerBlock * kPerBlock);
  const std::string where =
      "the directory /hostile (inode " + std::to_string(ino) + "): its extent tree reaches block ";
  Ext4Fs fs(crafted.path(), 0, /*writable=*/true);
  double took = seconds([&] {
    CHECK_THROWS_WITH(fs.exists("/hostile/nothing"), Contains("while looking up /hostile/nothing in " + crafted.path() +
                                                              ": " + where + std::to_string(tree[2]) + " twice") &&
                                                         Contains("(a damaged or hostile image?)"));
  });
  CHECK(took < 1.0);  // the check walks 344 entries before it meets the shared block again
  CHECK_THROWS_WITH(fs.list("/hostile"), Contains("while listing /hostile in") && Contains(where));
  CHECK_THROWS_WITH(fs.write_file("/hostile/new", "x"),
                    Contains("while looking up /hostile/new in") && Contains(where));
  CHECK_THROWS_WITH(fs.mkdir_p("/hostile/a/b"), Contains(where));
  CHECK_THROWS_WITH(fs.remove_tree("/hostile"), Contains("while listing /hostile in") && Contains(where));
  // Everything else, and the name /hostile itself, is as it was.
  CHECK(fs.exists("/hostile"));
  CHECK(fs.is_directory("/hostile"));
  CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
  fs.write_file("/etc/new", "new\n");
  CHECK(fs.list("/etc") == std::vector<std::string>{"hostname", "new"});
}

TEST_CASE("Ext4Fs refuses extent trees that map more than their size or lie outside the filesystem", "[ext4]") {
  Crafted crafted;
  const uint64_t data = crafted.first_block("/hostile");
  auto refused = [&](const std::string& why) {
    Ext4Fs fs(crafted.path(), 0, /*writable=*/false);
    double took = seconds([&] {
      CHECK_THROWS_WITH(fs.exists("/hostile/nothing"), Contains("while looking up /hostile/nothing in") &&
                                                           Contains("the directory /hostile") && Contains(why) &&
                                                           Contains("(a damaged or hostile image?)"));
    });
    CHECK(took < 5.0);
    CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
  };
  SECTION("a shared tree read before its sharing shows: more blocks than the size") {
    crafted.make_dag("/hostile", 3, data, kBlock);
    refused("its extent tree maps more than 1 blocks, more than its size (4096 bytes) allows");
  }
  SECTION("one extent of 10000 blocks for a directory of one block") {
    std::string root = Crafted::header(2, 4, 0) + Crafted::extent(0, 1, data) + Crafted::extent(1, 10000, data);
    crafted.put_inode("/hostile", root + std::string(60 - root.size(), '\0'), kBlock);
    refused("its extent tree maps more than 1 blocks");
  }
  SECTION("extents that map the same block again and again") {
    std::string root = Crafted::header(4, 4, 0);
    for (uint32_t i = 0; i < 4; ++i) root += Crafted::extent(i, 1, data);
    crafted.put_inode("/hostile", root, 4 * kBlock);
    refused("its extent tree maps block " + std::to_string(data) + " more than once");
  }
  SECTION("an extent past the end of the filesystem") {
    std::string root = Crafted::header(1, 4, 0) + Crafted::extent(0, 1, 16384 + 100);
    crafted.put_inode("/hostile", root + std::string(60 - root.size(), '\0'), kBlock);
    refused("its extent tree maps blocks 16484 to 16484, outside the filesystem (blocks 0 to 16383)");
  }
  SECTION("an index entry pointing past the end of the filesystem") {
    std::string root = Crafted::header(1, 4, 1) + Crafted::index(0, uint64_t{1} << 40);
    crafted.put_inode("/hostile", root + std::string(60 - root.size(), '\0'), kBlock);
    refused("its extent tree points to block 1099511627776, outside the filesystem");
  }
  SECTION("a tree deeper than ext4's 5 levels") {
    crafted.make_dag("/hostile", 6, data, kBlock);
    refused("its extent tree is 6 levels deep, more than ext4's 5");
  }
  SECTION("a directory larger than pibake reads") {
    std::string root = Crafted::header(1, 4, 0) + Crafted::extent(0, 1, data);
    crafted.put_inode("/hostile", root + std::string(60 - root.size(), '\0'), uint64_t{64} << 20);
    refused("it claims 67108864 bytes, more than the 32 MiB pibake reads of a directory");
  }
}

TEST_CASE("Ext4Fs refuses to read or free a file whose extent tree shares its blocks", "[ext4]") {
  Crafted crafted;
  t::write_text(crafted.plain.dir / "cmds", "cd /etc\nwrite " + (crafted.plain.dir / "hostname") + " shared\n");
  t::must_run({"debugfs", "-w", "-f", crafted.plain.dir / "cmds", crafted.path()});
  const uint64_t ino = crafted.inode("/etc/shared");
  const uint64_t data = crafted.first_block("/etc/shared");
  // Freeing it walks the whole tree (ext2fs_block_iterate3): 157 million leaf entries.
  std::vector<uint64_t> tree = crafted.make_dag("/etc/shared", 3, data, kPerBlock * kBlock);
  const std::string why = "the file /etc/shared (inode " + std::to_string(ino) + "): its extent tree reaches block " +
                          std::to_string(tree[2]) + " twice";
  {
    Ext4Fs fs(crafted.path(), 0, /*writable=*/true);
    double took = seconds([&] {
      CHECK_THROWS_WITH(fs.read_file("/etc/shared"), Contains("while reading /etc/shared in") && Contains(why));
      CHECK_THROWS_WITH(fs.read_chunks("/etc/shared", [](std::string_view) {}), Contains(why));
      CHECK_THROWS_WITH(fs.write_file("/etc/shared", "replaced\n"),
                        Contains("while freeing the blocks of /etc/shared in") && Contains(why));
      CHECK_THROWS_WITH(fs.remove("/etc/shared"), Contains(why));
    });
    CHECK(took < 5.0);
    CHECK(fs.exists("/etc/shared"));  // refused before its name was touched
    CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
    CHECK_THROWS_WITH(fs.remove_tree("/etc"), Contains(why));  // /etc/hostname goes first (sorted)
    fs.close();
  }
  CHECK_THAT(debugfs(crafted.path(), "ls /etc"), Contains("shared"));
}

TEST_CASE("Ext4Fs refuses a file whose extent tree holds more entries than its size can need", "[ext4]") {
  Crafted crafted;
  t::write_text(crafted.plain.dir / "cmds", "cd /etc\nwrite " + (crafted.plain.dir / "hostname") + " empty\n");
  t::must_run({"debugfs", "-w", "-f", crafted.plain.dir / "cmds", crafted.path()});
  // An empty file (one block in i_blocks) with 20 preallocated (uninitialized) one-block extents
  // past its end: sound in kind, but more than the 6 entries a block, plus the root's 4, allow.
  const uint64_t leaf = crafted.take_blocks(1)[0];
  std::string bytes = Crafted::header(20, kPerBlock, 0);
  for (uint32_t i = 0; i < 20; ++i) bytes += Crafted::extent(i, 32768 + 1, 8000 + 2 * i);
  crafted.put_block(leaf, bytes);
  std::string root = Crafted::header(1, 4, 1) + Crafted::index(0, leaf);
  crafted.put_inode("/etc/empty", root + std::string(60 - root.size(), '\0'), 0);
  Ext4Fs fs(crafted.path(), 0, /*writable=*/false);
  CHECK_THROWS_WITH(fs.read_file("/etc/empty"),
                    Contains("the file /etc/empty (inode ") &&
                        Contains("its extent tree has more than 10 entries, more than its size (0 bytes) can need"));
  CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
}

TEST_CASE("Ext4Fs refuses an ext3 directory whose indirect blocks share a block", "[ext4]") {
  Crafted crafted("ext3");
  const uint64_t ino = crafted.inode("/hostile");
  const uint64_t data = crafted.first_block("/hostile");
  // i_block[13], the double-indirect block, lists one indirect block 1024 times, which lists the
  // directory's block 1024 times: a million blocks read at each lookup.
  std::vector<uint64_t> blocks = crafted.take_blocks(2);
  std::string dind, ind;
  for (int i = 0; i < 1024; ++i) {
    dind += Crafted::le32(static_cast<uint32_t>(blocks[1]));
    ind += Crafted::le32(static_cast<uint32_t>(data));
  }
  crafted.put_block(blocks[0], dind);
  crafted.put_block(blocks[1], ind);
  std::string i_block = Crafted::le32(static_cast<uint32_t>(data)) + std::string(12 * 4, '\0') +
                        Crafted::le32(static_cast<uint32_t>(blocks[0])) + Crafted::le32(0);
  crafted.put_inode("/hostile", i_block, 2048 * kBlock);
  Ext4Fs fs(crafted.path(), 0, /*writable=*/false);
  CHECK_THROWS_WITH(fs.list("/hostile"),
                    Contains("the directory /hostile (inode " + std::to_string(ino) +
                             "): its indirect block map reaches block " + std::to_string(blocks[1]) + " twice"));
  CHECK(fs.read_file("/etc/hostname") == "ubuntu\n");
}

TEST_CASE("Ext4Fs still reads, lists and frees sound extent trees of more than one level", "[ext4]") {
  PlainFs plain({"-t", "ext4", "-b", "4096"}, "64M");
  // A file of 600 extents (every other block a hole): a tree of two levels.
  std::string data;
  for (int i = 0; i < 1200; ++i) data += i % 2 ? std::string(kBlock, '\0') : random_bytes(kBlock, i);
  {
    Ext4Fs fs(plain.path, 0, /*writable=*/true);
    fs.write_file("/holes", data);
    fs.mkdir_p("/many");
    for (int i = 0; i < 400; ++i) fs.write_file("/many/entry-with-a-rather-long-name-" + std::to_string(i), "x");
    fs.close();
  }
  REQUIRE_THAT(debugfs(plain.path, "ex /holes"), Contains(" 1/ 1 "));  // a leaf below the root
  {
    Ext4Fs fs(plain.path, 0, /*writable=*/true);
    CHECK(fs.read_file("/holes") == data);
    CHECK(fs.list("/many").size() == 400);
    CHECK(fs.exists("/many/entry-with-a-rather-long-name-399"));
    CHECK(fs.remove("/holes"));
    CHECK(fs.remove_tree("/many"));
    fs.write_file("/holes", data);  // the freed inode number, and blocks, again
    CHECK(fs.read_file("/holes") == data);
    fs.close();
  }
  require_fsck_clean(plain.path);
}
