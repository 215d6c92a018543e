// Block maps, compressed outputs and flash's refusal rules, checked against bmap-tools and the
// zstd/xz command-line tools where they are installed.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "image/bmap.h"
#include "codec/codec.h"
#include "pipeline/flash.h"
#include "test_support.h"
#include "util/error.h"

using namespace pibake;
using pibake::test::ScratchDir;

namespace {

// A sparse file: data at 0-8 KiB, 1 MiB-1 MiB+100 and at the very end, holes elsewhere.
std::string make_sparse(const ScratchDir& dir, uint64_t size) {
  std::string path = dir / "sparse.img";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string a(8192, 'a'), b(100, 'b'), c(10, 'c');
  REQUIRE(pwrite(fd, a.data(), a.size(), 0) == static_cast<ssize_t>(a.size()));
  REQUIRE(pwrite(fd, b.data(), b.size(), 1 << 20) == static_cast<ssize_t>(b.size()));
  REQUIRE(pwrite(fd, c.data(), c.size(), static_cast<off_t>(size - c.size())) == static_cast<ssize_t>(c.size()));
  REQUIRE(fsync(fd) == 0);
  close(fd);
  return path;
}

std::string read_all(const std::string& path) { return pibake::test::read_text(path); }

}  // namespace

TEST_CASE("byte ranges become merged inclusive block ranges") {
  auto r = to_block_ranges({{0, 4096}, {4096, 8193}, {20000, 20001}, {20479, 20480}}, 4096);
  REQUIRE(r.size() == 2);
  CHECK(r[0].first == 0);
  CHECK(r[0].last == 2);
  CHECK(r[1].first == 4);
  CHECK(r[1].last == 4);
}

TEST_CASE("a bmap of a sparse file lists only its data blocks and parses back") {
  ScratchDir dir;
  uint64_t size = (8ull << 20) + 1000;  // not a whole number of blocks
  std::string img = make_sparse(dir, size);
  Bmap bmap = make_bmap(img);
  CHECK(bmap.image_size == size);
  CHECK(bmap.blocks_count == (size + 4095) / 4096);
  REQUIRE(bmap.ranges.size() == 3);
  CHECK(bmap.ranges[0].first == 0);
  CHECK(bmap.ranges[0].last == 1);
  CHECK(bmap.ranges[1].first == 256);
  CHECK(bmap.ranges[2].last == bmap.blocks_count - 1);
  std::string text = render_bmap(bmap);
  Bmap back = parse_bmap(text, "x.bmap");
  CHECK(back.mapped_blocks == bmap.mapped_blocks);
  REQUIRE(back.ranges.size() == 3);
  CHECK(back.ranges[1].sha256 == bmap.ranges[1].sha256);
}

TEST_CASE("a bmap is byte-identical to bmaptool create's") {
  if (!pibake::test::tool_or_skip("bmaptool", "bmap-tools")) return;
  ScratchDir dir;
  std::string img = make_sparse(dir, 16ull << 20);
  pibake::test::must_run({"bmaptool", "create", "-o", dir / "ref.bmap", img});
  CHECK(render_bmap(make_bmap(img)) == read_all(dir / "ref.bmap"));
}

TEST_CASE("a damaged bmap file is refused, naming the file") {
  ScratchDir dir;
  std::string text = render_bmap(make_bmap(make_sparse(dir, 4ull << 20)));
  std::string damaged = text;
  damaged.replace(damaged.find("<Range"), 6, "<Range ");
  CHECK_THROWS_WITH(parse_bmap(damaged, "node-1.img.bmap"),
                    Catch::Contains("node-1.img.bmap: the bmap file is damaged"));
  CHECK_THROWS_WITH(parse_bmap("<bmap version=\"1.3\">", "old.bmap"), Catch::Contains("version 1.3 is not supported"));
}

TEST_CASE("compressed outputs decompress to the image and carry a sha256sum line") {
  ScratchDir dir;
  std::string img = make_sparse(dir, 6ull << 20);
  std::string raw = read_all(img);
  for (Compression c : {Compression::kZstd, Compression::kXz}) {
    CompressResult r = compress_image(img, c);
    CHECK(read_all(r.path + ".sha256") == r.sha256 + "  sparse.img" + suffix_of(c) + "\n");
    auto in = open_decompressor(r.path, compression_of(r.path));
    std::string out, buf(1 << 20, '\0');
    for (size_t n; (n = in->read(buf.data(), buf.size())) > 0;) out.append(buf, 0, n);
    CHECK(out == raw);
    // The same with independent tools: the reference decompressor and sha256sum.
    const std::string tool = c == Compression::kZstd ? "zstd" : "xz";
    if (pibake::test::tool_or_skip(tool, tool == "zstd" ? "zstd" : "xz-utils")) {
      CHECK(pibake::test::must_run({tool, "-dc", r.path}) == raw);
    }
    CHECK(pibake::test::must_run({"sha256sum", r.path}) == r.sha256 + "  " + r.path + "\n");
  }
}

TEST_CASE("a truncated zstd stream is an error, not a short image") {
  ScratchDir dir;
  std::string img = make_sparse(dir, 2ull << 20);
  CompressResult r = compress_image(img, Compression::kZstd);
  REQUIRE(truncate(r.path.c_str(), static_cast<off_t>(r.bytes / 2)) == 0);
  auto in = open_decompressor(r.path, Compression::kZstd);
  std::string buf(1 << 20, '\0');
  CHECK_THROWS_AS(
      [&] {
        while (in->read(buf.data(), buf.size()) > 0) {
        }
      }(),
      pibake::Error);
}

TEST_CASE("flash refuses mounted, fixed, partition and oversized devices") {
  DeviceFacts card{"/dev/sdb", "sdb", false, true, 32ull << 30, {}};
  CHECK(device_refusals(card, kDefaultFlashMaxBytes).empty());

  DeviceFacts disk{"/dev/nvme0n1", "nvme0n1", false, false, 1ull << 40, {"/dev/nvme0n1p2 on /"}};
  auto reasons = device_refusals(disk, kDefaultFlashMaxBytes);
  REQUIRE(reasons.size() == 3);
  CHECK(reasons[0] == "it is mounted: /dev/nvme0n1p2 on /");
  CHECK(reasons[1] == "/dev/nvme0n1 is not a removable device (sysfs removable=0)");
  CHECK(reasons[2] == "/dev/nvme0n1 holds 1024.0 GiB, more than the 256.0 GiB limit for a card (see --max-size)");

  DeviceFacts builtin_reader{"/dev/mmcblk0", "mmcblk0", false, false, 64ull << 30, {}};
  CHECK(device_refusals(builtin_reader, kDefaultFlashMaxBytes).empty());
  DeviceFacts part{"/dev/sdb1", "sdb1", true, true, 1ull << 30, {}};
  CHECK(device_refusals(part, kDefaultFlashMaxBytes).size() == 1);
}

TEST_CASE("mounts of a device and its partitions are found in /proc/self/mounts text") {
  std::string mounts =
      "/dev/sda2 / ext4 rw,relatime 0 0\n"
      "proc /proc proc rw 0 0\n"
      "/dev/sdb1 /media/me/system-boot vfat rw 0 0\n"
      "/dev/sdb2 /media/me/my\\040card ext4 rw 0 0\n"
      "/dev/sdb10 /mnt ext4 rw 0 0\n";
  auto found = mounts_of(mounts, {"/dev/sdb", "/dev/sdb1", "/dev/sdb2"});
  REQUIRE(found.size() == 2);
  CHECK(found[0] == "/dev/sdb1 on /media/me/system-boot");
  CHECK(found[1] == "/dev/sdb2 on /media/me/my card");
  CHECK(mounts_of(mounts, {"/dev/sdc"}).empty());
}

TEST_CASE("flash writes a sparse image to a file, holes kept, and refuses a character device") {
  ScratchDir dir;
  std::string img = make_sparse(dir, 8ull << 20);
  FlashOptions opts;
  opts.image = img;
  opts.target = dir / "target.img";
  FlashResult r = run_flash(opts);
  CHECK(r.verified);
  CHECK(r.written_bytes == 4096 * 4);
  CHECK(read_all(opts.target) == read_all(img));
  opts.target = "/dev/null";
  CHECK_THROWS_WITH(run_flash(opts), Catch::Contains("neither a block device nor a regular file"));
}
