// RSA keys, their PEM forms, the system random source and the OpenSSL error helpers (see pki.h).
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <climits>

#include "pki/openssl_util.h"
#include "pki/pki.h"
#include "util/error.h"

namespace pibake::pki {
namespace detail {

void throw_openssl(const std::string& context) {
  std::string reasons;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!reasons.empty()) reasons += "; ";
    reasons += buf;
  }
  throw Error(context + ": " + (reasons.empty() ? "OpenSSL reported no detail" : reasons));
}

BioPtr memory_bio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) throw_openssl("cannot allocate a memory BIO");
  return bio;
}

BioPtr memory_bio(std::string_view s) {
  if (s.size() > INT_MAX) throw Error("PEM input too large");
  BioPtr bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
  if (!bio) throw_openssl("cannot allocate a memory BIO");
  return bio;
}

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace detail

namespace {

// Passphrase callback that refuses: without it PEM_read_* would prompt on the terminal for an
// encrypted key. pibake's state holds unencrypted keys only (kubeadm cannot read encrypted ones).
extern "C" int no_passphrase(char*, int, int, void*) { return -1; }

class SystemRandom final : public RandomSource {
 public:
  void fill(unsigned char* out, std::size_t n) override {
    while (n > 0) {
      int chunk = n > INT_MAX ? INT_MAX : static_cast<int>(n);
      if (RAND_bytes(out, chunk) != 1) detail::throw_openssl("cannot get random bytes");
      out += chunk;
      n -= static_cast<std::size_t>(chunk);
    }
  }
};

}  // namespace

RandomSource& system_random() {
  static SystemRandom random;
  return random;
}

PkeyPtr generate_rsa_key(int bits) {
  // EVP_RSA_gen: OpenSSL 3's one-call keygen, public exponent 65537 as Go's rsa.GenerateKey uses.
  PkeyPtr key(EVP_RSA_gen(static_cast<unsigned>(bits)));
  if (!key) detail::throw_openssl("cannot generate an RSA-" + std::to_string(bits) + " key");
  return key;
}

std::string private_key_pem(EVP_PKEY* key) {
  BioPtr bio = detail::memory_bio();
  // The "traditional" form of an RSA key is PKCS#1 ("BEGIN RSA PRIVATE KEY"), as kubeadm writes.
  if (PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    detail::throw_openssl("cannot encode a private key");
  }
  return detail::bio_string(bio.get());
}

std::string public_key_pem(EVP_PKEY* key) {
  BioPtr bio = detail::memory_bio();
  if (PEM_write_bio_PUBKEY(bio.get(), key) != 1) detail::throw_openssl("cannot encode a public key");
  return detail::bio_string(bio.get());
}

PkeyPtr parse_private_key(std::string_view pem, const std::string& what) {
  BioPtr bio = detail::memory_bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) detail::throw_openssl(what + ": not a PEM private key (or an encrypted one)");
  return key;
}

PkeyPtr parse_public_key(std::string_view pem, const std::string& what) {
  BioPtr bio = detail::memory_bio(pem);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) detail::throw_openssl(what + ": not a PEM public key");
  return key;
}

}  // namespace pibake::pki
