// Ext4Fs::list and Ext4Fs::remove_tree (what a booted base's identity reset needs), checked with
// e2fsck -fn and debugfs, which share no code path with pibake's.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "image/ext4.h"
#include "test_support.h"
#include "util/error.h"

namespace t = pibake::test;
using Catch::Matchers::Contains;
using pibake::Ext4Fs;

TEST_CASE("remove_tree removes whole directories and leaves a clean filesystem", "[ext4]") {
  t::ScratchDir dir;
  // A tree like a booted base's /var/lib/cloud: nested directories, files, a symlink, and one
  // directory big enough to need several blocks (and an htree index).
  std::string root = dir / "root";
  std::string cloud = root + "/var/lib/cloud";
  t::must_run({"mkdir", "-p", cloud + "/instances/i-1/sem", cloud + "/data", root + "/var/lib/keep", root + "/etc"});
  t::write_text(cloud + "/instances/i-1/user-data.txt", "#cloud-config\n");
  t::write_text(cloud + "/instances/i-1/sem/config_ssh", "done\n");
  t::write_text(cloud + "/data/instance-id", "i-1\n");
  t::write_text(root + "/var/lib/keep/file", "kept\n");
  t::write_text(root + "/etc/hostname", "ubuntu\n");
  t::must_run({"ln", "-s", "/var/lib/cloud/instances/i-1", cloud + "/instance"});
  t::must_run({"mkdir", "-p", cloud + "/instances/big"});
  for (int i = 0; i < 300; ++i) t::write_text(cloud + "/instances/big/entry-with-a-long-name-" + std::to_string(i), "x");
  t::FixtureOptions opts;
  opts.root_dir = root;
  t::FixtureImage img = t::make_fixture_image(dir / "disk.img", opts);
  const std::string spec = img.path + "?offset=" + std::to_string(img.root_offset);
  const std::string links_before = t::must_run({"debugfs", "-R", "stat /var/lib", spec});

  {
    Ext4Fs fs(img.path, img.root_offset, /*writable=*/true);
    CHECK(fs.list("/var/lib/cloud") == std::vector<std::string>{"data", "instance", "instances"});
    CHECK(fs.list("/var/lib/cloud/instance") == std::vector<std::string>{"sem", "user-data.txt"});  // followed
    CHECK_THROWS_WITH(fs.list("/etc/hostname"), Contains("it is not a directory"));
    CHECK(fs.remove_tree("/var/lib/cloud/instance"));  // the symlink only, not what it points to
    CHECK(fs.exists("/var/lib/cloud/instances/i-1/user-data.txt"));
    CHECK(fs.remove_tree("/var/lib/cloud"));
    CHECK_FALSE(fs.remove_tree("/var/lib/cloud"));
    CHECK_FALSE(fs.exists("/var/lib/cloud"));
    CHECK(fs.read_file("/var/lib/keep/file") == "kept\n");
    CHECK_THROWS_WITH(fs.remove_tree("/"), Contains("root directory"));
    fs.close();
  }
  t::must_run({"e2fsck", "-fn", spec});  // no orphaned inode, block or directory count
  std::string ls = t::must_run({"debugfs", "-R", "ls -p /var/lib", spec});
  CHECK(ls.find("/cloud/") == std::string::npos);
  CHECK(ls.find("/keep/") != std::string::npos);
  // /var/lib lost one subdirectory, so one link (the ".." of cloud).
  auto links = [](const std::string& stat) {
    auto at = stat.find("Links: ");
    REQUIRE(at != std::string::npos);
    return std::stoi(stat.substr(at + 7));
  };
  CHECK(links(t::must_run({"debugfs", "-R", "stat /var/lib", spec})) == links(links_before) - 1);
}

TEST_CASE("remove_tree refuses a directory that contains itself and a tree too deep, without recursing forever",
          "[ext4]") {
  t::ScratchDir dir;
  std::string root = dir / "root";
  std::string deep = root + "/var/lib/deep";
  for (int i = 0; i < 130; ++i) deep += "/d";
  t::must_run({"mkdir", "-p", root + "/var/lib/cloud/data", deep});
  t::FixtureOptions opts;
  opts.root_dir = root;
  t::FixtureImage img = t::make_fixture_image(dir / "disk.img", opts);
  const std::string spec = img.path + "?offset=" + std::to_string(img.root_offset);
  // A directory hard-linked into itself, as only a crafted image has it (debugfs link).
  t::must_run({"debugfs", "-w", "-R", "link /var/lib/cloud/data /var/lib/cloud/data/loop", spec});
  Ext4Fs fs(img.path, img.root_offset, /*writable=*/true);
  CHECK_THROWS_WITH(fs.remove_tree("/var/lib/cloud"), Contains("the directory contains itself"));
  CHECK_THROWS_WITH(fs.remove_tree("/var/lib/deep"), Contains("directories nested more than 128 deep"));
}
