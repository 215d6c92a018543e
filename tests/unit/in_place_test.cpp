// Regenerating an image in place (pipeline/in_place.h): the undo journal rolls an edit back
// exactly, also when cut short by a kill; the base's bytes and holes are put back; every byte the
// ext4 and FAT writers overwrite is journaled first; a record is believed only while the image
// and the base are the files it names.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "image/bmap.h"
#include "image/byte_range_set.h"
#include "image/ext4.h"
#include "image/fat.h"
#include "image/in_place_edit.h"
#include "image/sparse_copy.h"
#include "image/undo_journal.h"
#include "image/write_log.h"
#include "pipeline/in_place.h"
#include "test_support.h"
#include "util/error.h"
#include "util/files.h"
#include "util/unique_fd.h"

using namespace pibake;
namespace t = pibake::test;

namespace {

void put(const std::string& path, uint64_t offset, const std::string& data) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(offset)) == static_cast<ssize_t>(data.size()));
}

// Saves [offset, offset + data.size()) to `undo`, then writes `data` there, as the writers do.
void edit(UndoJournal& undo, const std::string& path, uint64_t offset, const std::string& data) {
  undo.save(offset, data.size());
  put(path, offset, data);
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_size);
}

// Whether byte `pos` of the file lies in a hole (SEEK_DATA skips past it).
bool in_hole(const std::string& path, uint64_t pos) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  off_t data = lseek(fd.get(), static_cast<off_t>(pos), SEEK_DATA);
  return data < 0 || static_cast<uint64_t>(data) > pos;
}

}  // namespace

TEST_CASE("a byte range set merges, cuts and walks its ranges", "[in-place]") {
  ByteRangeSet set;
  set.add(10, 20);
  set.add(30, 40);
  set.add(20, 25);  // touches [10, 20): merged
  set.add(5, 0);    // empty: nothing
  REQUIRE(set.ranges().size() == 2);
  CHECK(set.ranges().at(10) == 25);
  set.remove(12, 15);  // cuts [10, 25) in two
  set.remove(35, 100);
  std::vector<std::pair<uint64_t, uint64_t>> inside, outside;
  set.for_each_inside(0, 50, [&](uint64_t a, uint64_t b) { inside.emplace_back(a, b); });
  set.for_each_outside(11, 38, [&](uint64_t a, uint64_t b) { outside.emplace_back(a, b); });
  CHECK(inside == std::vector<std::pair<uint64_t, uint64_t>>{{10, 12}, {15, 25}, {30, 35}});
  CHECK(outside == std::vector<std::pair<uint64_t, uint64_t>>{{12, 15}, {25, 30}, {35, 38}});
  outside.clear();
  set.for_each_outside(16, 24, [&](uint64_t a, uint64_t b) { outside.emplace_back(a, b); });
  CHECK(outside.empty());
}

TEST_CASE("an undo journal rolls an edited image back byte for byte", "[in-place]") {
  t::ScratchDir dir;
  const std::string img = dir / "node.img", journal = dir / "node.undo";
  t::write_text(img, t::random_bytes((3 << 20) + 333, 7));
  const std::string before = t::sha256(img);
  UniqueFd fd(open(img.c_str(), O_RDONLY | O_CLOEXEC));
  {
    UndoJournal undo(fd.get(), file_size(img), journal);
    edit(undo, img, 100, std::string(5000, 'a'));
    edit(undo, img, 3000, std::string(10000, 'b'));      // overlaps the first: only the new part is saved
    edit(undo, img, 90, std::string(20, 'c'));           // reaches into it from before
    edit(undo, img, 700000, std::string(3 << 19, 'd'));  // 1.5 MiB: two records
    undo.save((3 << 20) + 300, 100);                     // clipped at the end of the image
    CHECK(undo.saved_bytes() == (13000 - 90) + (3 << 19) + 33);
    CHECK(t::sha256(img) != before);
  }
  struct stat st {};
  REQUIRE(stat(journal.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);  // it holds the image's bytes
  CHECK(roll_back_journal(img, journal) > 0);
  CHECK(t::sha256(img) == before);
  // Rolling back again changes nothing and writes nothing.
  CHECK(roll_back_journal(img, journal) == 0);
  CHECK(t::sha256(img) == before);
}

TEST_CASE("a journal cut short by a kill still rolls back what was overwritten", "[in-place]") {
  t::ScratchDir dir;
  const std::string img = dir / "node.img", journal = dir / "node.undo";
  t::write_text(img, t::random_bytes(3 << 20, 8));
  const std::string before = t::sha256(img);
  UniqueFd fd(open(img.c_str(), O_RDONLY | O_CLOEXEC));
  {
    UndoJournal undo(fd.get(), file_size(img), journal);
    edit(undo, img, 4096, std::string(8192, 'x'));
    edit(undo, img, (1 << 20) + 5, std::string(1 << 20, 'y'));  // two records: 1 MiB, then 5 bytes
    // The third is saved, then the process dies inside that record's write: its image bytes
    // were never written.
    undo.save(2 << 20, 70000);
  }
  REQUIRE(truncate(journal.c_str(), static_cast<off_t>(file_size(journal) - 1000)) == 0);
  roll_back_journal(img, journal);
  CHECK(t::sha256(img) == before);

  // Killed while the magic was being written: nothing was saved, so nothing was overwritten.
  t::write_text(dir / "short.undo", std::string("pibake-u"));
  CHECK(roll_back_journal(img, dir / "short.undo") == 0);
  // Not a journal, or a record outside the image: refused, the image untouched.
  t::write_text(dir / "other.undo", std::string("not a journal at all"));
  CHECK_THROWS_AS(roll_back_journal(img, dir / "other.undo"), Error);
  { UndoJournal magic_only(fd.get(), file_size(img), dir / "far.undo"); }
  std::string far = t::read_text(dir / "far.undo");  // + a record at byte 2^40
  far += std::string("\x00\x00\x00\x00\x00\x01\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00", 16) + std::string(16, 'z');
  t::write_text(dir / "far.undo", far);
  CHECK_THROWS_AS(roll_back_journal(img, dir / "far.undo"), Error);
  CHECK(t::sha256(img) == before);
  // A journal that exists already is never appended to.
  CHECK_THROWS_AS(UndoJournal(fd.get(), file_size(img), journal), Error);
}

namespace {

// A sparse base: data [0, 64 KiB), a hole up to 1 MiB, data [1 MiB, 1 MiB + 64 KiB), a hole to
// 2 MiB; and `img`, a sparse copy of it.
void make_sparse_pair(const std::string& base, const std::string& img) {
  {
    UniqueFd fd(open(base.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(ftruncate(fd.get(), 2 << 20) == 0);
  }
  put(base, 0, t::random_bytes(64 << 10, 1));
  put(base, 1 << 20, t::random_bytes(64 << 10, 2));
  REQUIRE(in_hole(base, 512 << 10));  // the scratch directory's filesystem keeps holes
  UniqueFd fd(open(img.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  copy_sparse(base, fd.get(), img);
}

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

TEST_CASE("an in-place edit puts back the base's bytes and holes where the previous edit wrote", "[in-place]") {
  t::ScratchDir dir;
  const std::string base = dir / "base.img", img = dir / "node.img";
  make_sparse_pair(base, img);
  // What an earlier build wrote: into data (unaligned), into a hole, across both.
  put(img, 1000, std::string(3000, 'p'));
  put(img, 300 << 10, std::string(10000, 'q'));
  put(img, (1 << 20) - 5000, std::string(9000, 'r'));
  const std::string edited = t::sha256(img);
  const std::vector<ByteRange> written{
      {1000, 4000}, {300 << 10, (300 << 10) + 10000}, {(1 << 20) - 5000, (1 << 20) + 4000}};

  UniqueFd base_fd(open(base.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd fd(open(img.c_str(), O_RDWR | O_CLOEXEC));
  {
    UndoJournal undo(fd.get(), file_size(img), dir / "node.undo");
    InPlaceEdit edit(fd.get(), img, base_fd.get(), base, written, undo);
    CHECK(edit.finish() > 0);
    // Saved (and written): the 4 KiB blocks that differed, not whole MiBs: 1 block of data at
    // 1000, the 3 blocks of the hole at 300 KiB, and across 1 MiB 2 hole blocks and 1 data block.
    CHECK(undo.saved_bytes() == 7 * 4096);
  }
  CHECK(t::sha256(img) == t::sha256(base));
  CHECK(in_hole(img, 300 << 10));  // punched again, as a fresh copy has it
  CHECK(in_hole(img, (1 << 20) - 4096));
  CHECK_FALSE(in_hole(img, 1000));
  // Blocks that already hold the base's bytes are left alone: a second pass writes nothing.
  {
    UndoJournal undo(fd.get(), file_size(img), dir / "again.undo");
    InPlaceEdit edit(fd.get(), img, base_fd.get(), base, {{0, 4096}}, undo);
    CHECK(edit.finish() == 0);
    CHECK(undo.saved_bytes() == 0);
  }
  // And the journal of the first pass takes the image back to what the earlier build left.
  roll_back_journal(img, dir / "node.undo");
  CHECK(t::sha256(img) == edited);
}

TEST_CASE("an in-place edit shows the writers the base and leaves out writes that change nothing", "[in-place]") {
  t::ScratchDir dir;
  const std::string base = dir / "base.img", img = dir / "node.img";
  make_sparse_pair(base, img);
  const std::string kept(8192, 'k');
  put(img, 8192, kept);                         // the previous edit wrote here ...
  put(img, 300 << 10, std::string(4096, 'z'));  // ... and here
  UniqueFd base_fd(open(base.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd fd(open(img.c_str(), O_RDWR | O_CLOEXEC));
  UndoJournal undo(fd.get(), file_size(img), dir / "node.undo");
  InPlaceEdit edit(fd.get(), img, base_fd.get(), base, {{8192, 16384}, {300 << 10, (300 << 10) + 4096}}, undo);

  // A read of pending bytes gives the base's, whatever the image holds.
  std::string got(16384, '\0'), from_base(16384, '\0');
  pread_exact(fd.get(), got.data(), got.size(), 4096, img);
  edit.patch_read(4096, got.data(), got.size());
  pread_exact(base_fd.get(), from_base.data(), from_base.size(), 4096, base);
  CHECK(got == from_base);

  // The same bytes written again: nothing written, nothing saved, no longer pending.
  std::string current(8192, '\0');
  pread_exact(fd.get(), current.data(), current.size(), 8192, img);
  size_t writes = 0;
  edit.write_changed(8192, bytes(kept), bytes(current), kept.size(), 4096,
                     [&](uint64_t, const uint8_t*, size_t) { ++writes; });
  CHECK(writes == 0);
  CHECK(undo.saved_bytes() == 0);
  got.assign(8192, '\0');
  pread_exact(fd.get(), got.data(), got.size(), 8192, img);
  edit.patch_read(8192, got.data(), got.size());
  CHECK(got == kept);  // no longer pending: the image's own bytes now

  // One block of two differs: that block alone is saved and written.
  std::string changed = kept;
  changed[5000] = 'X';
  std::vector<std::pair<uint64_t, size_t>> calls;
  edit.write_changed(8192, bytes(changed), bytes(current), changed.size(), 4096,
                     [&](uint64_t pos, const uint8_t*, size_t n) { calls.emplace_back(pos, n); });
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].first == 12288);
  CHECK(calls[0].second == 4096);
  CHECK(undo.saved_bytes() == 4096);

  // libext2fs zeroes a block it allocates, then writes its data: the zeros are not written, reads
  // give zeros meanwhile, and the data, the same as the image's, is then left out too.
  writes = 0;
  const std::string zero_block(4096, '\0');
  pread_exact(fd.get(), current.data(), 4096, 8192, img);
  edit.write_changed(8192, bytes(zero_block), bytes(current), 4096, 4096,
                     [&](uint64_t, const uint8_t*, size_t) { ++writes; });
  got.assign(4096, 'x');
  edit.patch_read(8192, got.data(), 4096);
  CHECK(got == zero_block);
  edit.write_changed(8192, bytes(kept), bytes(current), 4096, 4096,
                     [&](uint64_t, const uint8_t*, size_t) { ++writes; });
  CHECK(writes == 0);
  CHECK(undo.saved_bytes() == 4096);  // still only the one block above
  // Zeros written over a hole are written in the end, as a fresh build's write allocates them.
  REQUIRE(in_hole(img, 600 << 10));
  std::string hole_now(4096, '\0');
  edit.write_changed(600 << 10, bytes(zero_block), bytes(hole_now), 4096, 4096,
                     [&](uint64_t, const uint8_t*, size_t) { ++writes; });
  CHECK(writes == 0);

  // What was not written again is put back at the end: the 'z' block, in a hole of the base; and
  // the zeros due are written.
  edit.finish();
  CHECK(in_hole(img, 300 << 10));
  CHECK_FALSE(in_hole(img, 600 << 10));
  pread_exact(fd.get(), got.data(), 4096, 8192, img);
  CHECK(got == kept.substr(0, 4096));
}

TEST_CASE("every byte Ext4Fs and FatFs overwrite in place is saved to the undo journal first", "[in-place]") {
  t::ScratchDir dir;
  t::FixtureImage base = t::make_fixture_image(dir / "base.img");
  const std::string img = dir / "node.img";
  {
    UniqueFd fd(open(img.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    copy_sparse(base.path, fd.get(), img);
  }
  // A previous edit, with its record of what it wrote.
  WriteLog first;
  {
    Ext4Fs fs(img, base.root_offset, /*writable=*/true, "", &first);
    fs.mkdir_p("/etc/pibake/old");
    fs.write_file("/etc/pibake/old/big", std::string(1 << 20, 'o'));
    fs.write_file("/etc/hostname", "node-8\n");
    fs.close();
  }
  const std::string before = t::sha256(img);
  UniqueFd fd(open(img.c_str(), O_RDWR | O_CLOEXEC));
  UniqueFd base_fd(open(base.path.c_str(), O_RDONLY | O_CLOEXEC));
  {
    UndoJournal undo(fd.get(), file_size(img), dir / "node.undo");
    InPlaceEdit edit(fd.get(), img, base_fd.get(), base.path, first.merged(), undo);
    WriteLog log;
    log.set_edit(&edit);
    {
      Ext4Fs fs(img, base.root_offset, /*writable=*/true, "", &log);
      CHECK_FALSE(fs.exists("/etc/pibake/old"));  // the writers see the base
      fs.mkdir_p("/etc/pibake/deep");
      fs.write_file("/etc/hostname", "node-9\n");
      fs.write_file("/etc/pibake/deep/big", std::string(2 << 20, 'x'));
      fs.write_file("/etc/pibake/deep/big", "now small");
      fs.symlink("/etc/pibake/link", "/etc/hostname");
      fs.close();
    }
    FatFs fat(img, base.boot_offset, base.boot_size, /*writable=*/true, "", &log);
    fat.write_file("/user-data", std::string(30000, 'u'));
    fat.close();
    log.set_edit(nullptr);
    edit.finish();
    CHECK(undo.saved_bytes() > 0);
  }
  REQUIRE(t::sha256(img) != before);
  // The rollback gives back the previous edit's image exactly.
  roll_back_journal(img, dir / "node.undo");
  CHECK(t::sha256(img) == before);
}

TEST_CASE("a written-ranges record holds only while the image and the base are unchanged", "[in-place]") {
  t::ScratchDir dir;
  const std::string img = dir / "node-3.img";
  t::write_text(img, std::string(10000, 'i'));
  const std::vector<ByteRange> ranges{{0, 100}, {4096, 8192}};
  write_written_record(img, "base-identity 1", ranges);
  CHECK(written_record_path(img) == dir / ".node-3.img.ranges");
  struct stat st {};
  REQUIRE(stat(written_record_path(img).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto rec = read_written_record(img, "base-identity 1");
  REQUIRE(rec);
  REQUIRE(rec->ranges.size() == 2);
  CHECK((rec->ranges[1].start == 4096 && rec->ranges[1].end == 8192));
  CHECK_FALSE(read_written_record(img, "another base"));

  SECTION("the image written to since") {
    put(img, 5, "w");
    CHECK_FALSE(read_written_record(img, "base-identity 1"));
  }
  SECTION("the image given a second name (editing it would change the other)") {
    REQUIRE(link(img.c_str(), (dir / "copy.img").c_str()) == 0);
    CHECK_FALSE(read_written_record(img, "base-identity 1"));
  }
  SECTION("its times set back after a change") {
    struct stat image_st {};
    REQUIRE(stat(img.c_str(), &image_st) == 0);
    put(img, 5, "w");
    const struct timespec times[2] = {image_st.st_atim, image_st.st_mtim};
    REQUIRE(utimensat(AT_FDCWD, img.c_str(), times, 0) == 0);  // mtime exactly as recorded ...
    struct stat now {};
    REQUIRE(stat(img.c_str(), &now) == 0);
    CHECK(file_content_identity(now) == file_content_identity(image_st));
    CHECK_FALSE(read_written_record(img, "base-identity 1"));  // ... but the ctime moved
  }
  SECTION("a record cut short, or naming bytes outside the image") {
    std::string text = t::read_text(written_record_path(img));
    t::write_text(written_record_path(img), text.substr(0, text.size() - 4));
    CHECK_FALSE(read_written_record(img, "base-identity 1"));
    write_written_record(img, "base-identity 1", {{0, 10001}});
    CHECK_FALSE(read_written_record(img, "base-identity 1"));
  }
  SECTION("no image") {
    REQUIRE(unlink(img.c_str()) == 0);
    CHECK_FALSE(read_written_record(img, "base-identity 1"));
  }
}
