// IPv4 addresses and CIDR ranges: parsing, printing and range arithmetic for the spec and the plan.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pibake {

struct Ipv4 {
  uint32_t value = 0;  // host byte order

  // Strict dotted quad: four decimal octets 0..255, no leading '+', no spaces, no leading zeros
  // beyond a single "0" (so "010.0.0.1" is rejected: some tools read it as octal).
  static std::optional<Ipv4> parse(std::string_view text);
  std::string str() const;

  friend bool operator==(Ipv4 a, Ipv4 b) { return a.value == b.value; }
  friend bool operator!=(Ipv4 a, Ipv4 b) { return a.value != b.value; }
  friend bool operator<(Ipv4 a, Ipv4 b) { return a.value < b.value; }
  friend bool operator<=(Ipv4 a, Ipv4 b) { return a.value <= b.value; }
};

struct Cidr {
  Ipv4 base;       // network address (host bits zero)
  int prefix = 0;  // 0..32

  // "10.0.0.0/24". Host bits set ("10.0.0.5/24") is rejected: say what you mean. The prefix is
  // strict too: decimal 0..32 without sign, spaces or leading zeros.
  static std::optional<Cidr> parse(std::string_view text);
  std::string str() const;

  uint32_t netmask() const;
  Ipv4 netmask_address() const { return Ipv4{netmask()}; }
  Ipv4 broadcast() const;
  uint64_t size() const { return uint64_t{1} << (32 - prefix); }
  // Addresses a host on a LAN can use: all but the network and the broadcast address. /31 and /32
  // have none here (RFC 3021 point-to-point links have no place in a cluster network).
  uint64_t host_count() const { return size() >= 4 ? size() - 2 : 0; }
  bool contains(Ipv4 ip) const;
  bool overlaps(const Cidr& other) const;
  // The k-th address of the range (base + k); k must be < size().
  Ipv4 at(uint32_t k) const { return Ipv4{base.value + k}; }

  friend bool operator==(const Cidr& a, const Cidr& b) { return a.base == b.base && a.prefix == b.prefix; }
};

// The special-purpose IPv4 block (RFC 6890, RFC 5771) that `range` overlaps and that no host on a
// LAN can use as its address, a route or a DNS server: "this network" 0.0.0.0/8, loopback
// 127.0.0.0/8, multicast 224.0.0.0/4, reserved 240.0.0.0/4 (which holds the limited broadcast
// address 255.255.255.255). Returns e.g. "the loopback block 127.0.0.0/8", or nullopt.
std::optional<std::string> unusable_block(const Cidr& range);

// An inclusive range of addresses written "FIRST-LAST" (network.dhcp_range), both strict dotted
// quads with no spaces. parse() checks the syntax only: FIRST > LAST is for the caller to report.
struct Ipv4Range {
  Ipv4 first;
  Ipv4 last;

  static std::optional<Ipv4Range> parse(std::string_view text);
  std::string str() const { return first.str() + "-" + last.str(); }
  bool contains(Ipv4 ip) const { return first <= ip && ip <= last; }
};

}  // namespace pibake
