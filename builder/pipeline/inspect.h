// `pibake inspect IMAGE`: the partition table, the node identity pibake recorded in the image
// (/etc/pibake/node.json), the files it wrote, and health checks, for people or (--json) scripts.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "image/partitions.h"

namespace pibake {

enum class CheckStatus { kPass, kFail, kSkipped };
const char* to_string(CheckStatus s);

struct HealthCheck {
  std::string name;  // "root filesystem consistent (e2fsck -fn)"
  CheckStatus status = CheckStatus::kSkipped;
  std::string detail;  // why it failed or was skipped; tool output on failure
};

struct InjectedFile {
  std::string fs, path, kind, mode;  // as recorded in node.json
  uint64_t size = 0;                 // kind "file" only
  std::string sha256;                // kind "file" only, and not for secrets
  bool secret = false;               // keys and kubeconfigs: node.json records no digest of them
};

struct InspectReport {
  std::string image;
  PartitionTable table;
  int boot_partition = 0;  // 0 when not found
  int root_partition = 0;
  // The base's release (/etc/os-release) and boot layout (config.txt, autoboot.txt), when found.
  std::string os_id, os_version_id, os_codename, os_pretty_name;
  std::string boot_layout;                   // BootLayout::describe()
  std::vector<std::string> cmdline_paths;    // BootLayout::cmdlines: the one that boots first
  std::string cmdline;                       // the first line of the command line that boots
  bool pibake_image = false;  // node.json found and parsed
  std::string pibake_version, cluster, domain, node, role, ip;
  bool gateway = false;
  std::vector<std::pair<std::string, std::string>> versions;  // {"kubernetes", "v1.31.2"}, …
  std::vector<InjectedFile> files;
  std::vector<HealthCheck> checks;

  bool healthy() const;  // no check failed (skipped ones are not failures, nor passes)
};

// Reads everything and runs every check; throws pibake::Error only when the file cannot be read
// or holds no partition table. Problems inside the image become failed checks.
InspectReport inspect_image(const std::string& path);

std::string format_report(const InspectReport& r);       // human-readable
std::string format_report_json(const InspectReport& r);  // one JSON object

// Prints the report; returns the exit status (1 when a health check failed).
int run_inspect(const std::string& image, bool json);

}  // namespace pibake
