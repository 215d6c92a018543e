// First-boot packages resolved with apt and fetched into the cache (see fetch_packages.h).
#include "pipeline/fetch_packages.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "plan/mirrors.h"
#include "util/error.h"
#include "util/files.h"
#include "util/resources.h"
#include "util/run.h"
#include "util/sha256.h"

namespace pibake {
namespace {

// The archive's components pibake reads: the first-boot packages are free software (main holds
// conntrack, iptables and socat; universe isc-dhcp-server).
constexpr const char* kComponents = "main universe";
constexpr const char* kArch = "arm64";

// A private apt setup in a temporary directory, the way mmdebstrap drives apt: its own sources,
// keys, lists and dpkg status (the base image's), nothing from the build machine's /etc/apt, no
// locks, no dpkg calls, run unprivileged. Removed with everything in it when destroyed.
class AptRoot {
 public:
  AptRoot(const ClusterSpec& spec, const PackageBase& base) {
    apt_get_ = find_program("apt-get");
    apt_cache_ = find_program("apt-cache");
    if (apt_get_.empty() || apt_cache_.empty()) {
      throw Error(
          "resolving the first-boot packages needs apt-get and apt-cache on this machine: install the package "
          "\"apt\" (Debian, Ubuntu), or run `pibake fetch` on a machine that has it and copy the cache and lock");
    }
    if (base.os.version_codename.empty()) {
      throw Error(
          "the base image's os-release names no VERSION_CODENAME: pibake cannot tell which release's "
          "packages to fetch (" +
          base.os.describe() + ")");
    }
    std::string tmpl =
        (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : std::string("/tmp")) + "/pibake-apt.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw Error("cannot create a temporary directory for apt: " + tmpl);
    dir_ = tmpl;
    namespace fs = std::filesystem;
    for (const char* d : {"etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d",
                          "state/lists/partial", "cache/archives/partial", "log", "keys"}) {
      fs::create_directories(dir_ + "/" + d);
    }
    write(dir_ + "/status", base.dpkg_status);
    // The Ubuntu archive keys pibake carries, then the spec's: binary keyrings as .gpg, armored
    // ones as .asc (apt tells them apart by the extension; apt-secure(8), sources.list(5)).
    std::vector<std::string> keyrings;
    keyrings.push_back(dir_ + "/keys/ubuntu-archive-keyring.gpg");
    write(keyrings.back(), std::string(resource(kUbuntuArchiveKeyring)));
    for (size_t i = 0; i < spec.packages.keyring.size(); ++i) {
      const std::string path = keyring_path(spec, i);
      std::string key;
      try {
        key = read_file(path, kMaxSmallFile);
      } catch (const Error& e) {
        throw Error(fmt::format("packages.keyring[{}]: {}", i, e.what()));
      }
      const bool armored = key.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") != std::string::npos;
      keyrings.push_back(fmt::format("{}/keys/extra-{}.{}", dir_, i, armored ? "asc" : "gpg"));
      write(keyrings.back(), key);
    }
    archive_ = apply_mirrors(spec.packages.archive, spec.mirrors);
    while (archive_.ends_with("/")) archive_.pop_back();
    if (is_local_source(archive_)) archive_ = "file:" + local_path(archive_);
    const std::string& suite = base.os.version_codename;
    std::string sources;
    for (const std::string& pocket : {suite, suite + "-updates", suite + "-security"}) {
      sources += fmt::format("deb [arch={} signed-by={}] {} {} {}\n", kArch, fmt::join(keyrings, ","), archive_, pocket,
                             kComponents);
    }
    write(dir_ + "/etc/sources.list", sources);
    std::string conf = fmt::format(
        "Dir \"/\";\n"
        "Dir::State \"{0}/state\";\n"
        "Dir::State::lists \"{0}/state/lists\";\n"
        "Dir::State::status \"{0}/status\";\n"
        "Dir::Cache \"{0}/cache\";\n"
        "Dir::Log \"{0}/log\";\n"
        "Dir::Etc \"{0}/etc\";\n"
        "Dir::Etc::sourcelist \"{0}/etc/sources.list\";\n"
        "Dir::Etc::sourceparts \"{0}/etc/sources.list.d\";\n"
        "Dir::Etc::parts \"{0}/etc/apt.conf.d\";\n"
        "Dir::Etc::main \"{0}/etc/apt.conf\";\n"
        "Dir::Etc::preferences \"{0}/etc/preferences\";\n"
        "Dir::Etc::preferencesparts \"{0}/etc/preferences.d\";\n"
        "Dir::Etc::trusted \"{0}/etc/trusted.gpg\";\n"
        "Dir::Etc::trustedparts \"{0}/etc/trusted.gpg.d\";\n"
        "APT::Architecture \"{1}\";\n"
        "APT::Architectures {{ \"{1}\"; }};\n"
        "APT::Install-Recommends \"false\";\n"
        "APT::Sandbox::User \"root\";\n"
        "Debug::NoLocking \"true\";\n"
        "Acquire::Languages \"none\";\n"
        "Acquire::Retries \"3\";\n",
        dir_, kArch);
    write(dir_ + "/apt.conf", conf);
  }
  ~AptRoot() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  AptRoot(const AptRoot&) = delete;
  AptRoot& operator=(const AptRoot&) = delete;

  const std::string& archive() const { return archive_; }

  // Runs apt-get (`get`) or apt-cache with `args` under this configuration; throws naming `what`
  // with apt's error lines when it fails.
  RunResult run_raw(bool get, const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"env", "APT_CONFIG=" + dir_ + "/apt.conf", "LC_ALL=C.UTF-8",
                                     get ? apt_get_ : apt_cache_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
  }
  std::string run(bool get, const std::vector<std::string>& args, const std::string& what) const {
    RunResult r = run_raw(get, args);
    if (r.exit_code != 0) throw Error(fmt::format("{} failed:\n{}", what, apt_messages(r.output)));
    return r.output;
  }

  // apt-get update: every InRelease checked against the keys, every index against its hashes.
  void update() const {
    run(true, {"update", "-q", "--error-on=any"},
        fmt::format("apt-get update of the package archive {} (its InRelease signatures and Packages indices)",
                    archive_));
  }

 private:
  static void write(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
    if (!out.flush()) throw Error("cannot write " + path);
  }
  // apt's own lines that say what went wrong (E:, W:, Err: and their indented details), or all of
  // it when there are none. The notice that an archive lacks a component pibake lists (a private
  // archive with main only) is left out.
  static std::string apt_messages(const std::string& output) {
    std::string out, line;
    std::istringstream in(output);
    while (std::getline(in, line)) {
      if (line.find("Skipping acquire of configured file") != std::string::npos) continue;
      if (line.starts_with("E:") || line.starts_with("W:") || line.starts_with("Err:") || line.starts_with("  "))
        out += "  " + line + "\n";
    }
    return out.empty() ? output : out;
  }

  std::string dir_;
  std::string archive_;
  std::string apt_get_;
  std::string apt_cache_;
};

// "conntrack_1%3a1.4.8-1_arm64.deb" -> {"conntrack", "1:1.4.8-1"}; apt writes ':' as %3a.
std::pair<std::string, std::string> name_version(const std::string& file_name) {
  size_t a = file_name.find('_');
  size_t b = file_name.find('_', a == std::string::npos ? 0 : a + 1);
  if (a == std::string::npos || b == std::string::npos)
    throw Error("apt named a .deb pibake cannot read: " + file_name);
  std::string version = file_name.substr(a + 1, b - a - 1);
  for (size_t p; (p = version.find("%3a")) != std::string::npos;) version.replace(p, 3, ":");
  return {file_name.substr(0, a), version};
}

// The closure apt computes for `missing` against the base's status: each .deb pinned with the
// index's sha256 and size, its URL under the spec's archive (before mirrors).
std::vector<LockedPackage> resolve_set(const ClusterSpec& spec, const AptRoot& apt,
                                       const std::vector<std::string>& missing, const std::string& set_name) {
  std::vector<std::string> args = {"install", "--print-uris", "-qq", "-y", "--no-install-recommends"};
  args.insert(args.end(), missing.begin(), missing.end());
  std::vector<AptUri> uris = parse_print_uris(
      apt.run(true, args,
              fmt::format("resolving the {} nodes' packages ({}) against the base image's dpkg status with apt",
                          set_name, fmt::join(missing, " "))));
  if (uris.empty()) return {};
  std::vector<std::string> show = {"show", "--no-all-versions"};
  for (const AptUri& u : uris) {
    auto [name, version] = name_version(u.file_name);
    show.push_back(name + "=" + version);
  }
  std::vector<PackageRecord> records = parse_package_records(apt.run(false, show, "reading the archive's index"));
  std::vector<LockedPackage> out;
  for (const AptUri& u : uris) {
    auto [name, version] = name_version(u.file_name);
    const PackageRecord* rec = nullptr;
    for (const PackageRecord& r : records)
      if (r.package == name && r.version == version) rec = &r;
    if (rec == nullptr || rec->size != u.size) {
      throw Error(fmt::format("package {} {}: the archive's index and apt's download list disagree ({})", name, version,
                              u.url));
    }
    std::string archive = spec.packages.archive;
    while (archive.ends_with("/")) archive.pop_back();
    out.push_back({name, rec->version, archive + "/" + rec->filename, rec->sha256, rec->size});
  }
  return out;
}

// A set's closure is pinned in `lock` for this request and this base status.
const LockedPackageSet* pinned(const LockFile& lock, const PackageSet& set, const std::string& status_sha) {
  const LockedPackageSet* s = lock.find_package_set(set.name);
  if (s == nullptr || s->requested != join_requested(set.requested) || s->base_status_sha256 != status_sha)
    return nullptr;
  return s;
}

}  // namespace

FetchedPackages fetch_packages(const ClusterSpec& spec, const PackageBase& base, LockFile& lock, Cache& cache,
                               Fetcher& fetcher, bool offline) {
  const std::string status_sha = sha256_hex(base.dpkg_status);
  const std::set<std::string> installed = installed_packages(base.dpkg_status);
  std::unique_ptr<AptRoot> apt;  // set up once, and only when a set must be resolved
  auto apt_root = [&]() -> AptRoot& {
    if (!apt) {
      apt = std::make_unique<AptRoot>(spec, base);
      fmt::print("resolving first-boot packages with apt ({} {})\n", apt->archive(), base.os.version_codename);
      apt->update();
    }
    return *apt;
  };
  FetchedPackages out;
  out.dhcp_server = choose_dhcp_server(spec.network.dhcp_server, base.os);
  if (spec.network.dhcp_server == "auto") {
    // Decided when the gateway's set was resolved and pinned: the DHCP package it requests. Else,
    // when the base lacks the release's choice, by what the archive lists (docs/overlays.md).
    const DhcpServer other = out.dhcp_server == DhcpServer::kKea ? DhcpServer::kIscDhcpServer : DhcpServer::kKea;
    if (pinned(lock, package_sets(spec, out.dhcp_server).front(), status_sha) != nullptr) {
      // kept
    } else if (pinned(lock, package_sets(spec, other).front(), status_sha) != nullptr) {
      out.dhcp_server = other;
    } else if (!offline && !installed.count(std::string(dhcp_server_facts(out.dhcp_server).package))) {
      const bool has_isc = apt_root().run_raw(false, {"show", "--no-all-versions", "isc-dhcp-server"}).exit_code == 0;
      out.dhcp_server = choose_dhcp_server("auto", base.os, has_isc);
      fmt::print("the archive {} isc-dhcp-server: the gateway runs {}\n", has_isc ? "has" : "does not have",
                 dhcp_server_facts(out.dhcp_server).package);
    }
  }
  const std::vector<PackageSet> sets = package_sets(spec, out.dhcp_server);
  for (const PackageSet& set : sets) {
    if (pinned(lock, set, status_sha) != nullptr) continue;
    std::vector<std::string> missing;
    for (const std::string& p : set.requested)
      if (!installed.count(p)) missing.push_back(p);
    std::vector<LockedPackage> debs;
    if (!missing.empty()) {
      if (offline) {
        throw Error(fmt::format(
            "the {} nodes' packages ({}) are not pinned in pibake-state/lock.yaml for this base image, and --offline "
            "forbids resolving them: run `pibake fetch` while online first",
            set.name, fmt::join(missing, " ")));
      }
      debs = resolve_set(spec, apt_root(), missing, set.name);
    }
    LockedPackageSet locked{set.name, join_requested(set.requested), status_sha, {}};
    for (LockedPackage& p : debs) {
      locked.debs.push_back(p.name);
      if (const LockedPackage* have = lock.find_package(p.name)) {
        if (have->version == p.version && have->sha256 == p.sha256) continue;
        std::erase_if(lock.packages, [&](const LockedPackage& q) { return q.name == p.name; });
      }
      lock.packages.push_back(std::move(p));
    }
    std::erase_if(lock.package_sets, [&](const LockedPackageSet& s) { return s.name == set.name; });
    lock.package_sets.push_back(std::move(locked));
  }
  for (const PackageSet& set : sets) {
    std::vector<ResolvedDeb>& debs = out.debs[set.name];
    for (const std::string& name : lock.find_package_set(set.name)->debs) {
      const LockedPackage& p = *lock.find_package(name);
      std::string path = cache.get_blob(fetcher, apply_mirrors(p.url, spec.mirrors), p.sha256, offline,
                                        "package " + p.name + " " + p.version, kMaxArtifactBytes);
      debs.push_back({p, path});
    }
  }
  return out;
}

}  // namespace pibake
