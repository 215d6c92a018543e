// IPv4 and CIDR parsing and arithmetic (see net.h). Strict on purpose: a spec value that another
// tool could read differently (octal octets, stray spaces, host bits) is an error, not a guess.
#include "spec/net.h"

#include <fmt/format.h>

namespace pibake {
namespace {

// A decimal number of 1..max_digits digits, no sign, no leading zero unless it is "0".
std::optional<uint32_t> parse_decimal(std::string_view text, size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value;
}

}  // namespace

std::optional<Ipv4> Ipv4::parse(std::string_view text) {
  uint32_t value = 0;
  for (int octet = 0; octet < 4; ++octet) {
    size_t dot = text.find('.');
    if ((octet < 3) == (dot == std::string_view::npos)) return std::nullopt;  // 3 dots exactly
    std::optional<uint32_t> n = parse_decimal(text.substr(0, dot), 3);
    if (!n || *n > 255) return std::nullopt;
    value = (value << 8) | *n;
    text = octet < 3 ? text.substr(dot + 1) : std::string_view{};
  }
  return Ipv4{value};
}

std::string Ipv4::str() const {
  return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff);
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::optional<Ipv4> base = Ipv4::parse(text.substr(0, slash));
  std::optional<uint32_t> prefix = parse_decimal(text.substr(slash + 1), 2);
  if (!base || !prefix || *prefix > 32) return std::nullopt;
  Cidr cidr{*base, static_cast<int>(*prefix)};
  if ((base->value & ~cidr.netmask()) != 0) return std::nullopt;  // host bits set
  return cidr;
}

std::string Cidr::str() const { return fmt::format("{}/{}", base.str(), prefix); }

uint32_t Cidr::netmask() const {
  // Shifting a 32-bit value by 32 is undefined, hence the /0 case.
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

Ipv4 Cidr::broadcast() const { return Ipv4{base.value | ~netmask()}; }

bool Cidr::contains(Ipv4 ip) const { return (ip.value & netmask()) == base.value; }

// Two CIDR blocks either nest or are disjoint, so one containing the other's base is enough.
bool Cidr::overlaps(const Cidr& other) const { return contains(other.base) || other.contains(base); }

std::optional<std::string> unusable_block(const Cidr& range) {
  struct Block {
    Cidr cidr;
    const char* name;
  };
  static const Block kBlocks[] = {
      {{Ipv4{0x00000000}, 8}, "the \"this network\" block"},
      {{Ipv4{0x7f000000}, 8}, "the loopback block"},
      {{Ipv4{0xe0000000}, 4}, "the multicast block"},
      {{Ipv4{0xf0000000}, 4}, "the reserved block (with the broadcast address 255.255.255.255)"},
  };
  for (const Block& b : kBlocks) {
    if (b.cidr.overlaps(range)) return fmt::format("{} {}", b.name, b.cidr.str());
  }
  return std::nullopt;
}

std::optional<Ipv4Range> Ipv4Range::parse(std::string_view text) {
  size_t dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::optional<Ipv4> first = Ipv4::parse(text.substr(0, dash));
  std::optional<Ipv4> last = Ipv4::parse(text.substr(dash + 1));
  if (!first || !last) return std::nullopt;
  return Ipv4Range{*first, *last};
}

}  // namespace pibake
