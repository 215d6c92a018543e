// How a Raspberry Pi boots a card, read the way its firmware reads it: `config.txt` (with its
// conditional sections and `include`s) and `autoboot.txt` on the FAT boot partition. pibake
// needs one answer from it: which kernel command line file is the one that boots, so that the
// memory cgroup tokens land where the kernel reads them (Ubuntu 25.10+: `current/cmdline.txt`
// through `os_prefix=current/`; 24.04: `cmdline.txt` at the partition root). See docs/boot.md.
//
// Sources: Raspberry Pi documentation, config_txt/boot.adoc (`cmdline`, `kernel`, `os_prefix`
// and its viability test, `upstream_kernel`), config_txt/conditional.adoc (filters),
// config_txt/autoboot.adoc (`boot_partition`, `tryboot_a_b`), config_txt/what_is_config_txt.adoc
// (`include`); Ubuntu's pi-gadget (configs/resolute-arm64-server, configs/noble-arm64-server).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pibake {

// What the boot partition says about booting. Paths are absolute inside the FAT filesystem
// ("/current/cmdline.txt").
struct BootLayout {
  bool has_config_txt = false;   // config.txt exists (without it, every value is the default)
  bool tryboot_a_b = false;      // autoboot.txt: tryboot_a_b=1 (Ubuntu's A/B boot, "piboot-try")
  std::string os_prefix;         // the normal boot's effective prefix ("current/"; "" for none)
  std::string tryboot_os_prefix; // the [tryboot] boot's effective prefix, when it differs
  std::string kernel;            // the normal boot's kernel file ("/current/vmlinuz")
  // The normal boot's command line file: the one that boots. Always exists (resolve throws else).
  std::string cmdline;
  // Every command line file pibake edits: `cmdline` first, then the other existing files a boot
  // could read (the [tryboot] boot's, a model section's). No file that does not exist is listed.
  std::vector<std::string> cmdlines;
  // "A/B (autoboot.txt tryboot_a_b=1): os_prefix=current/, [tryboot] os_prefix=new/", or
  // "flat: cmdline.txt at the partition root"; for the build summary and `inspect`.
  std::string describe() const;
};

// Reads a file of the boot partition by absolute path; nullopt when it does not exist (or is a
// directory).
using BootFileReader = std::function<std::optional<std::string>(const std::string& path)>;
// Whether a file (not a directory) of the boot partition exists, by absolute path, without reading
// it: the kernel, which may be larger than pibake reads whole (image/read_limit.h), is only tested.
using BootFileExists = std::function<bool(const std::string& path)>;

// Works out the boot layout from `config.txt` and `autoboot.txt` as the firmware would for any
// board model: settings under [all] (and before any filter) apply to every boot; [tryboot]
// settings only to a tryboot boot; model, EDID, serial, GPIO and HDMI sections may apply to some
// boards, so the files they name are edited too when they exist; [none] never applies. `include
// FILE` is read in place (at most 4 levels). A prefix whose kernel is missing is ignored, as the
// firmware's viability test does; the kernel is tested with `exists`, never read. `read` reads
// config.txt, autoboot.txt, tryboot.txt, included files and command line files (and may throw;
// the error goes through). Throws pibake::Error when the normal boot's command line file does not
// exist (naming config.txt's settings and the file looked for), when autoboot.txt selects another
// boot partition than `boot_partition_number`, or on an include loop.
BootLayout resolve_boot_layout(const BootFileReader& read, const BootFileExists& exists, int boot_partition_number);

}  // namespace pibake
