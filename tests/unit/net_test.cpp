// Unit tests for IPv4 and CIDR parsing and range arithmetic (builder/spec/net.h).
#include "spec/net.h"

#include <catch2/catch.hpp>

namespace pibake {
namespace {

uint32_t ip(const char* text) {
  std::optional<Ipv4> parsed = Ipv4::parse(text);
  REQUIRE(parsed);
  return parsed->value;
}

Cidr cidr(const char* text) {
  std::optional<Cidr> parsed = Cidr::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

TEST_CASE("An IPv4 address parses into its 32-bit value", "[net]") {
  CHECK(ip("10.0.0.1") == 0x0a000001u);
  CHECK(ip("0.0.0.0") == 0u);
  CHECK(ip("255.255.255.255") == 0xffffffffu);
  CHECK(ip("192.168.100.200") == 0xc0a864c8u);
}

TEST_CASE("An IPv4 address prints as the dotted quad it was parsed from", "[net]") {
  for (const char* text : {"10.0.0.1", "0.0.0.0", "255.255.255.255", "172.16.5.10"}) {
    CHECK(Ipv4::parse(text)->str() == text);
  }
}

TEST_CASE("IPv4 parsing rejects anything but four plain decimal octets", "[net]") {
  const char* bad = GENERATE("256.0.0.1", "1.2.3.256", "1000.0.0.1", "1.2.3", "1.2.3.4.5", "", "1..2.3", "1.2.3.",
                             ".1.2.3", "010.0.0.1", "1.02.3.4", "00.0.0.0", " 1.2.3.4", "1.2.3.4 ", "1. 2.3.4",
                             "+1.2.3.4", "1.2.3.-4", "a.b.c.d", "0x1.2.3.4", "1.2.3.4/24", "1,2,3,4", "1.2.3.4\n");
  INFO("input: \"" << bad << "\"");
  CHECK_FALSE(Ipv4::parse(bad));
}

TEST_CASE("IPv4 addresses compare by value", "[net]") {
  CHECK(Ipv4{ip("10.0.0.2")} < Ipv4{ip("10.0.0.10")});
  CHECK(Ipv4{ip("9.255.255.255")} < Ipv4{ip("10.0.0.0")});
  CHECK(Ipv4{ip("10.0.0.2")} == Ipv4{ip("10.0.0.2")});
  CHECK(Ipv4{ip("10.0.0.2")} != Ipv4{ip("10.0.0.3")});
}

TEST_CASE("A CIDR range parses into its base and prefix", "[net]") {
  Cidr c = cidr("10.0.0.0/24");
  CHECK(c.base.value == 0x0a000000u);
  CHECK(c.prefix == 24);
  CHECK(cidr("0.0.0.0/0").prefix == 0);
  CHECK(cidr("10.0.0.7/32").base.value == 0x0a000007u);
  CHECK(cidr("10.96.0.0/12").str() == "10.96.0.0/12");
}

TEST_CASE("CIDR parsing rejects host bits, bad prefixes and missing parts", "[net]") {
  const char* bad = GENERATE("10.0.0.5/24", "10.0.0.0/4", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0", "/24", "10.0.0.0/024",
                             "10.0.0.0/ 24", "10.0.0.0/24 ", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/24/24",
                             "10.0.0/24", "10.0.0.256/24", "10.0.0.0/2a");
  INFO("input: \"" << bad << "\"");
  CHECK_FALSE(Cidr::parse(bad));
}

TEST_CASE("A CIDR range knows its netmask, broadcast address and size", "[net]") {
  Cidr c = cidr("10.0.0.0/24");
  CHECK(c.netmask_address().str() == "255.255.255.0");
  CHECK(c.broadcast().str() == "10.0.0.255");
  CHECK(c.size() == 256);
  CHECK(c.host_count() == 254);

  CHECK(cidr("0.0.0.0/0").netmask() == 0u);  // no undefined 32-bit shift
  CHECK(cidr("0.0.0.0/0").broadcast().str() == "255.255.255.255");
  CHECK(cidr("0.0.0.0/0").size() == (uint64_t{1} << 32));
  CHECK(cidr("10.0.0.7/32").netmask() == 0xffffffffu);
  CHECK(cidr("10.0.0.7/32").broadcast().str() == "10.0.0.7");
  CHECK(cidr("10.96.0.0/12").broadcast().str() == "10.111.255.255");
}

TEST_CASE("Only ranges of four or more addresses have host addresses", "[net]") {
  CHECK(cidr("10.0.0.0/30").host_count() == 2);
  CHECK(cidr("10.0.0.0/31").host_count() == 0);
  CHECK(cidr("10.0.0.0/32").host_count() == 0);
  CHECK(cidr("10.0.0.0/8").host_count() == 16777214);
}

TEST_CASE("A CIDR range contains exactly the addresses from its base to its broadcast", "[net]") {
  Cidr c = cidr("10.0.0.0/24");
  CHECK(c.contains(*Ipv4::parse("10.0.0.0")));
  CHECK(c.contains(*Ipv4::parse("10.0.0.255")));
  CHECK_FALSE(c.contains(*Ipv4::parse("10.0.1.0")));
  CHECK_FALSE(c.contains(*Ipv4::parse("9.255.255.255")));
  CHECK(cidr("0.0.0.0/0").contains(*Ipv4::parse("203.0.113.9")));
  CHECK(cidr("10.0.0.7/32").contains(*Ipv4::parse("10.0.0.7")));
  CHECK_FALSE(cidr("10.0.0.7/32").contains(*Ipv4::parse("10.0.0.6")));
}

TEST_CASE("CIDR ranges overlap when one nests in the other, in either order", "[net]") {
  CHECK(cidr("10.0.0.0/8").overlaps(cidr("10.244.0.0/16")));
  CHECK(cidr("10.244.0.0/16").overlaps(cidr("10.0.0.0/8")));
  CHECK(cidr("10.0.0.0/24").overlaps(cidr("10.0.0.0/24")));
  CHECK(cidr("0.0.0.0/0").overlaps(cidr("192.168.1.0/24")));
  CHECK_FALSE(cidr("10.0.0.0/24").overlaps(cidr("10.0.1.0/24")));  // adjacent
  CHECK_FALSE(cidr("10.96.0.0/12").overlaps(cidr("10.244.0.0/16")));
  CHECK_FALSE(cidr("10.0.0.0/24").overlaps(cidr("10.244.0.0/16")));
}

TEST_CASE("The k-th address of a range counts from its base", "[net]") {
  Cidr c = cidr("10.0.0.0/24");
  CHECK(c.at(0).str() == "10.0.0.0");
  CHECK(c.at(1).str() == "10.0.0.1");
  CHECK(c.at(255).str() == "10.0.0.255");
  CHECK(cidr("192.168.4.0/22").at(300).str() == "192.168.5.44");
}

TEST_CASE("An address range parses FIRST-LAST and contains both ends", "[net]") {
  std::optional<Ipv4Range> r = Ipv4Range::parse("10.0.0.100-10.0.0.200");
  REQUIRE(r);
  CHECK(r->str() == "10.0.0.100-10.0.0.200");
  CHECK(r->contains(*Ipv4::parse("10.0.0.100")));
  CHECK(r->contains(*Ipv4::parse("10.0.0.200")));
  CHECK_FALSE(r->contains(*Ipv4::parse("10.0.0.99")));
  CHECK_FALSE(r->contains(*Ipv4::parse("10.0.0.201")));
  // Syntax only: a reversed range parses, and validate() reports it.
  CHECK(Ipv4Range::parse("10.0.0.200-10.0.0.100"));
}

TEST_CASE("Address range parsing rejects spaces, other separators and bad addresses", "[net]") {
  const char* bad = GENERATE("10.0.0.100 - 10.0.0.200", "10.0.0.100..10.0.0.200", "10.0.0.100", "10.0.0.100-",
                             "-10.0.0.200", "10.0.0.100-10.0.0.300", "10.0.0.1-10.0.0.2-10.0.0.3", "");
  INFO("input: \"" << bad << "\"");
  CHECK_FALSE(Ipv4Range::parse(bad));
}

}  // namespace
}  // namespace pibake
