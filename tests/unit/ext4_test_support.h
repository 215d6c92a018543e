// Fixtures shared by the tests of the libext2fs wrapper (ext4_test.cpp, ext4_inode_test.cpp,
// ext4_path_test.cpp): disk images to edit and the readers that check them with tools sharing no
// code path with pibake's (e2fsck -fn, debugfs, dumpe2fs).
#pragma once

#include <malloc.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "image/ext4.h"
#include "test_support.h"

// The ext4 test files say `using namespace pibake::test::ext4;` and get these names too.
namespace pibake::test::ext4 {

namespace stdfs = std::filesystem;
using Catch::Matchers::Contains;
using pibake::Ext4Fs;
using pibake::Ownership;
using pibake::test::EnvVar;
using pibake::test::random_bytes;
using pibake::test::sha256;

inline constexpr uint64_t kMiB = 1024 * 1024;

// A fixture disk image in its own scratch directory; `spec` names the ext4 partition the way
// e2fsck and debugfs take it ("disk.img?offset=N").
struct Disk {
  ScratchDir dir;
  FixtureImage img;
  std::string spec;

  explicit Disk(const FixtureOptions& opts = {}) {
    img = make_fixture_image(dir / "disk.img", opts);
    spec = img.path + "?offset=" + std::to_string(img.root_offset);
  }
  Ext4Fs open(bool writable = true) const { return Ext4Fs(img.path, img.root_offset, writable); }
};

// A bare filesystem made by mke2fs on a plain file (offset 0), for layouts the fixture lacks.
struct PlainFs {
  ScratchDir dir;
  std::string path;

  PlainFs(const std::vector<std::string>& mke2fs_args, const std::string& size) {
    path = dir / "fs.img";
    std::vector<std::string> argv = {"mke2fs", "-q", "-F"};
    argv.insert(argv.end(), mke2fs_args.begin(), mke2fs_args.end());
    argv.insert(argv.end(), {path, size});
    must_run(argv);
  }
};

inline void require_fsck_clean(const std::string& spec) { must_run({"e2fsck", "-fn", spec}); }

// debugfs prints its banner on stderr, which run_tool merges in front of the output.
inline std::string debugfs(const std::string& spec, const std::string& command) {
  std::string out = must_run({"debugfs", "-R", command, spec});
  if (out.rfind("debugfs ", 0) == 0) out.erase(0, out.find('\n') + 1);
  return out;
}

// Byte-exact content of `path` as debugfs reads it (dump, not cat, to keep binary data intact).
inline std::string debugfs_content(const std::string& spec, const std::string& path) {
  ScratchDir out_dir;
  std::string out = out_dir / "dump";
  std::string log = debugfs(spec, "dump " + path + " " + out);
  INFO("debugfs dump " << path << ": " << log);
  REQUIRE(std::filesystem::exists(out));
  return read_text(out);
}

// debugfs 1.47.0 dumps an inline-data file's whole inline area (60 bytes and more), not i_size
// bytes; cut it to the size `stat` reports.
inline std::string debugfs_inline_content(const std::string& spec, const std::string& path) {
  std::string st = debugfs(spec, "stat " + path);
  auto pos = st.find("Size: ");
  REQUIRE(pos != std::string::npos);
  return debugfs_content(spec, path).substr(0, std::stoull(st.substr(pos + 6)));
}

// "./" n times: pads a symlink target past the 60 bytes of a fast symlink without changing
// where it leads.
inline std::string dot_slashes(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "./";
  return s;
}

inline uint64_t dumpe2fs_free_blocks(const std::string& spec) {
  std::string out = must_run({"dumpe2fs", "-h", spec});
  auto pos = out.find("Free blocks:");
  REQUIRE(pos != std::string::npos);
  return std::stoull(out.substr(pos + 12));
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

}  // namespace pibake::test::ext4
