// Node block maps that take the base's hashes: the write log must cover every byte the ext4 and
// FAT writers change (checked by comparing the image before and after, block by block), and a
// block map made with reuse must equal one that hashes everything.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "image/bmap.h"
#include "image/ext4.h"
#include "image/fat.h"
#include "image/sparse_copy.h"
#include "image/write_log.h"
#include "pipeline/base_bmap.h"
#include "test_support.h"
#include "util/unique_fd.h"

using namespace pibake;
namespace t = pibake::test;

namespace {

// `src` copied to `dst` as the build clones the base (copy_sparse).
void clone(const std::string& src, const std::string& dst) {
  UniqueFd fd(open(dst.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd);
  copy_sparse(src, fd.get(), dst);
}

// Writes a bit of everything a node gets: files small and large, directories, a symlink, a
// replaced and a removed file on ext4; a new and a replaced file on FAT.
void write_node_files(const t::FixtureImage& img, const std::string& path, WriteLog& log) {
  {
    Ext4Fs fs(path, img.root_offset, /*writable=*/true, "", &log);
    fs.mkdir_p("/etc/pibake/deep/dir");
    fs.write_file("/etc/hostname", "node-7\n");
    fs.write_file("/etc/pibake/deep/dir/big", std::string(3 << 20, 'x') + std::string(100, 'y'));
    fs.write_file("/etc/pibake/replaced", std::string(70000, 'a'));
    fs.write_file("/etc/pibake/replaced", "short");
    fs.symlink("/etc/pibake/link", "/etc/hostname");
    fs.write_file("/etc/pibake/gone", std::string(9000, 'g'));
    fs.remove_tree("/etc/pibake/gone");
    fs.close();
  }
  FatFs fat(path, img.boot_offset, img.boot_size, /*writable=*/true, "", &log);
  fat.write_file("/meta-data", "instance-id: node-7\n");
  fat.write_file("/user-data", std::string(20000, 'u'));
  fat.close();
}

}  // namespace

TEST_CASE("a write log sorts and merges what it records", "[bmap]") {
  WriteLog log;
  log.add(100, 10);
  log.add(0, 50);
  log.add(40, 20);
  log.add(110, 5);
  log.add(500, 0);  // nothing written
  auto m = log.merged();
  REQUIRE(m.size() == 2);
  CHECK(m[0].start == 0);
  CHECK(m[0].end == 60);
  CHECK(m[1].start == 100);
  CHECK(m[1].end == 115);
  CHECK_FALSE(log.all());
  log.mark_all();
  CHECK(log.all());
}

TEST_CASE("ranges split at every multiple of the split size", "[bmap]") {
  auto r = split_block_ranges({{0, 1000, {}}, {1100, 1110, {}}, {1279, 1280, {}}}, 256);
  REQUIRE(r.size() == 7);
  CHECK((r[0].first == 0 && r[0].last == 255));
  CHECK((r[1].first == 256 && r[1].last == 511));
  CHECK((r[3].first == 768 && r[3].last == 1000));
  CHECK((r[4].first == 1100 && r[4].last == 1110));
  CHECK((r[5].first == 1279 && r[5].last == 1279));
  CHECK((r[6].first == 1280 && r[6].last == 1280));
  CHECK(split_block_ranges({{3, 9000, {}}}, 0).size() == 1);
}

TEST_CASE("the write log covers every byte Ext4Fs and FatFs change in an image", "[bmap]") {
  t::ScratchDir dir;
  t::FixtureImage img = t::make_fixture_image(dir / "base.img");
  clone(img.path, dir / "node.img");
  WriteLog log;
  write_node_files(img, dir / "node.img", log);
  REQUIRE_FALSE(log.all());
  auto written = log.merged();
  REQUIRE_FALSE(written.empty());

  // Every 4 KiB block that differs between the base and the node lies in a recorded range.
  std::string before = t::read_text(img.path), after = t::read_text(dir / "node.img");
  REQUIRE(before.size() == after.size());
  size_t changed = 0, uncovered = 0;
  for (size_t pos = 0; pos < before.size(); pos += kBmapBlockSize) {
    size_t n = std::min<size_t>(kBmapBlockSize, before.size() - pos);
    if (before.compare(pos, n, after, pos, n) == 0) continue;
    ++changed;
    bool covered = false;
    for (const ByteRange& r : written) covered = covered || (r.start < pos + n && pos < r.end);
    if (!covered) {
      ++uncovered;
      UNSCOPED_INFO("block at byte " << pos << " changed but is not in the write log");
    }
  }
  CHECK(changed > 700);  // the 3 MiB file alone is 769 blocks
  CHECK(uncovered == 0);
  // The log is a short list, not "everything": the node's map takes most hashes from the base.
  uint64_t logged = 0;
  for (const ByteRange& r : written) logged += r.end - r.start;
  CHECK(logged < before.size() / 4);
}

TEST_CASE("a node's block map with the base's hashes equals one that hashes everything", "[bmap]") {
  t::ScratchDir dir;
  t::FixtureImage img = t::make_fixture_image(dir / "base.img");
  const Bmap base = make_bmap(img.path, kBmapSplitBlocks);
  clone(img.path, dir / "node.img");
  WriteLog log;
  write_node_files(img, dir / "node.img", log);

  BmapReuse reuse{&base, log.merged(), false};
  BmapWork work;
  const Bmap node = make_bmap(dir / "node.img", kBmapSplitBlocks, &reuse, &work);
  BmapWork full_work;
  const Bmap full = make_bmap(dir / "node.img", kBmapSplitBlocks, nullptr, &full_work);
  REQUIRE(node.ranges.size() == full.ranges.size());
  for (size_t i = 0; i < full.ranges.size(); ++i) {
    INFO("range " << full.ranges[i].first << "-" << full.ranges[i].last);
    CHECK(node.ranges[i].first == full.ranges[i].first);
    CHECK(node.ranges[i].last == full.ranges[i].last);
    CHECK(node.ranges[i].sha256 == full.ranges[i].sha256);
  }
  CHECK(render_bmap(node) == render_bmap(full));
  // Most of it came from the base, and what was hashed plus what was reused is all of it.
  CHECK(work.reused_bytes > 0);
  CHECK(work.hashed_bytes < full_work.hashed_bytes);
  CHECK(work.hashed_bytes + work.reused_bytes == full_work.hashed_bytes);
  CHECK(full_work.reused_bytes == 0);

  // Told that everything may have changed, or given a base of another size, it takes nothing.
  BmapReuse all{&base, {}, true};
  BmapWork all_work;
  CHECK(render_bmap(make_bmap(dir / "node.img", kBmapSplitBlocks, &all, &all_work)) == render_bmap(full));
  CHECK(all_work.reused_bytes == 0);
  Bmap other = base;
  other.image_size += kBmapBlockSize;
  BmapReuse resized{&other, {}, false};
  BmapWork resized_work;
  make_bmap(dir / "node.img", kBmapSplitBlocks, &resized, &resized_work);
  CHECK(resized_work.reused_bytes == 0);
}

TEST_CASE("a piece the log does not name keeps the base's hash, even when its bytes changed", "[bmap]") {
  // What the log is for, shown from the other side: the map trusts the log, so a write outside
  // it would give a wrong hash (which bmaptool copy and pibake flash then refuse).
  t::ScratchDir dir;
  t::FixtureImage img = t::make_fixture_image(dir / "base.img");
  const Bmap base = make_bmap(img.path, kBmapSplitBlocks);
  clone(img.path, dir / "node.img");
  {
    UniqueFd fd(open((dir / "node.img").c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(pwrite(fd.get(), "Z", 1, static_cast<off_t>(img.root_offset + 1024)) == 1);  // the ext4 superblock
  }
  BmapReuse unlogged{&base, {}, false};
  const Bmap stale = make_bmap(dir / "node.img", kBmapSplitBlocks, &unlogged);
  const Bmap full = make_bmap(dir / "node.img", kBmapSplitBlocks);
  CHECK(render_bmap(stale) != render_bmap(full));
  BmapReuse logged{&base, {{img.root_offset + 1024, img.root_offset + 1025}}, false};
  CHECK(render_bmap(make_bmap(dir / "node.img", kBmapSplitBlocks, &logged)) == render_bmap(full));
}

TEST_CASE("the base's block map is kept in the cache by the base's identity and a changed base is noticed",
          "[bmap]") {
  t::ScratchDir dir;
  t::FixtureImage img = t::make_fixture_image(dir / "base.img");
  const BaseBlockMap first = base_block_map(img.path, dir / "cache");
  CHECK(render_bmap(first.bmap) == render_bmap(make_bmap(img.path, kBmapSplitBlocks)));
  REQUIRE(t::count_files(dir / "cache/bmaps") == 1);
  // Kept: the second call reads the cache (a damaged cache file is made again, not trusted).
  const BaseBlockMap second = base_block_map(img.path, dir / "cache");
  CHECK(render_bmap(second.bmap) == render_bmap(first.bmap));
  CHECK_NOTHROW(check_base_unchanged(img.path, first));
  // Any write to the base: a new identity, so the old map no longer applies.
  {
    UniqueFd fd(open(img.path.c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(pwrite(fd.get(), "Z", 1, static_cast<off_t>(img.root_offset + 8192)) == 1);
  }
  CHECK_THROWS_WITH(check_base_unchanged(img.path, first), Catch::Contains("changed while pibake was reading it"));
  const BaseBlockMap third = base_block_map(img.path, dir / "cache");
  CHECK(third.identity != first.identity);
  CHECK(render_bmap(third.bmap) == render_bmap(make_bmap(img.path, kBmapSplitBlocks)));
  CHECK(t::count_files(dir / "cache/bmaps") == 2);
}
