// The boot partition read as the Raspberry Pi firmware reads it (config.txt, autoboot.txt), and
// /etc/os-release: pure functions, fed with the files of Ubuntu's own gadget configs.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "plan/boot_config.h"
#include "plan/os_release.h"
#include "util/error.h"

using namespace pibake;
using Catch::Matchers::Contains;

namespace {

// A boot partition as a map of absolute path -> content. Reading a file of `unreadable` throws, as
// FatFs::read_file does for one larger than it reads whole; whether it exists can still be asked.
BootLayout layout_of(const std::map<std::string, std::string>& files, int boot_partition = 1,
                     const std::set<std::string>& unreadable = {}) {
  return resolve_boot_layout(
      [&](const std::string& path) -> std::optional<std::string> {
        if (unreadable.count(path) != 0) throw Error(path + ": too large to read");
        auto it = files.find(path);
        if (it == files.end()) return std::nullopt;
        return it->second;
      },
      [&](const std::string& path) { return files.count(path) != 0; }, boot_partition);
}

// canonical/pi-gadget configs/resolute-arm64-server/config.txt, the part that matters here.
const char* kResoluteConfig =
    "[all]\nos_prefix=current/\n\n[tryboot]\nos_prefix=new/\n\n[all]\narm_64bit=1\nkernel=vmlinuz\n"
    "cmdline=cmdline.txt\ninitramfs initrd.img followkernel\n\n[pi4]\nmax_framebuffers=2\narm_boost=1\n\n"
    "[cm4]\ndtoverlay=dwc2,dr_mode=host\n\n[all]\n";
// canonical/pi-gadget configs/noble-arm64-server/config.txt, the part that matters here.
const char* kNobleConfig =
    "[all]\nkernel=vmlinuz\ncmdline=cmdline.txt\ninitramfs initrd.img followkernel\n\n[pi4]\nmax_framebuffers=2\n"
    "arm_boost=1\n\n[all]\narm_64bit=1\n";
const char* kCmdline = "console=serial0,115200 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait fixrtc\n";

}  // namespace

TEST_CASE("Ubuntu 26.04's A/B layout boots current/cmdline.txt", "[boot_config]") {
  std::map<std::string, std::string> files{{"/config.txt", kResoluteConfig},
                                           {"/autoboot.txt", "[all]\ntryboot_a_b=1\n"},
                                           {"/current/vmlinuz", "k"},
                                           {"/current/cmdline.txt", kCmdline}};
  BootLayout l = layout_of(files);
  CHECK(l.tryboot_a_b);
  CHECK(l.os_prefix == "current/");
  CHECK(l.tryboot_os_prefix == "new/");
  CHECK(l.kernel == "/current/vmlinuz");
  CHECK(l.cmdline == "/current/cmdline.txt");
  CHECK(l.cmdlines == std::vector<std::string>{"/current/cmdline.txt"});
  CHECK(l.describe() ==
        "A/B (autoboot.txt tryboot_a_b=1): os_prefix=current/, [tryboot] os_prefix=new/; kernel command line "
        "/current/cmdline.txt");

  SECTION("a pending update in new/ is edited too") {
    files["/new/vmlinuz"] = "k2";
    files["/new/cmdline.txt"] = kCmdline;
    CHECK(layout_of(files).cmdlines == std::vector<std::string>{"/current/cmdline.txt", "/new/cmdline.txt"});
  }
  SECTION("a stray root cmdline.txt is not the one that boots, and is left alone") {
    files["/cmdline.txt"] = "stray\n";
    CHECK(layout_of(files).cmdlines == std::vector<std::string>{"/current/cmdline.txt"});
  }
  SECTION("without current/cmdline.txt the base is refused, naming what was looked for") {
    files.erase("/current/cmdline.txt");
    files["/cmdline.txt"] = kCmdline;  // never used instead: the firmware would not read it
    CHECK_THROWS_WITH(layout_of(files),
                      "system-boot has no kernel command line: config.txt name /current/cmdline.txt "
                      "(os_prefix=current/), which does not exist; pibake never creates a command line the "
                      "firmware would not read");
  }
  SECTION("the viability test asks only whether the kernel exists and never reads it") {
    files["/new/vmlinuz"] = "k2";
    files["/new/cmdline.txt"] = kCmdline;
    BootLayout big = layout_of(files, 1, {"/current/vmlinuz", "/new/vmlinuz"});
    CHECK(big.os_prefix == "current/");
    CHECK(big.cmdlines == std::vector<std::string>{"/current/cmdline.txt", "/new/cmdline.txt"});
  }
  SECTION("a prefix whose kernel is missing is ignored, as the firmware's viability test does") {
    files.erase("/current/vmlinuz");
    files["/cmdline.txt"] = kCmdline;
    BootLayout flat = layout_of(files);
    CHECK(flat.os_prefix.empty());
    CHECK(flat.cmdline == "/cmdline.txt");
  }
  SECTION("autoboot.txt naming another boot partition is refused") {
    files["/autoboot.txt"] = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n";
    CHECK_THROWS_WITH(layout_of(files), Contains("sets boot_partition=2"));
    CHECK(layout_of(files, 2).cmdline == "/current/cmdline.txt");
  }
}

TEST_CASE("Ubuntu 24.04's flat layout boots the root cmdline.txt", "[boot_config]") {
  BootLayout l = layout_of({{"/config.txt", kNobleConfig}, {"/vmlinuz", "k"}, {"/cmdline.txt", kCmdline}});
  CHECK_FALSE(l.tryboot_a_b);
  CHECK(l.os_prefix.empty());
  CHECK(l.cmdline == "/cmdline.txt");
  CHECK(l.cmdlines == std::vector<std::string>{"/cmdline.txt"});
  CHECK(l.describe() == "flat; kernel command line /cmdline.txt");
  // No config.txt at all: the firmware's defaults.
  CHECK(layout_of({{"/cmdline.txt", kCmdline}}).cmdline == "/cmdline.txt");
  CHECK_THROWS_WITH(layout_of({{"/config.txt", kNobleConfig}}),
                    Contains("config.txt name /cmdline.txt, which does not exist"));
  CHECK_THROWS_WITH(layout_of({}), Contains("no config.txt, so the firmware's defaults name /cmdline.txt"));
}

TEST_CASE("config.txt filters, cmdline=, absolute paths and include", "[boot_config]") {
  // A model section with its own command line: both files are edited when both exist.
  std::map<std::string, std::string> files{
      {"/config.txt", "cmdline=cmdline.txt\n[pi5]\ncmdline=pi5.txt\n[all]\n"},
      {"/cmdline.txt", kCmdline},
      {"/pi5.txt", kCmdline}};
  CHECK(layout_of(files).cmdlines == std::vector<std::string>{"/cmdline.txt", "/pi5.txt"});
  // [none] never applies; comments and blank lines are ignored; filter names are case-insensitive.
  files["/config.txt"] = "# cmdline=commented.txt\n[NONE]\ncmdline=never.txt\n[ALL]\ncmdline=cmdline.txt\n";
  files["/never.txt"] = kCmdline;
  CHECK(layout_of(files).cmdlines == std::vector<std::string>{"/cmdline.txt"});
  // An absolute path bypasses os_prefix; `include` is read in place (Ubuntu 20.04–22.04 style).
  files = {{"/config.txt", "os_prefix=a/\nkernel=vmlinuz\ninclude syscfg.txt\n"},
           {"/syscfg.txt", "cmdline=/shared.txt\n"},
           {"/a/vmlinuz", "k"},
           {"/shared.txt", kCmdline}};
  CHECK(layout_of(files).cmdline == "/shared.txt");
  files["/syscfg.txt"] = "include config.txt\n";
  CHECK_THROWS_WITH(layout_of(files), Contains("nested deeper than 4 levels"));
  // Includes that fan out (every level includes the next thirty times: 30^4 reads of a hostile
  // image's few KiB) stop at 1 MiB of text read, instead of running for minutes.
  files = {{"/cmdline.txt", kCmdline}};
  auto fan = [](const std::string& next) {
    std::string text;
    for (int i = 0; i < 30; ++i) text += "include " + next + "\n";
    return text;
  };
  files["/config.txt"] = fan("f1.txt");
  files["/f1.txt"] = fan("f2.txt");
  files["/f2.txt"] = fan("f3.txt");
  files["/f3.txt"] = fan("f4.txt");
  files["/f4.txt"] = "arm_64bit=1\n";
  CHECK_THROWS_WITH(layout_of(files), Contains("hold more than 1024 KiB of text, repeated includes counted"));
  // Without tryboot_a_b a tryboot boot reads tryboot.txt instead of config.txt.
  files = {{"/config.txt", "cmdline=cmdline.txt\n"},
           {"/tryboot.txt", "cmdline=try.txt\n"},
           {"/cmdline.txt", kCmdline},
           {"/try.txt", kCmdline}};
  CHECK(layout_of(files).cmdlines == std::vector<std::string>{"/cmdline.txt", "/try.txt"});
}

TEST_CASE("os-release is read as os-release(5) describes it", "[os_release]") {
  OsRelease os = parse_os_release(
      "PRETTY_NAME=\"Ubuntu 26.04 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"26.04\"\n# a comment\n\n"
      "VERSION_CODENAME=resolute\nID=ubuntu\nID_LIKE=debian\nHOME_URL='https://www.ubuntu.com/'\n");
  CHECK(os.id == "ubuntu");
  CHECK(os.version_id == "26.04");
  CHECK(os.version_codename == "resolute");
  CHECK(os.pretty_name == "Ubuntu 26.04 LTS");
  CHECK(os.describe() == "Ubuntu 26.04 LTS (ubuntu 26.04, resolute)");
  CHECK(parse_os_release("ID=\"a\\\"b\"\nnot an assignment\n").id == "a\"b");
  CHECK(parse_os_release("").describe() == "unknown (no /etc/os-release)");
}
