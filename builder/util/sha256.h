// SHA-256 (OpenSSL EVP): incremental for data that streams through (bmap ranges, flash read-back,
// downloads), one-shot for strings (instance ids, content addresses).
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace pibake {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // The 32-byte digest, raw; the object starts over afterwards.
  std::string digest();
  // Lower-case hex digest (64 characters); the object starts over afterwards.
  std::string hex_digest();

 private:
  struct Deleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, Deleter> ctx_;
};

// Lower-case hex SHA-256 of `data`, 64 characters.
std::string sha256_hex(std::string_view data);

}  // namespace pibake
