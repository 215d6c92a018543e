// The Raspberry Pi firmware's reading of config.txt and autoboot.txt (see boot_config.h).
#include "plan/boot_config.h"

#include <algorithm>
#include <sstream>

#include "util/error.h"
#include "util/text.h"

namespace pibake {
namespace {

constexpr int kMaxIncludeDepth = 4;
// The most text (bytes) one boot configuration may read, includes and repeated includes counted
// each time: Ubuntu's config.txt and its includes hold a few KiB, and a file included many times
// at every level would otherwise be read hundreds of thousands of times (a hostile image).
constexpr size_t kMaxConfigTextBytes = size_t{1} << 20;

// Which boots a line of config.txt applies to, from the conditional filters above it.
enum class Applies {
  kEvery,    // before any filter, or after [all]
  kTryboot,  // [tryboot]: only when the tryboot flag is set
  kSome,     // a model, EDID, serial, GPIO or HDMI filter: some boards or set-ups
  kNever,    // [none]
};

struct Setting {
  std::string key, value;
  Applies applies = Applies::kEvery;
  int section = 0;  // which filtered section (for kSome): settings of one section go together
};

std::string trim(std::string s) {
  auto notspace = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), notspace));
  s.erase(std::find_if(s.rbegin(), s.rend(), notspace).base(), s.end());
  return s;
}

// Appends the settings of `path` (and of the files it includes) to `out`, tracking filters.
// `budget`: bytes of text still allowed (kMaxConfigTextBytes for one configuration).
void read_settings(const BootFileReader& read, const std::string& path, int depth, Applies& applies, int& section,
                   std::vector<Setting>& out, size_t& budget) {
  if (depth > kMaxIncludeDepth) throw Error("config.txt: includes nested deeper than 4 levels at " + path);
  std::optional<std::string> text = read(path);
  if (!text) return;  // a missing include is skipped, as the firmware does
  if (text->size() > budget) {
    throw Error(path + ": the boot configuration and its includes hold more than " +
                std::to_string(kMaxConfigTextBytes >> 10) + " KiB of text, repeated includes counted each time");
  }
  budget -= text->size();
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string filter = ascii_lower(line.substr(1, line.size() - 2));
      if (filter == "all") {
        applies = Applies::kEvery;
      } else if (filter == "none") {
        applies = Applies::kNever;
      } else if (applies != Applies::kNever) {
        // Filters of different types combine (AND): once a section is for some boards or for
        // tryboot, a further filter narrows it but never widens it.
        if (filter == "tryboot") {
          if (applies == Applies::kEvery) applies = Applies::kTryboot;
        } else {
          applies = Applies::kSome;
          ++section;
        }
      }
      continue;
    }
    if (line.rfind("include", 0) == 0 && line.size() > 7 && std::isspace(static_cast<unsigned char>(line[7]))) {
      std::string file = trim(line.substr(8));
      read_settings(read, file.front() == '/' ? file : "/" + file, depth + 1, applies, section, out, budget);
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;  // `initramfs FILE ADDR` and the like
    out.push_back({ascii_lower(trim(line.substr(0, eq))), trim(line.substr(eq + 1)), applies, section});
  }
}

struct Boot {
  std::string os_prefix, kernel, cmdline;  // absolute paths for kernel and cmdline
  std::string configured_prefix;           // os_prefix as config.txt sets it
  std::string prefix_note;                 // why os_prefix was ignored, if it was
};

// The firmware's effective values for one kind of boot. `tryboot`: the tryboot flag is set;
// `section` > 0: the filtered section of that number applies too (a particular board). `exists`
// tests the kernel for the os_prefix viability test.
Boot evaluate(const std::vector<Setting>& settings, bool tryboot, int section, const BootFileExists& exists) {
  std::optional<std::string> os_prefix, kernel;
  std::string cmdline = "cmdline.txt";
  bool arm_64bit = false, upstream = false;
  for (const Setting& s : settings) {
    bool on = s.applies == Applies::kEvery || (s.applies == Applies::kTryboot && tryboot) ||
              (s.applies == Applies::kSome && s.section == section);
    if (!on) continue;
    if (s.key == "os_prefix") os_prefix = s.value;
    if (s.key == "kernel") kernel = s.value;
    if (s.key == "cmdline") cmdline = s.value;
    if (s.key == "arm_64bit") arm_64bit = s.value != "0";
    if (s.key == "upstream_kernel") upstream = s.value != "0";
  }
  if (!os_prefix && upstream) os_prefix = "upstream/";
  if (!kernel && arm_64bit) kernel = "kernel8.img";
  Boot boot;
  boot.os_prefix = boot.configured_prefix = os_prefix.value_or("");
  auto place = [&](const std::string& file) { return file.front() == '/' ? file : "/" + boot.os_prefix + file; };
  // The viability test: unless the kernel exists under the prefix, the prefix is ignored. Only
  // tested, never read: a kernel may be larger than pibake reads whole (image/read_limit.h).
  if (!boot.os_prefix.empty() && kernel && kernel->front() != '/' && !exists(place(*kernel))) {
    boot.prefix_note = "os_prefix=" + boot.os_prefix + " ignored: " + place(*kernel) + " does not exist";
    boot.os_prefix.clear();
  }
  boot.kernel = kernel ? place(*kernel) : "";
  boot.cmdline = place(cmdline.empty() ? "cmdline.txt" : cmdline);
  return boot;
}

// autoboot.txt: [all]/[none]/[tryboot] and two keys (autoboot.adoc).
void read_autoboot(const BootFileReader& read, int boot_partition_number, BootLayout& layout) {
  std::vector<Setting> settings;
  Applies applies = Applies::kEvery;
  int section = 0;
  size_t budget = kMaxConfigTextBytes;
  read_settings(read, "/autoboot.txt", kMaxIncludeDepth, applies, section, settings, budget);
  for (const Setting& s : settings) {
    if (s.applies != Applies::kEvery) continue;
    if (s.key == "tryboot_a_b") layout.tryboot_a_b = s.value == "1";
    if (s.key == "boot_partition" && s.value != "0" && s.value != std::to_string(boot_partition_number)) {
      throw Error("autoboot.txt on system-boot sets boot_partition=" + s.value +
                  ": the card would boot from another partition than system-boot (p" +
                  std::to_string(boot_partition_number) + "), which pibake does not edit");
    }
  }
}

}  // namespace

std::string BootLayout::describe() const {
  std::string out;
  if (tryboot_a_b) {
    out = "A/B (autoboot.txt tryboot_a_b=1): os_prefix=" + (os_prefix.empty() ? "\"\"" : os_prefix);
    if (!tryboot_os_prefix.empty()) out += ", [tryboot] os_prefix=" + tryboot_os_prefix;
  } else {
    out = os_prefix.empty() ? "flat" : "os_prefix=" + os_prefix;
  }
  out += "; kernel command line " + cmdline;
  for (size_t i = 1; i < cmdlines.size(); ++i) out += (i == 1 ? " (also " : ", ") + cmdlines[i];
  if (cmdlines.size() > 1) out += ")";
  return out;
}

BootLayout resolve_boot_layout(const BootFileReader& read, const BootFileExists& exists, int boot_partition_number) {
  BootLayout layout;
  layout.has_config_txt = read("/config.txt").has_value();
  read_autoboot(read, boot_partition_number, layout);

  std::vector<Setting> settings;
  Applies applies = Applies::kEvery;
  int sections = 0;
  size_t budget = kMaxConfigTextBytes;
  read_settings(read, "/config.txt", 0, applies, sections, settings, budget);
  Boot normal = evaluate(settings, /*tryboot=*/false, 0, exists);
  layout.os_prefix = normal.os_prefix;
  layout.kernel = normal.kernel;
  layout.cmdline = normal.cmdline;
  if (!read(normal.cmdline)) {
    std::string why = layout.has_config_txt ? "config.txt" : "no config.txt, so the firmware's defaults";
    throw Error("system-boot has no kernel command line: " + why + " name " + normal.cmdline +
                (normal.os_prefix.empty() ? "" : " (os_prefix=" + normal.os_prefix + ")") +
                (normal.prefix_note.empty() ? "" : " (" + normal.prefix_note + ")") +
                ", which does not exist; pibake never creates a command line the firmware would not read");
  }
  layout.cmdlines.push_back(normal.cmdline);
  auto also = [&](const std::string& path) {
    if (std::find(layout.cmdlines.begin(), layout.cmdlines.end(), path) == layout.cmdlines.end() && read(path)) {
      layout.cmdlines.push_back(path);
    }
  };
  // A tryboot boot reads config.txt again with tryboot_a_b=1, else tryboot.txt (autoboot.adoc).
  std::vector<Setting> tryboot_settings;
  if (layout.tryboot_a_b) {
    tryboot_settings = settings;
  } else {
    Applies a = Applies::kEvery;
    int s = 0;
    size_t tryboot_budget = kMaxConfigTextBytes;
    read_settings(read, "/tryboot.txt", 0, a, s, tryboot_settings, tryboot_budget);
  }
  if (!tryboot_settings.empty()) {
    Boot tryboot = evaluate(tryboot_settings, /*tryboot=*/true, 0, exists);
    if (tryboot.configured_prefix != normal.configured_prefix) layout.tryboot_os_prefix = tryboot.configured_prefix;
    // Only a tryboot that has something to boot: Ubuntu's piboot-try writes new/ before it asks
    // for a tryboot, so a missing new/ is not a reason to edit a root cmdline.txt.
    if (tryboot.prefix_note.empty()) also(tryboot.cmdline);
  }
  for (int section = 1; section <= sections; ++section) {
    Boot board = evaluate(settings, false, section, exists);
    if (board.prefix_note.empty()) also(board.cmdline);
  }
  return layout;
}

}  // namespace pibake
