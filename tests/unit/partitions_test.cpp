// Partition tables (libfdisk), sparse copies and root growth, checked with sfdisk, du and e2fsck.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "image/ext4.h"
#include "image/grow.h"
#include "image/partitions.h"
#include "image/sparse_copy.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

using namespace pibake;
using namespace pibake::test;

TEST_CASE("an Ubuntu-shaped MBR image reads as p1 FAT and p2 Linux at sfdisk's offsets", "[partitions]") {
  ScratchDir dir;
  FixtureImage img = make_fixture_image(dir / "base.img");
  PartitionTable t = read_partition_table(img.path);
  CHECK(t.label == "dos");
  CHECK(t.sector_size == 512);
  REQUIRE(t.partitions.size() == 2);
  CHECK(t.partitions[0].number == 1);
  CHECK(t.partitions[0].type == "c");
  CHECK(t.partitions[0].is_fat_type());
  CHECK(t.partitions[0].bootable);
  CHECK(t.partitions[0].start == img.boot_offset);
  CHECK(t.partitions[0].size == img.boot_size);
  CHECK(t.partitions[1].type == "83");
  CHECK(t.partitions[1].is_linux_type());
  CHECK(t.partitions[1].start == img.root_offset);
  CHECK(t.partitions[1].size == img.root_size);
}

TEST_CASE("a GPT image reads its partitions and types", "[partitions]") {
  ScratchDir dir;
  std::string img = dir / "gpt.img";
  must_run({"truncate", "-s", "64M", img});
  must_run({"sfdisk", "-q", img},
           "label: gpt\nstart=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
           "start=34816, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"writable\"\n");
  PartitionTable t = read_partition_table(img);
  CHECK(t.label == "gpt");
  REQUIRE(t.partitions.size() == 2);
  CHECK(t.partitions[0].is_fat_type());
  CHECK(t.partitions[1].is_linux_type());
  CHECK(t.partitions[1].name == "writable");
  CHECK(t.partitions[1].start == 34816ull * 512);
}

TEST_CASE("a file without a partition table or a truncated image is a clear error", "[partitions]") {
  ScratchDir dir;
  std::string blank = dir / "blank.img";
  must_run({"truncate", "-s", "8M", blank});
  CHECK_THROWS_WITH(read_partition_table(blank), Catch::Contains("no partition table found"));
  FixtureImage img = make_fixture_image(dir / "base.img");
  must_run({"truncate", "-s", "100M", img.path});
  CHECK_THROWS_WITH(read_partition_table(img.path), Catch::Contains("truncated image"));
}

TEST_CASE("a sparse copy is byte-identical and keeps the holes", "[partitions]") {
  ScratchDir dir;
  FixtureImage img = make_fixture_image(dir / "base.img");
  std::string copy = dir / "copy.img";
  // One thread, or the data shared out between several (regenerating one node uses every core).
  const unsigned threads = GENERATE(1u, 2u, 3u, 16u);
  INFO("threads: " << threads);
  int fd = open(copy.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  CopyStats stats = copy_sparse(img.path, fd, copy, threads);
  close(fd);
  CHECK(must_run({"cmp", img.path, copy}).empty());
  struct stat a {
  }, b{};
  REQUIRE(stat(img.path.c_str(), &a) == 0);
  REQUIRE(stat(copy.c_str(), &b) == 0);
  CHECK(a.st_size == b.st_size);
  // Allocated blocks: the copy is no larger than the source (holes stayed holes).
  CHECK(b.st_blocks <= a.st_blocks + 8);
  CHECK(b.st_blocks * 512 < b.st_size / 2);
  if (stats.method == CopyMethod::kSparseRanges) CHECK(stats.data_bytes < static_cast<uint64_t>(a.st_size) / 2);
}

TEST_CASE("growing the last partition extends the file, the table and ext4, fsck-clean", "[partitions]") {
  ScratchDir dir;
  FixtureImage img = make_fixture_image(dir / "base.img");
  PartitionTable before = read_partition_table(img.path);
  Partition grown = grow_root_partition(img.path, before.partitions[1], 50ull << 20);
  CHECK(grown.start == before.partitions[1].start);
  CHECK(grown.size >= before.partitions[1].size + (50ull << 20));
  CHECK(grown.size % (1 << 20) == 0);
  must_run({"sfdisk", "-V", img.path});
  std::string dump = must_run({"sfdisk", "-d", img.path});
  dump.erase(std::remove(dump.begin(), dump.end(), ' '), dump.end());
  CHECK(dump.find("size=" + std::to_string(grown.size / 512) + ",type=83") != std::string::npos);
  std::string fsarg = img.path + "?offset=" + std::to_string(grown.start);
  must_run({"e2fsck", "-fn", fsarg});
  {
    // 60 MiB did not fit in the 96 MiB fixture's free space before; now it does.
    Ext4Fs fs(img.path, grown.start, true);
    CHECK(fs.blocks_count() * fs.block_size() == grown.size);
    fs.write_file("/big", std::string(60u << 20, 'z'));
    fs.close();
  }
  must_run({"e2fsck", "-fn", fsarg});
}

TEST_CASE("growing a GPT image moves the backup table to the new end", "[partitions]") {
  ScratchDir dir;
  std::string img = dir / "gpt.img";
  must_run({"truncate", "-s", "64M", img});
  must_run({"sfdisk", "-q", img},
           "label: gpt\nstart=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
           "start=34816, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n");
  std::string fs = dir / "root.fs";
  must_run({"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", fs, "32M"});
  must_run({"dd", "if=" + fs, "of=" + img, "bs=512", "seek=34816", "conv=notrunc,sparse", "status=none"});
  Partition root = read_partition_table(img).partitions[1];
  Partition grown = grow_root_partition(img, root, 40ull << 20);
  CHECK(grown.size >= root.size + (40ull << 20));
  must_run({"sfdisk", "-V", img});
  must_run({"e2fsck", "-fn", img + "?offset=" + std::to_string(grown.start)});
}

TEST_CASE("growing refuses a partition that is not the last one", "[partitions]") {
  ScratchDir dir;
  FixtureImage img = make_fixture_image(dir / "base.img");
  PartitionTable t = read_partition_table(img.path);
  CHECK_THROWS_WITH(grow_partition(img.path, 1, t.partitions[0].end() + (1 << 20)),
                    Catch::Contains("not the last partition"));
}

TEST_CASE("an atomic file has no final name until committed and vanishes when abandoned", "[atomic]") {
  ScratchDir dir;
  std::string final_path = dir / "node-1.img";
  {
    AtomicFile out(final_path, 0600);
    REQUIRE(write(out.fd(), "abc", 3) == 3);
    CHECK(access(out.temp_path().c_str(), F_OK) == 0);
    CHECK(out.temp_path() == dir / ".node-1.img.tmp");
    CHECK(access(final_path.c_str(), F_OK) != 0);
  }
  CHECK(access((dir / ".node-1.img.tmp").c_str(), F_OK) != 0);
  CHECK(access(final_path.c_str(), F_OK) != 0);
  {
    AtomicFile out(final_path, 0600);
    REQUIRE(write(out.fd(), "abc", 3) == 3);
    out.commit();
  }
  CHECK(read_text(final_path) == "abc");
  struct stat st {};
  REQUIRE(stat(final_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(access((dir / ".node-1.img.tmp").c_str(), F_OK) != 0);
}
