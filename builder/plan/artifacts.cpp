// Upstream artifact locations and the lock file (see artifacts.h).
#include "plan/artifacts.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "plan/checksums.h"
#include "spec/compat.h"
#include "util/error.h"

namespace pibake {
namespace {

constexpr const char* kArch = "arm64";

}  // namespace

int kubernetes_minor(const std::string& version) {
  int major = 0, minor = 0, patch = 0;
  if (std::sscanf(version.c_str(), "v%d.%d.%d", &major, &minor, &patch) != 3) return 0;
  return minor;
}

std::string sandbox_image(const ClusterSpec& spec) {
  const KubernetesMinor& k = kubernetes_minor_settings(kubernetes_minor(spec.kubernetes.version));
  return spec.kubernetes.image_repository + "/pause:" + std::string(k.pause);
}

std::vector<ArtifactSource> artifact_sources(const ClusterSpec& spec) {
  std::vector<ArtifactSource> out;
  const std::string& k8s = spec.kubernetes.version;
  // dl.k8s.io's release layout (kubernetes.io/releases/download: "Binaries"); each NAME beside
  // its NAME.sha256.
  auto k8s_binary = [&](const char* bin, bool control_plane_only) {
    std::string url = fmt::format("https://dl.k8s.io/release/{}/bin/linux/{}/{}", k8s, kArch, bin);
    out.push_back({bin, k8s, url, url + ".sha256", false, "/usr/local/bin", "", control_plane_only});
  };
  if (!is_hard_way(spec)) {
    for (const char* bin : {"kubelet", "kubeadm", "kubectl"}) k8s_binary(bin, false);
  } else {
    for (const char* bin : {"kubelet", "kube-proxy", "kubectl"}) k8s_binary(bin, false);
    for (const char* bin : {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}) k8s_binary(bin, true);
    // etcd-io/etcd's release assets: etcd-vX-linux-arm64.tar.gz (one folder of that name) and the
    // release's SHA256SUMS.
    const std::string etcd = etcd_version(spec);
    std::string etcd_base = fmt::format("https://github.com/etcd-io/etcd/releases/download/v{}/", etcd);
    std::string folder = fmt::format("etcd-v{}-linux-{}", etcd, kArch);
    out.push_back({"etcd", etcd, etcd_base + folder + ".tar.gz", etcd_base + "SHA256SUMS", true, kEtcdInstallDir,
                   folder + "/", true});
  }
  // kubeadm's preflight requires crictl; cri-tools follows Kubernetes' minor versions.
  std::string crictl = fmt::format("v1.{}.0", kubernetes_minor(k8s));
  std::string crictl_url = fmt::format(
      "https://github.com/kubernetes-sigs/cri-tools/releases/download/{0}/crictl-{0}-linux-{1}.tar.gz", crictl, kArch);
  out.push_back({"crictl", crictl, crictl_url, crictl_url + ".sha256", true, "/usr/local/bin", ""});

  const std::string& ctd = spec.containerd.version;
  std::string ctd_url = fmt::format(
      "https://github.com/containerd/containerd/releases/download/v{0}/containerd-{0}-linux-{1}.tar.gz", ctd, kArch);
  out.push_back({"containerd", ctd, ctd_url, ctd_url + ".sha256sum", true, "/usr/local/bin", "bin/"});

  const std::string& runc = spec.runc.version;
  std::string runc_base = fmt::format("https://github.com/opencontainers/runc/releases/download/v{}/", runc);
  out.push_back(
      {"runc", runc, runc_base + "runc." + kArch, runc_base + "runc.sha256sum", false, "/usr/local/sbin", ""});

  const std::string& cni = spec.cni_plugins.version;
  std::string cni_url = fmt::format(
      "https://github.com/containernetworking/plugins/releases/download/v{0}/cni-plugins-linux-{1}-v{0}.tgz", cni,
      kArch);
  out.push_back({"cni-plugins", cni, cni_url, cni_url + ".sha256", true, "/opt/cni/bin", ""});
  return out;
}

namespace {

// The entry of `entries` whose `key` member equals `value`, or nullptr (entries are few: a linear scan).
template <class T>
const T* find_by(const std::vector<T>& entries, std::string T::*key, const std::string& value) {
  for (const T& e : entries)
    if (e.*key == value) return &e;
  return nullptr;
}

}  // namespace

const LockedArtifact* LockFile::find(const std::string& name) const {
  return find_by(artifacts, &LockedArtifact::name, name);
}

const LockedImage* LockFile::find_image(const std::string& reference) const {
  return find_by(images, &LockedImage::reference, reference);
}

const LockedPackage* LockFile::find_package(const std::string& name) const {
  return find_by(packages, &LockedPackage::name, name);
}

const LockedPackageSet* LockFile::find_package_set(const std::string& name) const {
  return find_by(package_sets, &LockedPackageSet::name, name);
}

namespace {

bool is_digest(const std::string& d) { return d.rfind("sha256:", 0) == 0 && is_sha256_hex(d.substr(7)); }

void parse_locked_images(const YAML::Node& images, const std::string& display_path, LockFile& lock) {
  if (!images) return;
  if (!images.IsMap()) throw Error(display_path + ": \"images\" must be a map");
  for (const auto& kv : images) {
    LockedImage i;
    i.reference = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!v.IsMap() || !v["manifest"] || !is_digest(v["manifest"].as<std::string>()) ||
        (v["index"] && !is_digest(v["index"].as<std::string>()))) {
      throw Error(fmt::format("{}:{}: images.\"{}\" needs manifest (and may have index): sha256:<64 hex> digests",
                              display_path, kv.first.Mark().line + 1, i.reference));
    }
    i.manifest_digest = v["manifest"].as<std::string>();
    if (v["index"]) i.index_digest = v["index"].as<std::string>();
    lock.images.push_back(i);
  }
}

// packages: and package_sets: of lock.yaml (render_lock writes them).
void parse_packages(const YAML::Node& root, const std::string& display_path, LockFile& lock) {
  auto where = [&](const YAML::Node& n) { return fmt::format("{}:{}", display_path, n.Mark().line + 1); };
  if (YAML::Node pkgs = root["packages"]) {
    if (!pkgs.IsMap()) throw Error(where(pkgs) + ": \"packages\" must be a map");
    for (const auto& kv : pkgs) {
      LockedPackage p;
      p.name = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (!v.IsMap() || !v["version"] || !v["url"] || !v["sha256"] || !v["size"]) {
        throw Error(where(kv.first) + ": packages." + p.name + " needs version, url, sha256 and size");
      }
      p.version = v["version"].as<std::string>();
      p.url = v["url"].as<std::string>();
      p.sha256 = v["sha256"].as<std::string>();
      p.size = v["size"].as<uint64_t>();
      if (!is_sha256_hex(p.sha256)) throw Error(where(v) + ": packages." + p.name + ".sha256 is not a sha256");
      lock.packages.push_back(std::move(p));
    }
  }
  if (YAML::Node sets = root["package_sets"]) {
    if (!sets.IsMap()) throw Error(where(sets) + ": \"package_sets\" must be a map");
    for (const auto& kv : sets) {
      LockedPackageSet s;
      s.name = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (!v.IsMap() || !v["requested"] || !v["base_status_sha256"] || !v["debs"] || !v["debs"].IsSequence()) {
        throw Error(where(kv.first) + ": package_sets." + s.name + " needs requested, base_status_sha256 and debs");
      }
      s.requested = v["requested"].as<std::string>();
      s.base_status_sha256 = v["base_status_sha256"].as<std::string>();
      for (const auto& d : v["debs"]) {
        s.debs.push_back(d.as<std::string>());
        if (!lock.find_package(s.debs.back())) {
          throw Error(where(d) + ": package_sets." + s.name + " names " + s.debs.back() + ", which packages: lacks");
        }
      }
      lock.package_sets.push_back(std::move(s));
    }
  }
}

}  // namespace

LockFile parse_lock(const std::string& text, const std::string& display_path) {
  LockFile lock;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return lock;
    parse_locked_images(root["images"], display_path, lock);
    parse_packages(root, display_path, lock);
    YAML::Node arts = root["artifacts"];
    if (!arts || arts.IsNull()) return lock;
    if (!arts.IsMap()) throw Error(display_path + ": \"artifacts\" must be a map");
    for (const auto& kv : arts) {
      LockedArtifact a;
      a.name = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (!v.IsMap() || !v["version"] || !v["url"] || !v["sha256"]) {
        throw Error(fmt::format("{}:{}: artifacts.{} needs version, url and sha256", display_path,
                                kv.first.Mark().line + 1, a.name));
      }
      a.version = v["version"].as<std::string>();
      a.url = v["url"].as<std::string>();
      a.sha256 = v["sha256"].as<std::string>();
      if (!is_sha256_hex(a.sha256)) {
        throw Error(fmt::format("{}:{}: artifacts.{}.sha256 is not a sha256", display_path, v.Mark().line + 1, a.name));
      }
      lock.artifacts.push_back(a);
    }
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}:{}:{}: {}", display_path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return lock;
}

std::string render_lock(const LockFile& lock) {
  std::string out =
      "# Written by pibake: every artifact this cluster's images were built with. Later builds\n"
      "# (`pibake build --node NAME`) install exactly these, so a regenerated node matches the others.\n"
      "# To upgrade one, change its version in cluster.yaml and delete its entry here.\n"
      "artifacts:\n";
  for (const LockedArtifact& a : lock.artifacts) {
    out += fmt::format("  {}:\n    version: \"{}\"\n    url: \"{}\"\n    sha256: \"{}\"\n", a.name, a.version, a.url,
                       a.sha256);
  }
  if (!lock.images.empty()) {
    out += "# Container images: the linux/arm64 manifest each node imports, by digest (docs/images.md).\nimages:\n";
    for (const LockedImage& i : lock.images) {
      out += fmt::format("  \"{}\":\n", i.reference);
      if (!i.index_digest.empty()) out += fmt::format("    index: \"{}\"\n", i.index_digest);
      out += fmt::format("    manifest: \"{}\"\n", i.manifest_digest);
    }
  }
  if (!lock.packages.empty()) {
    out +=
        "# The .debs first boot installs from the card (docs/packages.md), from the archive's signed index.\n"
        "packages:\n";
    for (const LockedPackage& p : lock.packages) {
      out += fmt::format("  \"{}\":\n    version: \"{}\"\n    url: \"{}\"\n    sha256: \"{}\"\n    size: {}\n", p.name,
                         p.version, p.url, p.sha256, p.size);
    }
  }
  if (!lock.package_sets.empty()) {
    out +=
        "# What apt resolved for each set of nodes, against the base image's dpkg status. Delete a set\n"
        "# to resolve it again.\n"
        "package_sets:\n";
    for (const LockedPackageSet& s : lock.package_sets) {
      out += fmt::format("  {}:\n    requested: \"{}\"\n    base_status_sha256: \"{}\"\n    debs: [{}]\n", s.name,
                         s.requested, s.base_status_sha256,
                         s.debs.empty() ? "" : fmt::format("\"{}\"", fmt::join(s.debs, "\", \"")));
    }
  }
  return out;
}

}  // namespace pibake
