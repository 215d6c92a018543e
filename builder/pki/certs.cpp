// CA and leaf certificates the way kubeadm's pkiutil makes them (NewSelfSignedCACert,
// NewSignedCert in cmd/kubeadm/app/util/pkiutil/pki_helpers.go), with OpenSSL 3's X509 API.
#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <charconv>

#include "pki/openssl_util.h"
#include "pki/pki.h"
#include "util/error.h"
#include "util/sha256.h"

namespace pibake::pki {
namespace {

using detail::throw_openssl;

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};

std::time_t to_time_t(const ASN1_TIME* t, const std::string& what) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) throw_openssl(what + ": unreadable validity");
  return timegm(&tm);
}

// RFC 5280 4.1.2.2: a positive serial of at most 20 octets, unique per CA. 128 random bits make
// collisions negligible without any serial bookkeeping in the state dir (kubeadm does the same).
void set_random_serial(X509* cert, RandomSource& random) {
  unsigned char bytes[16];
  random.fill(bytes, sizeof bytes);
  if (std::all_of(std::begin(bytes), std::end(bytes), [](unsigned char b) { return b == 0; })) {
    bytes[15] = 1;  // zero is not a valid serial
  }
  std::unique_ptr<BIGNUM, BnFree> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    throw_openssl("cannot set a certificate serial number");
  }
}

// O entries before CN, the order Go's pkix.Name.ToRDNSequence writes (and kubeadm's certs have).
void set_subject(X509* cert, std::string_view cn, const std::vector<std::string>& orgs) {
  X509_NAME* name = X509_get_subject_name(cert);
  auto add = [&](const char* field, std::string_view value) {
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      throw_openssl("cannot set subject " + std::string(field) + "=" + std::string(value));
    }
  };
  for (const std::string& o : orgs) add("O", o);
  add("CN", cn);
}

// Adds one extension written in openssl.cnf syntax. Only constant strings come here; names and
// addresses from the spec go through add_subject_alt_names, so nothing can inject syntax.
void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    throw_openssl(std::string("cannot add extension ") + OBJ_nid2sn(nid) + " = " + value);
  }
}

bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '*';
  });
}

void add_subject_alt_names(X509* cert, const LeafSpec& spec) {
  if (spec.dns_names.empty() && spec.ip_addresses.empty()) return;
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) throw_openssl("cannot allocate subjectAltName");
  auto push = [&](int type, ASN1_STRING* value) {
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (gn == nullptr || value == nullptr) {
      GENERAL_NAME_free(gn);
      ASN1_STRING_free(value);
      throw_openssl("cannot allocate subjectAltName");
    }
    GENERAL_NAME_set0_value(gn, type, value);
    if (sk_GENERAL_NAME_push(names.get(), gn) == 0) {
      GENERAL_NAME_free(gn);
      throw_openssl("cannot allocate subjectAltName");
    }
  };
  for (const std::string& dns : spec.dns_names) {
    if (!is_dns_name(dns)) throw Error("certificate " + spec.common_name + ": bad DNS name \"" + dns + "\"");
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (s != nullptr) ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size()));
    push(GEN_DNS, s);
  }
  for (const std::string& ip : spec.ip_addresses) {
    unsigned char buf[16];
    int len = 0;
    if (inet_pton(AF_INET, ip.c_str(), buf) == 1)
      len = 4;
    else if (inet_pton(AF_INET6, ip.c_str(), buf) == 1)
      len = 16;
    else
      throw Error("certificate " + spec.common_name + ": bad IP address \"" + ip + "\"");
    ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
    if (s != nullptr) ASN1_OCTET_STRING_set(s, buf, len);
    push(GEN_IPADD, s);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    throw_openssl("cannot add subjectAltName");
  }
}

// Everything both kinds of certificate share: v3, serial, validity, subject, issuer, public key.
X509Ptr new_cert(std::string_view cn, const std::vector<std::string>& orgs, EVP_PKEY* key, std::time_t not_before,
                 std::time_t not_after, RandomSource& random) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) throw_openssl("cannot create a certificate");
  set_random_serial(cert.get(), random);
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after) == nullptr) {
    throw_openssl("cannot set certificate validity");
  }
  set_subject(cert.get(), cn, orgs);
  if (X509_set_pubkey(cert.get(), key) != 1) throw_openssl("cannot set certificate public key");
  return cert;
}

void sign(X509* cert, EVP_PKEY* signer) {
  if (X509_sign(cert, signer, EVP_sha256()) <= 0) throw_openssl("cannot sign certificate");
}

// "v1.34.2" -> 34; -1 when it does not look like v1.N.
int minor_version(std::string_view v) {
  if (!v.empty() && v.front() == 'v') v.remove_prefix(1);
  if (v.substr(0, 2) != "1.") return -1;
  v.remove_prefix(2);
  int minor = -1;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), minor);
  return ec == std::errc() ? minor : -1;
}

}  // namespace

X509Ptr parse_cert(std::string_view pem, const std::string& what) {
  BioPtr bio = detail::memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) throw_openssl(what + ": not a PEM certificate");
  return cert;
}

std::string cert_pem(X509* cert) {
  BioPtr bio = detail::memory_bio();
  if (PEM_write_bio_X509(bio.get(), cert) != 1) throw_openssl("cannot encode a certificate");
  return detail::bio_string(bio.get());
}

CertKeyPair create_ca(std::string_view common_name, std::time_t now, RandomSource& random, std::int64_t validity) {
  PkeyPtr key = generate_rsa_key();
  X509Ptr cert = new_cert(common_name, {}, key.get(), now - kBackdate, now + validity, random);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    throw_openssl("cannot set CA issuer");
  }
  // RFC 5280 4.2.1.9/4.2.1.3: a CA asserts basicConstraints (critical) and keyCertSign; cRLSign
  // and digitalSignature as Go's x509 (and thus kubeadm) CAs have them.
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_ext(cert.get(), cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
  // SKI first: the self-signed AKI copies it.
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  add_ext(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always");
  sign(cert.get(), key.get());
  return {cert_pem(cert.get()), private_key_pem(key.get())};
}

CertKeyPair issue_cert(const CertKeyPair& ca, const LeafSpec& spec, std::time_t now, RandomSource& random) {
  if (spec.common_name.empty()) throw Error("certificate: empty common name");
  if (spec.usages.empty()) throw Error("certificate " + spec.common_name + ": no extended key usage");
  if (spec.validity <= 0) throw Error("certificate " + spec.common_name + ": validity must be positive");
  X509Ptr ca_cert = parse_cert(ca.cert_pem, "CA certificate");
  PkeyPtr ca_key = parse_private_key(ca.key_pem, "CA key");
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    throw Error("certificate " + spec.common_name + ": the CA key does not match the CA certificate");
  }
  std::time_t ca_not_after = to_time_t(X509_get0_notAfter(ca_cert.get()), "CA certificate");
  if (ca_not_after <= now) throw Error("certificate " + spec.common_name + ": the CA has expired");
  // A leaf cannot usefully outlive its issuer: verifiers reject the chain once the CA expires.
  std::time_t not_after = std::min<std::time_t>(now + spec.validity, ca_not_after);

  PkeyPtr key = generate_rsa_key();
  X509Ptr cert = new_cert(spec.common_name, spec.organizations, key.get(), now - kBackdate, not_after, random);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    throw_openssl("cannot set certificate issuer");
  }
  add_ext(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  // kubeadm's leaf usages: KeyUsageKeyEncipherment | KeyUsageDigitalSignature (RSA key exchange
  // and signatures), marked critical as Go's x509 does.
  add_ext(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  std::string eku;  // in the order asked for, each once
  for (ExtKeyUsage u : spec.usages) {
    const char* name = u == ExtKeyUsage::kClientAuth ? "clientAuth" : "serverAuth";
    if (eku.find(name) == std::string::npos) eku += (eku.empty() ? "" : ",") + std::string(name);
  }
  add_ext(cert.get(), ca_cert.get(), NID_ext_key_usage, eku.c_str());
  add_subject_alt_names(cert.get(), spec);
  add_ext(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
  sign(cert.get(), ca_key.get());
  return {cert_pem(cert.get()), private_key_pem(key.get())};
}

std::string admin_group(std::string_view kubernetes_version) {
  int minor = minor_version(kubernetes_version);
  // kubeadm 1.29+ gives admin.conf O=kubeadm:cluster-admins, bound by a ClusterRoleBinding that
  // `kubeadm init` creates, and keeps O=system:masters (which bypasses RBAC and cannot be revoked)
  // for the break-glass super-admin.conf on the control plane only (KEP-4214, kubeadm#2414).
  return minor >= 0 && minor < 29 ? "system:masters" : "kubeadm:cluster-admins";
}

LeafSpec admin_client_spec(std::string_view kubernetes_version) {
  LeafSpec spec;
  spec.common_name = std::string(kAdminUser);
  spec.organizations = {admin_group(kubernetes_version)};
  spec.usages = {ExtKeyUsage::kClientAuth};
  return spec;
}

LeafSpec kubelet_client_spec(std::string_view node_name) {
  // The Node authorizer and NodeRestriction admission recognise a kubelet by exactly this
  // identity: user "system:node:<nodeName>" in group "system:nodes".
  LeafSpec spec;
  spec.common_name = "system:node:" + std::string(node_name);
  spec.organizations = {std::string(kNodesGroup)};
  spec.usages = {ExtKeyUsage::kClientAuth};
  spec.validity = kKubeletClientValidity;
  return spec;
}

std::time_t cert_not_before(const std::string& pem) {
  X509Ptr cert = parse_cert(pem, "certificate");
  return to_time_t(X509_get0_notBefore(cert.get()), "certificate");
}

std::time_t cert_not_after(const std::string& pem) {
  X509Ptr cert = parse_cert(pem, "certificate");
  return to_time_t(X509_get0_notAfter(cert.get()), "certificate");
}

void check_ca_pair(const CertKeyPair& ca, const std::string& what) {
  X509Ptr cert = parse_cert(ca.cert_pem, what + ".crt");
  PkeyPtr key = parse_private_key(ca.key_pem, what + ".key");
  if ((X509_get_extension_flags(cert.get()) & EXFLAG_CA) == 0) {
    throw Error(what + ".crt is not a CA certificate (no basicConstraints CA:TRUE)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    throw Error(what + ".key does not belong to " + what + ".crt");
  }
}

void check_leaf_pair(const CertKeyPair& leaf, const CertKeyPair& ca, const std::string& what) {
  X509Ptr cert = parse_cert(leaf.cert_pem, what + " (certificate)");
  PkeyPtr key = parse_private_key(leaf.key_pem, what + " (key)");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    throw Error(what + ": its key does not belong to its certificate");
  }
  X509Ptr issuer = parse_cert(ca.cert_pem, "CA certificate");
  if (X509_verify(cert.get(), X509_get0_pubkey(issuer.get())) != 1 ||
      X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(issuer.get())) != 0) {
    ERR_clear_error();
    throw Error(what + ": its certificate is not signed by the CA it must chain to");
  }
}

std::string discovery_hash(const std::string& ca_cert_pem) {
  X509Ptr cert = parse_cert(ca_cert_pem, "CA certificate");
  // The DER SubjectPublicKeyInfo, exactly the bytes `openssl x509 -pubkey | openssl rsa -pubin
  // -outform der` prints (kubeadm's pubkeypin hashes cert.RawSubjectPublicKeyInfo).
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  if (len <= 0) throw_openssl("cannot encode the CA public key");
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return "sha256:" + sha256_hex(bytes);
}

}  // namespace pibake::pki
