// The cluster PKI as kubeadm lays it out: RSA keys, self-signed CAs, leaf certificates, kubeconfig
// text, the discovery-token CA hash and bootstrap tokens. Pure functions over PEM strings (no files;
// see pki/state.h for the state dir). docs/pki.md explains every choice.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pibake::pki {

// ---- One RAII type per OpenSSL handle (docs/conventions.md, "One owner per handle"). ----
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509ExtensionFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, X509ExtensionFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, GeneralNamesFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// ---- Constants, each as kubeadm has it (cmd/kubeadm/app/constants/constants.go). ----
inline constexpr int kRsaBits = 2048;  // kubeadm's default encryptionAlgorithm RSA-2048
inline constexpr std::int64_t kDay = 24 * 60 * 60;
// ClusterConfiguration.caCertificateValidityPeriod default 87600h.
inline constexpr std::int64_t kCaValidity = 3650 * kDay;
// ClusterConfiguration.certificateValidityPeriod default 8760h.
inline constexpr std::int64_t kLeafValidity = 365 * kDay;
// A worker's pre-issued kubelet client certificate lives as long as its CA (notAfter is clamped to
// the CA's): the card may be flashed months after the build, and once joined the kubelet renews it
// through the CSR API itself (docs/pki.md, "Kubelet client certificates").
inline constexpr std::int64_t kKubeletClientValidity = kCaValidity;
// CertificateBackdate: notBefore lies 5 minutes in the past to absorb small clock skew.
inline constexpr std::int64_t kBackdate = 5 * 60;
inline constexpr int kApiServerPort = 6443;

// Subject CNs kubeadm gives its CAs (cmd/kubeadm/app/phases/certs/certlist.go).
inline constexpr std::string_view kClusterCaName = "kubernetes";
inline constexpr std::string_view kFrontProxyCaName = "front-proxy-ca";
inline constexpr std::string_view kEtcdCaName = "etcd-ca";
inline constexpr std::string_view kAdminUser = "kubernetes-admin";
inline constexpr std::string_view kNodesGroup = "system:nodes";

// ---- Randomness: key material comes from OpenSSL's DRBG; serial numbers and tokens come from a
// RandomSource so tests can pin them (docs/conventions.md, "Narrow seams at I/O"). ----
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills `out` with `n` random bytes. Throws pibake::Error on failure; never returns short.
  virtual void fill(unsigned char* out, std::size_t n) = 0;
};
RandomSource& system_random();  // RAND_bytes: OpenSSL's CSPRNG, seeded from the kernel

// ---- Keys ----
PkeyPtr generate_rsa_key(int bits = kRsaBits);
// "RSA PRIVATE KEY" (PKCS#1), what kubeadm writes for RSA keys (keyutil.MarshalPrivateKeyToPEM).
std::string private_key_pem(EVP_PKEY* key);
// "PUBLIC KEY" (SubjectPublicKeyInfo), what kubeadm writes to sa.pub.
std::string public_key_pem(EVP_PKEY* key);
// Parse PEM (PKCS#1, PKCS#8 or SPKI). Encrypted keys are refused, never prompted for. `what` names
// the source in the error ("pki/ca.key"); the PEM text itself never appears in a message.
PkeyPtr parse_private_key(std::string_view pem, const std::string& what);
PkeyPtr parse_public_key(std::string_view pem, const std::string& what);

// ---- Certificates ----
struct CertKeyPair {
  std::string cert_pem;
  std::string key_pem;  // secret: 0600 on disk, never logged
};

enum class ExtKeyUsage { kClientAuth, kServerAuth };

struct LeafSpec {
  std::string common_name;                 // the user name for the API server
  std::vector<std::string> organizations;  // the groups
  std::vector<ExtKeyUsage> usages;         // at least one
  std::vector<std::string> dns_names;      // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;   // subjectAltName IP entries, IPv4 or IPv6 text
  std::int64_t validity = kLeafValidity;   // seconds from `now`; clamped to the CA's notAfter
};

X509Ptr parse_cert(std::string_view pem, const std::string& what);
std::string cert_pem(X509* cert);

// A self-signed CA with a fresh RSA key: X.509 v3, random 128-bit serial, notBefore now-kBackdate,
// basicConstraints critical CA:TRUE, keyUsage critical digitalSignature+keyCertSign+cRLSign,
// subject/authority key identifiers, sha256WithRSAEncryption.
CertKeyPair create_ca(std::string_view common_name, std::time_t now, RandomSource& random,
                      std::int64_t validity = kCaValidity);

// A leaf certificate with a fresh RSA key, signed by `ca`: keyUsage critical digitalSignature +
// keyEncipherment, the requested extendedKeyUsage, basicConstraints critical CA:FALSE, SANs, AKI.
// Throws pibake::Error for an empty CN, no usage, a malformed DNS name or IP, or an expired CA.
CertKeyPair issue_cert(const CertKeyPair& ca, const LeafSpec& spec, std::time_t now, RandomSource& random);

// The admin client (CN kubernetes-admin) and a worker's kubelet client (CN system:node:<name>,
// O system:nodes). See admin_group() for the admin's O.
LeafSpec admin_client_spec(std::string_view kubernetes_version);
LeafSpec kubelet_client_spec(std::string_view node_name);
// "kubeadm:cluster-admins" for Kubernetes 1.29 and later (kubeadm init binds that group to the
// cluster-admin ClusterRole; KEP-4214), "system:masters" before. Unparsable versions get the former.
std::string admin_group(std::string_view kubernetes_version);

std::time_t cert_not_before(const std::string& pem);
std::time_t cert_not_after(const std::string& pem);
// Throws pibake::Error (naming `what`, never the PEM) unless both parse, the certificate is a CA
// (basicConstraints CA:TRUE) and `key_pem` is its private key.
void check_ca_pair(const CertKeyPair& ca, const std::string& what);

// Throws pibake::Error (naming `what`, never the PEM) unless both of `leaf` parse, its key is the
// certificate's (X509_check_private_key) and the certificate is signed by `ca` (X509_verify with
// the CA's public key, issuer = the CA's subject): what a certificate kept from an earlier build
// must pass before it goes on a card again.
void check_leaf_pair(const CertKeyPair& leaf, const CertKeyPair& ca, const std::string& what);

// "sha256:<hex>": SHA-256 of the CA certificate's DER SubjectPublicKeyInfo, the value of
// `kubeadm join --discovery-token-ca-cert-hash` (kubeadm pubkeypin.Hash).
std::string discovery_hash(const std::string& ca_cert_pem);

// ---- Bootstrap tokens: "[a-z0-9]{6}.[a-z0-9]{16}" (kubeadm BootstrapTokenString). ----
std::string generate_bootstrap_token(RandomSource& random);
bool is_bootstrap_token(std::string_view token);

// ---- kubeconfig ----
struct KubeconfigSpec {
  std::string cluster_name;  // clusters[0].name, and the part after '@' in the context name
  std::string server;        // "https://10.0.0.1:6443" (api_server_url)
  std::string ca_cert_pem;
  std::string user;  // users[0].name: "kubernetes-admin", "system:node:node-2"
  CertKeyPair client;
};
// "https://<address>:<port>", with IPv6 addresses in brackets.
std::string api_server_url(std::string_view address, int port = kApiServerPort);
// apiVersion v1 Config with the CA and the client certificate/key embedded as base64 *-data.
std::string render_kubeconfig(const KubeconfigSpec& spec);
// notAfter of the client certificate embedded in a kubeconfig (users[0].user.client-certificate-data);
// 0 when there is none or it cannot be read.
std::time_t kubeconfig_client_cert_not_after(const std::string& kubeconfig);
// notBefore of the same certificate; 0 likewise.
std::time_t kubeconfig_client_cert_not_before(const std::string& kubeconfig);

std::string base64_encode(std::string_view data);  // RFC 4648, one line, padded

}  // namespace pibake::pki
