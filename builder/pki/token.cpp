// Bootstrap tokens (kubeadm's BootstrapTokenString): "<id>.<secret>", id 6 and secret 16
// characters of [a-z0-9], the format the API server's bootstrap authenticator accepts
// (k8s.io/cluster-bootstrap/token/api: BootstrapTokenPattern).
#include <cstddef>

#include "pki/pki.h"

namespace pibake::pki {
namespace {

constexpr std::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

bool is_token_char(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); }

// Uniform over the 36 characters: bytes >= 252 (= 7 * 36) are rejected instead of reduced, so no
// character is more likely than another (modulo bias would favour the first 256 % 36 = 4).
std::string random_chars(std::size_t n, RandomSource& random) {
  constexpr unsigned kLimit = 256 - 256 % kAlphabet.size();
  std::string out;
  while (out.size() < n) {
    unsigned char buf[32];
    random.fill(buf, sizeof buf);
    for (unsigned char b : buf) {
      if (b < kLimit && out.size() < n) out += kAlphabet[b % kAlphabet.size()];
    }
  }
  return out;
}

}  // namespace

std::string generate_bootstrap_token(RandomSource& random) {
  return random_chars(6, random) + "." + random_chars(16, random);
}

bool is_bootstrap_token(std::string_view token) {
  if (token.size() != 23 || token[6] != '.') return false;
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (i != 6 && !is_token_char(token[i])) return false;
  }
  return true;
}

}  // namespace pibake::pki
