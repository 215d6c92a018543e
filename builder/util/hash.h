// SHA-256 digests (OpenSSL's libcrypto) for instance ids, checksums and content addressing.
#pragma once

#include <string>
#include <string_view>

namespace pibake {

std::string sha256_hex(std::string_view data);  // lower-case hex, 64 characters

}  // namespace pibake
