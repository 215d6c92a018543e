// Internal helpers of the PKI module: OpenSSL's error queue as a pibake::Error, BIO <-> string.
#pragma once

#include <string>
#include <string_view>

#include "pki/pki.h"

namespace pibake::pki::detail {

// Throws pibake::Error("<context>: <OpenSSL's queued errors>") and clears the queue. OpenSSL's
// messages name reasons ("bad decrypt", "no start line"), never key bytes.
[[noreturn]] void throw_openssl(const std::string& context);

BioPtr memory_bio();                    // an empty read/write memory BIO
BioPtr memory_bio(std::string_view s);  // a read-only BIO over `s` (which must outlive it)
std::string bio_string(BIO* bio);       // everything written to a memory BIO

}  // namespace pibake::pki::detail
