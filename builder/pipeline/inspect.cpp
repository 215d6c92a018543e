// Gathering an inspect report: table, node.json, read-back of every injected file, fsck runs.
#include "pipeline/inspect.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "codec/codec.h"
#include "image/bmap.h"
#include "image/ext4.h"
#include "image/fat.h"
#include "pipeline/base_image.h"
#include "pipeline/in_place.h"
#include "plan/plan.h"
#include "util/error.h"
#include "util/files.h"
#include "util/run.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

// Key material that must never leave the state dir except into the control plane (product.md).
constexpr const char* kCaKeys[] = {"/etc/kubernetes/pki/ca.key", "/etc/kubernetes/pki/sa.key",
                                   "/etc/kubernetes/pki/front-proxy-ca.key", "/etc/kubernetes/pki/etcd/ca.key"};

// A scratch copy of the boot partition: fsck.fat cannot be pointed at an offset inside a file.
class PartitionCopy {
 public:
  PartitionCopy(const std::string& image, const Partition& p) {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/pibake-inspect.XXXXXX";
    UniqueFd out(mkstemp(path_.data()));
    if (!out) throw Error("cannot create a scratch file in " + path_ + ": " + std::strerror(errno));
    UniqueFd in(open(image.c_str(), O_RDONLY | O_CLOEXEC));
    bool ok = in && ftruncate(out.get(), static_cast<off_t>(p.size)) == 0;
    // Only the data ranges: the holes of the copy read as the zeros they were.
    for (const ByteRange& r : ok ? data_ranges(in.get(), image) : std::vector<ByteRange>{}) {
      uint64_t s = std::max(r.start, p.start), e = std::min(r.end, p.end());
      for (loff_t from = static_cast<loff_t>(s), to = static_cast<loff_t>(s - p.start);
           ok && static_cast<uint64_t>(from) < e;) {
        ssize_t n = copy_file_range(in.get(), &from, out.get(), &to, e - static_cast<uint64_t>(from), 0);
        ok = n > 0;
      }
    }
    in.reset();
    out.reset();
    if (!ok) {
      unlink(path_.c_str());
      throw Error("cannot copy the boot partition of " + image + " into " + path_ + ": " + std::strerror(errno));
    }
  }
  ~PartitionCopy() { unlink(path_.c_str()); }
  PartitionCopy(const PartitionCopy&) = delete;
  PartitionCopy& operator=(const PartitionCopy&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs a checker; a missing tool is a skip, never a pass (docs/conventions.md, "Tests check with independent tools").
HealthCheck run_checker(const std::string& name, const std::vector<std::string>& argv) {
  HealthCheck c{name, CheckStatus::kSkipped, ""};
  if (find_program(argv[0]).empty()) {
    c.detail = "skipped: " + argv[0] + " is not installed";
    return c;
  }
  RunResult r = run_command(argv);
  c.status = r.exit_code == 0 ? CheckStatus::kPass : CheckStatus::kFail;
  if (r.exit_code != 0) c.detail = fmt::format("{} exited {}: {}", argv[0], r.exit_code, r.output);
  return c;
}

std::string text(const YAML::Node& n, const char* key) {
  return n[key] && n[key].IsScalar() ? n[key].as<std::string>() : "";
}

void read_identity(InspectReport& r, const std::string& json) {
  YAML::Node doc = YAML::Load(json);  // JSON is YAML
  r.pibake_version = text(doc, "pibake_version");
  r.cluster = text(doc, "cluster");
  r.domain = text(doc, "domain");
  r.node = text(doc, "node");
  r.role = text(doc, "role");
  r.ip = text(doc, "ip");
  r.gateway = doc["gateway"] && doc["gateway"].as<bool>();
  for (const auto& kv : doc) {
    std::string key = kv.first.as<std::string>();
    const std::string suffix = "_version";
    if (key != "pibake_version" && key.size() > suffix.size() &&
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
      r.versions.emplace_back(key.substr(0, key.size() - suffix.size()), kv.second.as<std::string>());
    }
  }
  for (const YAML::Node& f : doc["files"]) {
    InjectedFile file{text(f, "fs"), text(f, "path"), text(f, "kind"), text(f, "mode"), 0, text(f, "sha256")};
    if (f["size"]) file.size = f["size"].as<uint64_t>();
    file.secret = f["secret"] && f["secret"].as<bool>();
    r.files.push_back(std::move(file));
  }
}

// Every file node.json lists, read back and compared; `root_partition_bytes` bounds what a file on
// the root filesystem may claim. Returns the problems found.
std::vector<std::string> check_files(const InspectReport& r, const Ext4Fs& root, uint64_t root_partition_bytes,
                                     const FatFs* boot) {
  std::vector<std::string> problems;
  for (const InjectedFile& f : r.files) {
    std::string where = f.fs + ":" + f.path;
    try {
      bool on_root = f.fs == to_string(Fs::kRoot);
      if (!on_root && boot == nullptr) {
        problems.push_back(where + ": no boot filesystem to read it from");
        continue;
      }
      auto exists = [&] { return on_root ? root.exists(f.path) : boot->exists(f.path); };
      if (f.kind == "file") {
        if (!exists()) {
          problems.push_back(where + " is missing");
          continue;
        }
        // On the root filesystem the size comes from the inode first: a secret's size is all
        // node.json records of it (an etcd snapshot of up to 8 GiB is never read), and a file of
        // another size differs without being read (a hostile card's sparse file may claim
        // terabytes). Only a file of the recorded size, and no larger than its partition (a
        // card's node.json is as untrusted as its files), is hashed, as it streams, in constant
        // memory; the boot partition's files are small text (read_limit.h).
        uint64_t got = 0;
        std::string digest;
        if (on_root) {
          got = root.file_size(f.path);
          if (got > root_partition_bytes) {
            problems.push_back(fmt::format("{} claims {} bytes, more than its partition holds ({} bytes)", where, got,
                                           root_partition_bytes));
            continue;
          }
          if (!f.secret && got == f.size) {
            Sha256 hash;
            root.read_chunks(f.path, [&](std::string_view chunk) { hash.update(chunk); });
            digest = hash.hex_digest();
          }
        } else {
          std::string data = boot->read_file(f.path);
          got = data.size();
          digest = sha256_hex(data);
        }
        if (got != f.size || (!f.secret && digest != f.sha256)) {
          problems.push_back(
              fmt::format("{} differs from what pibake wrote ({} bytes, expected {})", where, got, f.size));
        }
      } else if (f.kind == "directory") {
        if (!(on_root ? root.is_directory(f.path) : boot->is_directory(f.path)))
          problems.push_back(where + " is not a directory");
      } else if (f.kind == "symlink" || f.kind == "cmdline-tokens") {
        if (!exists()) problems.push_back(where + " is missing");
      } else if (f.kind == "removed") {
        if (exists()) problems.push_back(where + " should have been removed");
      }
    } catch (const Error& e) {
      problems.push_back(where + ": " + e.what());
    }
  }
  return problems;
}

// The memory cgroup tokens on the first line of every command line the firmware may read; the
// one that boots is what matters (an edit elsewhere would be a command line nobody reads).
void check_cmdline(InspectReport& r, const FatFs* boot, const BootLayout& layout) {
  std::string name = "memory cgroup on the kernel command line that boots (" + layout.cmdline + ")";
  if (boot == nullptr) {
    r.checks.push_back({name, CheckStatus::kFail, "system-boot cannot be read"});
    return;
  }
  std::string missing;
  for (const std::string& path : layout.cmdlines) {
    if (!missing_cmdline_tokens(boot->read_file(path), kMemoryCgroupTokens).empty()) {
      missing += (missing.empty() ? "" : ", ") + path;
    }
  }
  r.checks.push_back({name, missing.empty() ? CheckStatus::kPass : CheckStatus::kFail,
                      missing.empty() ? "" : "cgroup_enable=memory cgroup_memory=1 missing from " + missing});
}

}  // namespace

const char* to_string(CheckStatus s) {
  return s == CheckStatus::kPass ? "pass" : s == CheckStatus::kFail ? "FAIL" : "skipped";
}

bool InspectReport::healthy() const {
  for (const HealthCheck& c : checks) {
    if (c.status == CheckStatus::kFail) return false;
  }
  return true;
}

InspectReport inspect_image(const std::string& path) {
  InspectReport r;
  r.image = path;
  require_not_mid_regenerate(path);
  require_regular_file(path, "image");
  r.table = read_partition_table(path);
  std::optional<BaseImage> layout;
  try {
    layout = inspect_base_image(path);
    r.boot_partition = layout->boot.number;
    r.root_partition = layout->root.number;
    r.checks.push_back({"Ubuntu raspi layout (FAT boot, ext4 root)", CheckStatus::kPass, ""});
  } catch (const Error& e) {
    r.checks.push_back({"Ubuntu raspi layout (FAT boot, ext4 root)", CheckStatus::kFail, e.what()});
  }
  // Filesystems consistent, checked by e2fsprogs and dosfstools rather than by pibake's own code.
  for (const Partition& p : r.table.partitions) {
    if (layout && p.number == layout->root.number) {
      r.checks.push_back(run_checker(fmt::format("p{} ext4 consistent (e2fsck -fn)", p.number),
                                     {"e2fsck", "-fn", fmt::format("{}?offset={}", path, p.start)}));
    } else if (layout && p.number == layout->boot.number) {
      std::string name = fmt::format("p{} FAT consistent (fsck.fat -n)", p.number);
      if (find_program("fsck.fat").empty()) {
        r.checks.push_back({name, CheckStatus::kSkipped, "skipped: fsck.fat is not installed"});
      } else {
        PartitionCopy copy(path, p);
        r.checks.push_back(run_checker(name, {"fsck.fat", "-n", copy.path()}));
      }
    }
  }
  if (!layout) return r;

  Ext4Fs root(path, layout->root.start, /*writable=*/false);
  std::unique_ptr<FatFs> boot;
  try {
    boot = std::make_unique<FatFs>(path, layout->boot.start, layout->boot.size, /*writable=*/false);
  } catch (const Error&) {
    // Reported by the file checks below when a boot file is listed.
  }
  r.os_id = layout->os.id;
  r.os_version_id = layout->os.version_id;
  r.os_codename = layout->os.version_codename;
  r.os_pretty_name = layout->os.pretty_name;
  r.boot_layout = layout->boot_layout.describe();
  r.cmdline_paths = layout->boot_layout.cmdlines;
  if (boot) {
    std::string text = boot->read_file(layout->boot_layout.cmdline);
    r.cmdline = text.substr(0, text.find('\n'));
  }
  if (!root.exists(kNodeIdentityPath)) return r;  // not a pibake image: nothing more to check
  try {
    // node.json is tens of KiB; 1 MiB bounds what yaml-cpp is given (its nodes take many times
    // the text's size in memory).
    read_identity(r, root.read_file(kNodeIdentityPath, kMaxNodeIdentityBytes));
    r.pibake_image = true;
  } catch (const std::exception& e) {
    r.checks.push_back({std::string(kNodeIdentityPath) + " readable", CheckStatus::kFail, e.what()});
    return r;
  }
  check_cmdline(r, boot.get(), layout->boot_layout);
  std::vector<std::string> problems = check_files(r, root, layout->root.size, boot.get());
  std::string joined;
  for (const std::string& p : problems) joined += (joined.empty() ? "" : "; ") + p;
  r.checks.push_back({fmt::format("{} files pibake wrote are present and unchanged", r.files.size()),
                      problems.empty() ? CheckStatus::kPass : CheckStatus::kFail, joined});
  if (r.role == "control-plane") {
    r.checks.push_back(
        {"no CA key on a worker", CheckStatus::kSkipped, "skipped: a control-plane node holds the CA keys"});
  } else {
    std::string found;
    for (const char* key : kCaKeys) {
      if (root.exists(key)) found += (found.empty() ? "" : ", ") + std::string(key);
    }
    r.checks.push_back({"no CA key on a worker", found.empty() ? CheckStatus::kPass : CheckStatus::kFail,
                        found.empty() ? "" : "worker image holds " + found});
  }
  return r;
}

int run_inspect(const std::string& image, bool json) {
  if (Compression c = compression_of(image); c != Compression::kNone) {
    std::string raw = image.substr(0, image.size() - std::string(suffix_of(c)).size());
    throw Error(image + " is compressed; inspect reads raw images: `pibake flash " + image + " " + raw +
                "` writes one (sparse, verified)");
  }
  InspectReport r = inspect_image(image);
  fmt::print("{}", json ? format_report_json(r) : format_report(r));
  return r.healthy() ? 0 : 1;
}

}  // namespace pibake
