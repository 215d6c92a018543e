// Checks of single values (host and DNS names, user names, SSH keys, CIDR syntax) that the spec's
// validation combines; each rule is one predicate so its message and its test can name it.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "spec/spec_internal.h"

namespace pibake::spec_detail {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// The types OpenSSH writes into .pub files for keys a user would put in authorized_keys.
constexpr std::array<std::string_view, 7> kSshKeyTypes = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
};

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding, as in .pub files; nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  size_t padding = text.size() - text.find_last_not_of('=') - 1;
  if (padding > 2) return std::nullopt;
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text.substr(0, text.size() - padding)) {
    int v = base64_value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if (++count % 4 == 0) {
      out += static_cast<char>((bits >> 16) & 0xff);
      out += static_cast<char>((bits >> 8) & 0xff);
      out += static_cast<char>(bits & 0xff);
      bits = 0;
    }
  }
  if (count % 4 == 2) out += static_cast<char>((bits >> 4) & 0xff);
  if (count % 4 == 3) {
    out += static_cast<char>((bits >> 10) & 0xff);
    out += static_cast<char>((bits >> 2) & 0xff);
  }
  return out;
}

}  // namespace

bool is_dns_label(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (size_t start = 0;;) {
    size_t dot = s.find('.', start);
    if (!is_dns_label(s.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_san_dns_name(std::string_view s) { return is_dns_name(starts_with(s, "*.") ? s.substr(2) : s); }

bool is_ipv6(std::string_view s) {
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(s).c_str(), &addr) == 1;
}

bool is_linux_user_name(std::string_view s) {
  if (s.empty() || s.size() > 32 || (s[0] >= '0' && s[0] <= '9') || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '_' || c == '-'; });
}

bool is_version(std::string_view v) {
  int parts = 0;
  for (size_t start = 0; start <= v.size(); ++parts) {
    size_t dot = std::min(v.find('.', start), v.size());
    std::string_view part = v.substr(start, dot - start);
    if (part.empty() || !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    start = dot + 1;
  }
  return parts == 3;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
}

std::optional<std::string> ssh_key_problem(std::string_view line) {
  if (line.find('\n') != std::string_view::npos) {
    return "it spans several lines: give one key per list item";
  }
  size_t space = line.find(' ');
  std::string_view type = line.substr(0, space);
  if (std::find(kSshKeyTypes.begin(), kSshKeyTypes.end(), type) == kSshKeyTypes.end()) {
    std::string known;
    for (std::string_view t : kSshKeyTypes) known += (known.empty() ? "" : ", ") + std::string(t);
    return "unknown key type " + quote(type) + " (expected one of: " + known + ")";
  }
  if (space == std::string_view::npos) return "no key data after the type";
  std::string_view rest = line.substr(space + 1);
  std::string_view data = rest.substr(0, rest.find(' '));
  std::optional<std::string> blob = base64_decode(data);
  if (!blob) return "the key data is not base64";
  // The blob starts with its own type as an SSH string (uint32 length, bytes), RFC 4253 6.6:
  // a key pasted under the wrong type, or cut short, is caught here rather than by sshd later.
  if (blob->size() < 4) return "the key data is too short";
  uint32_t length = (uint32_t{static_cast<uint8_t>((*blob)[0])} << 24) |
                    (uint32_t{static_cast<uint8_t>((*blob)[1])} << 16) |
                    (uint32_t{static_cast<uint8_t>((*blob)[2])} << 8) | uint32_t{static_cast<uint8_t>((*blob)[3])};
  if (length > blob->size() - 4) return "the key data is cut short";
  std::string_view inner = std::string_view(*blob).substr(4, length);
  if (inner != type) return "the key data is a " + quote(inner) + " key, not " + quote(type);
  return std::nullopt;
}

std::optional<std::string> cidr_problem(std::string_view text) {
  if (text.empty()) return "is empty";
  if (Cidr::parse(text)) return std::nullopt;
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return quote(text) + " is not a CIDR range: it needs a /prefix, like 10.0.0.0/24";
  }
  std::optional<Ipv4> base = Ipv4::parse(text.substr(0, slash));
  std::string_view prefix = text.substr(slash + 1);
  // A good address and a good prefix that still fail to parse: host bits are the only problem.
  if (base) {
    for (int p = 0; p <= 32; ++p) {
      if (prefix != std::to_string(p)) continue;
      Cidr masked{Ipv4{base->value & Cidr{Ipv4{}, p}.netmask()}, p};
      return quote(text) + " has host bits set: did you mean " + masked.str() + "?";
    }
  }
  return quote(text) + " is not a CIDR range like 10.0.0.0/24";
}

}  // namespace pibake::spec_detail
