// Small text helpers (see text.h).
#include "util/text.h"

#include <algorithm>
#include <cctype>

namespace pibake {

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

namespace {

// -1, 0 or 1: `a` against `b` in natural order, without the final byte-wise tie-break.
int natural_compare(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      // Compared as numbers of any length (std::stoull would throw on 21 digits): without their
      // leading zeros, the shorter is the smaller, then digit by digit.
      std::string_view x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
      x.remove_prefix(std::min(x.find_first_not_of('0'), x.size()));
      y.remove_prefix(std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (x != y) return x < y ? -1 : 1;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
      ++i;
      ++j;
    }
  }
  size_t left_a = a.size() - i, left_b = b.size() - j;
  return left_a == left_b ? 0 : (left_a < left_b ? -1 : 1);
}

}  // namespace

bool natural_less(std::string_view a, std::string_view b) {
  int c = natural_compare(a, b);
  return c != 0 ? c < 0 : a < b;
}

}  // namespace pibake
