// Rendering an inspect report: aligned text for people, one JSON object for scripts.
#include <fmt/format.h>

#include "pipeline/inspect.h"
#include "util/json.h"

namespace pibake {
namespace {

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

}  // namespace

std::string format_report(const InspectReport& r) {
  std::string out =
      fmt::format("image: {} ({}, {} partition table)\n", r.image, mib(r.table.image_size), r.table.label);
  out += fmt::format("  {:<4} {:>12} {:>12} {:>12}  {}\n", "part", "start", "size", "type", "use");
  for (const Partition& p : r.table.partitions) {
    std::string use = p.number == r.boot_partition ? "boot (FAT)" : p.number == r.root_partition ? "root (ext4)" : "";
    out += fmt::format("  p{:<3} {:>12} {:>12} {:>12}  {}\n", p.number, p.start, mib(p.size), p.type, use);
  }
  if (!r.boot_layout.empty()) {
    std::string os = r.os_pretty_name.empty() ? r.os_id + " " + r.os_version_id : r.os_pretty_name;
    out += fmt::format("release: {}{}\n", r.os_id.empty() && r.os_pretty_name.empty() ? "unknown (no /etc/os-release)" : os,
                       r.os_codename.empty() ? "" : " (" + r.os_codename + ")");
    out += fmt::format("boot: {}\n", r.boot_layout);
    out += fmt::format("kernel command line: {}\n", r.cmdline);
  }
  if (r.pibake_image) {
    out += fmt::format("node: {} ({}), {}{}, cluster {} ({}), written by pibake {}\n", r.node, r.ip, r.role,
                       r.gateway ? ", gateway" : "", r.cluster, r.domain, r.pibake_version);
    out += "versions:";
    for (const auto& [name, version] : r.versions) out += fmt::format(" {} {}", name, version.empty() ? "-" : version);
    out += fmt::format("\nfiles pibake wrote ({}):\n", r.files.size());
    for (const InjectedFile& f : r.files) {
      std::string size = f.kind == "file" ? fmt::format("{}", f.size) : f.kind;
      out += fmt::format("  {:<11} {:>10} {} {}\n", f.fs, size, f.mode, f.path);
    }
  } else {
    out += "not a pibake image (no /etc/pibake/node.json)\n";
  }
  out += "health:\n";
  for (const HealthCheck& c : r.checks) {
    out += fmt::format("  {:<7} {}{}\n", to_string(c.status), c.name, c.detail.empty() ? "" : ": " + c.detail);
  }
  out += r.healthy() ? "healthy\n" : "UNHEALTHY: a check failed\n";
  return out;
}

std::string format_report_json(const InspectReport& r) {
  std::string parts;
  for (const Partition& p : r.table.partitions) {
    if (!parts.empty()) parts += ", ";
    parts += fmt::format("{{\"number\": {}, \"start\": {}, \"size\": {}, \"type\": {}, \"bootable\": {}}}", p.number,
                         p.start, p.size, json_string(p.type), p.bootable ? "true" : "false");
  }
  std::string versions;
  for (const auto& [name, version] : r.versions) {
    versions += fmt::format("{}{}: {}", versions.empty() ? "" : ", ", json_string(name), json_string(version));
  }
  std::string files;
  for (const InjectedFile& f : r.files) {
    files += fmt::format("{}{{\"fs\": {}, \"path\": {}, \"kind\": {}, \"mode\": {}", files.empty() ? "" : ", ",
                         json_string(f.fs), json_string(f.path), json_string(f.kind), json_string(f.mode));
    if (f.kind == "file") files += fmt::format(", \"size\": {}, \"sha256\": {}", f.size, json_string(f.sha256));
    files += "}";
  }
  std::string checks;
  for (const HealthCheck& c : r.checks) {
    checks += fmt::format("{}{{\"name\": {}, \"status\": \"{}\", \"detail\": {}}}", checks.empty() ? "" : ", ",
                          json_string(c.name),
                          c.status == CheckStatus::kPass   ? "pass"
                          : c.status == CheckStatus::kFail ? "fail"
                                                           : "skipped",
                          json_string(c.detail));
  }
  std::string cmdlines;
  for (const std::string& c : r.cmdline_paths) cmdlines += (cmdlines.empty() ? "" : ", ") + json_string(c);
  std::string release = fmt::format(
      "{{\"id\": {}, \"version_id\": {}, \"version_codename\": {}, \"pretty_name\": {}}}", json_string(r.os_id),
      json_string(r.os_version_id), json_string(r.os_codename), json_string(r.os_pretty_name));
  std::string boot = fmt::format("{{\"layout\": {}, \"cmdline_files\": [{}], \"cmdline\": {}}}",
                                 json_string(r.boot_layout), cmdlines, json_string(r.cmdline));
  std::string node = "null";
  if (r.pibake_image) {
    node = fmt::format(
        "{{\"name\": {}, \"role\": {}, \"ip\": {}, \"gateway\": {}, \"cluster\": {}, \"domain\": {}, "
        "\"pibake_version\": {}}}",
        json_string(r.node), json_string(r.role), json_string(r.ip), r.gateway ? "true" : "false",
        json_string(r.cluster), json_string(r.domain), json_string(r.pibake_version));
  }
  return fmt::format(
      "{{\"image\": {}, \"image_size\": {}, \"table\": {{\"label\": {}, \"sector_size\": {}, \"partitions\": [{}]}}, "
      "\"boot_partition\": {}, \"root_partition\": {}, \"release\": {}, \"boot\": {}, \"pibake_image\": {}, "
      "\"node\": {}, \"versions\": {{{}}}, \"files\": [{}], \"checks\": [{}], \"healthy\": {}}}\n",
      json_string(r.image), r.table.image_size, json_string(r.table.label), r.table.sector_size, parts,
      r.boot_partition, r.root_partition, release, boot, r.pibake_image ? "true" : "false", node, versions, files, checks,
      r.healthy() ? "true" : "false");
}

}  // namespace pibake
