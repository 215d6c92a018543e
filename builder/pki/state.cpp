// The PKI state dir (see state.h): create once atomically, then load and check without ever
// writing, so a later `pibake build --node node-3` issues credentials the running cluster trusts.
#include "pki/state.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "state/state_dir.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake::pki {
namespace {

constexpr std::string_view kStagingSubdir = ".pki.tmp";

struct StateFile {
  std::string_view name;
  bool secret;
};
constexpr StateFile kStateFiles[] = {
    {kCaCert, false},         {kCaKey, true},       {kFrontProxyCaCert, false},
    {kFrontProxyCaKey, true}, {kEtcdCaCert, false}, {kEtcdCaKey, true},
    {kSaKey, true},           {kSaPub, false},      {kBootstrapTokenFile, true},
};

std::string errno_text() { return std::strerror(errno); }

// One state file, as the state dir reads its secrets (read_private_file).
std::optional<std::string> read_state_file(const std::string& path, bool secret) {
  return read_private_file(path, secret);
}

std::string join(const std::string& dir, std::string_view name) { return dir + "/" + std::string(name); }

PkiState generate(std::time_t now, RandomSource& random, bool with_bootstrap_token) {
  PkiState s;
  s.cluster_ca = create_ca(kClusterCaName, now, random);
  s.front_proxy_ca = create_ca(kFrontProxyCaName, now, random);
  s.etcd_ca = create_ca(kEtcdCaName, now, random);
  // kubeadm's "certs sa" phase: a bare RSA key pair, no certificate.
  PkeyPtr sa = generate_rsa_key();
  s.sa_key_pem = private_key_pem(sa.get());
  s.sa_pub_pem = public_key_pem(sa.get());
  if (with_bootstrap_token) s.bootstrap_token = generate_bootstrap_token(random);
  return s;
}

void write_state(const std::string& dir, const PkiState& s) {
  make_private_dir(dir);
  make_private_dir(join(dir, "etcd"));
  auto put = [&](std::string_view name, const std::string& content, mode_t mode) {
    write_file_atomic(join(dir, name), content, mode);
  };
  put(kCaCert, s.cluster_ca.cert_pem, kPublicMode);
  put(kCaKey, s.cluster_ca.key_pem, kSecretMode);
  put(kFrontProxyCaCert, s.front_proxy_ca.cert_pem, kPublicMode);
  put(kFrontProxyCaKey, s.front_proxy_ca.key_pem, kSecretMode);
  put(kEtcdCaCert, s.etcd_ca.cert_pem, kPublicMode);
  put(kEtcdCaKey, s.etcd_ca.key_pem, kSecretMode);
  put(kSaKey, s.sa_key_pem, kSecretMode);
  put(kSaPub, s.sa_pub_pem, kPublicMode);
  if (!s.bootstrap_token.empty()) put(kBootstrapTokenFile, s.bootstrap_token + "\n", kSecretMode);
  // Durable before the rename makes them the PKI: a failure leaves the staging dir to be removed.
  fsync_directory(join(dir, "etcd"));
  fsync_directory(dir);
}

// Creates <state_dir>/pki in one rename: either the whole PKI is there or none of it is.
void create_pki(const std::string& state_dir, const std::string& pki_dir, std::time_t now, RandomSource& random,
                bool with_bootstrap_token) {
  const std::string staging = join(state_dir, kStagingSubdir);
  std::error_code ec;
  // A leftover from an interrupted run: never renamed to pki/, so nothing ever used it.
  std::filesystem::remove_all(staging, ec);
  if (ec) throw Error("cannot remove the leftover " + staging + ": " + ec.message());
  try {
    write_state(staging, generate(now, random, with_bootstrap_token));
    // RENAME_NOREPLACE: if another pibake created pki/ meanwhile, keep theirs and fail.
    int rc = renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, pki_dir.c_str(), RENAME_NOREPLACE);
    // Filesystems without RENAME_NOREPLACE: rename() still refuses a non-empty pki/.
    if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) rc = rename(staging.c_str(), pki_dir.c_str());
    if (rc != 0) {
      if (errno == EEXIST || errno == ENOTEMPTY)
        throw Error(pki_dir + " appeared while pibake was creating it; run pibake again");
      throw Error("cannot rename " + staging + " to " + pki_dir + ": " + errno_text());
    }
  } catch (...) {
    std::filesystem::remove_all(staging, ec);
    throw;
  }
  try {
    fsync_directory(state_dir);
  } catch (const Error&) {
    // pki/ is in place already; only a power loss now could undo the rename.
  }
}

PkiState load_pki(const std::string& pki_dir, bool with_bootstrap_token) {
  check_private_dir(pki_dir, "PKI dir");
  std::optional<std::string> content[std::size(kStateFiles)];
  std::string missing;
  struct stat st {};
  if (lstat(join(pki_dir, "etcd").c_str(), &st) == 0) check_private_dir(join(pki_dir, "etcd"), "PKI dir");
  for (size_t i = 0; i < std::size(kStateFiles); ++i) {
    const StateFile& f = kStateFiles[i];
    if (f.name == kBootstrapTokenFile && !with_bootstrap_token) continue;
    content[i] = read_state_file(join(pki_dir, f.name), f.secret);
    if (!content[i]) missing += (missing.empty() ? "" : ", ") + std::string(f.name);
  }
  if (!missing.empty()) {
    throw Error(pki_dir + " is incomplete (missing: " + missing +
                "). pibake never regenerates part of a cluster's PKI, since existing nodes trust "
                "it; restore the missing files from a backup, or move " +
                pki_dir + " away to start a new cluster");
  }
  PkiState s;
  s.dir = pki_dir;
  s.cluster_ca = {*content[0], *content[1]};
  s.front_proxy_ca = {*content[2], *content[3]};
  s.etcd_ca = {*content[4], *content[5]};
  s.sa_key_pem = *content[6];
  s.sa_pub_pem = *content[7];
  s.bootstrap_token = content[8].value_or("");
  while (!s.bootstrap_token.empty() && (s.bootstrap_token.back() == '\n' || s.bootstrap_token.back() == '\r')) {
    s.bootstrap_token.pop_back();
  }

  check_ca_pair(s.cluster_ca, join(pki_dir, "ca"));
  check_ca_pair(s.front_proxy_ca, join(pki_dir, "front-proxy-ca"));
  check_ca_pair(s.etcd_ca, join(pki_dir, "etcd/ca"));
  PkeyPtr sa_key = parse_private_key(s.sa_key_pem, join(pki_dir, kSaKey));
  PkeyPtr sa_pub = parse_public_key(s.sa_pub_pem, join(pki_dir, kSaPub));
  if (EVP_PKEY_eq(sa_key.get(), sa_pub.get()) != 1) {
    throw Error(join(pki_dir, kSaPub) + " is not the public key of " + join(pki_dir, kSaKey));
  }
  if (with_bootstrap_token && !is_bootstrap_token(s.bootstrap_token)) {
    throw Error(join(pki_dir, kBootstrapTokenFile) + " does not hold a token of the form [a-z0-9]{6}.[a-z0-9]{16}");
  }
  return s;
}

}  // namespace

PkiState load_or_create(const std::string& state_dir, std::time_t now, RandomSource& random,
                        bool with_bootstrap_token) {
  const StateDir state(state_dir);
  const std::string pki_dir = state.pki_dir();
  struct stat st {};
  bool created = false;
  if (lstat(pki_dir.c_str(), &st) != 0) {
    if (errno != ENOENT) throw Error("cannot stat " + pki_dir + ": " + errno_text());
    create_pki(state_dir, pki_dir, now, random, with_bootstrap_token);
    created = true;
  }
  // Freshly written or years old, the same checks: what we hand to nodes is what is on disk.
  PkiState s = load_pki(pki_dir, with_bootstrap_token);
  s.created = created;
  return s;
}

PkiState load_or_create(const std::string& state_dir, bool with_bootstrap_token) {
  return load_or_create(state_dir, std::time(nullptr), system_random(), with_bootstrap_token);
}

}  // namespace pibake::pki
