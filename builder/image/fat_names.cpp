// FAT names and timestamps without I/O: UTF-8 <-> UCS-2 for long names, VFAT long-name (LFN)
// slots and their checksum, 8.3 short-name generation as Windows and Linux do it, DOS dates.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "image/fat_impl.h"
#include "util/error.h"

namespace pibake {
namespace {

// Microsoft FAT spec, "Long Directory Entries": at most 255 UCS-2 characters, 13 per slot.
constexpr size_t kMaxLongName = 255;
constexpr size_t kLfnCharOffsets[kCharsPerLfn] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};

bool is_ascii_lower(char16_t c) { return c >= 'a' && c <= 'z'; }
bool is_ascii_upper(char16_t c) { return c >= 'A' && c <= 'Z'; }
char16_t ascii_upper(char16_t c) { return is_ascii_lower(c) ? static_cast<char16_t>(c - 32) : c; }

// Microsoft FAT spec, "Short Names": besides letters and digits, these are legal in DIR_Name.
// Anything else a long name may hold (+ , ; = [ ] space, non-ASCII) makes the 8.3 form lossy.
bool is_short_char(char16_t c) {
  if (is_ascii_lower(c) || is_ascii_upper(c) || (c >= '0' && c <= '9')) return true;
  return c < 0x80 && std::strchr("$%'-_@~`!(){}^#&", static_cast<char>(c)) != nullptr && c != 0;
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", v);
  return buf;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

ShortName make_short(const std::u16string& base, const std::u16string& ext) {
  ShortName sn;
  sn.fill(' ');
  for (size_t i = 0; i < base.size() && i < 8; ++i) sn[i] = static_cast<uint8_t>(ascii_upper(base[i]));
  for (size_t i = 0; i < ext.size() && i < 3; ++i) sn[8 + i] = static_cast<uint8_t>(ascii_upper(ext[i]));
  return sn;
}

bool taken_by(const ShortName& sn, const std::vector<ShortName>& taken) {
  return std::find(taken.begin(), taken.end(), sn) != taken.end();
}

// True when the letters of `s` are all one case (or there are none); *lower says which.
bool uniform_case(const std::u16string& s, bool* lower) {
  bool has_lower = std::any_of(s.begin(), s.end(), is_ascii_lower);
  bool has_upper = std::any_of(s.begin(), s.end(), is_ascii_upper);
  *lower = has_lower;
  return !(has_lower && has_upper);
}

}  // namespace

std::u16string utf8_to_ucs2(std::string_view s) {
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<uint8_t>(s[i]);
    uint32_t cp = 0;
    size_t len = 0;
    if (b < 0x80) {
      cp = b, len = 1;
    } else if ((b & 0xE0) == 0xC0) {
      cp = b & 0x1F, len = 2;
    } else if ((b & 0xF0) == 0xE0) {
      cp = b & 0x0F, len = 3;
    } else if ((b & 0xF8) == 0xF0) {
      cp = b & 0x07, len = 4;
    } else {
      throw Error("is not valid UTF-8");
    }
    if (i + len > s.size()) throw Error("is not valid UTF-8");
    for (size_t k = 1; k < len; ++k) {
      auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) throw Error("is not valid UTF-8");
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLen[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) throw Error("is not valid UTF-8");
    // FAT long names are UCS-2 as far as pibake goes: keep to the Basic Multilingual Plane.
    if (cp > 0xFFFF) throw Error("contains " + hex(cp) + ", outside the Basic Multilingual Plane");
    out += static_cast<char16_t>(cp);
    i += len;
  }
  return out;
}

std::string ucs2_to_utf8(std::u16string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    uint32_t c = s[i];
    // Windows stores UTF-16; decode pairs so names it wrote still read back.
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    append_utf8(out, c);
  }
  return out;
}

void check_long_name(std::string_view name) {
  if (name.empty() || name == "." || name == "..") throw Error("is not a valid file name");
  std::u16string u = utf8_to_ucs2(name);
  if (u.size() > kMaxLongName) throw Error("is longer than FAT's 255 characters");
  for (char16_t c : u) {
    // Microsoft FAT spec, "Long Names": these are the characters a long name may not hold.
    if (c < 0x20 || (c < 0x80 && std::strchr("\"*/:<>?\\|", static_cast<char>(c)) != nullptr))
      throw Error("contains a character FAT does not allow (" + hex(c) + ")");
  }
  // Windows and Linux silently drop trailing dots and spaces; refuse rather than rename.
  if (u.back() == '.' || u.back() == ' ') throw Error("ends with a dot or a space, which FAT drops");
}

std::string short_name_to_string(const ShortName& sn, uint8_t case_bits) {
  auto part = [&](size_t from, size_t len, bool lower) {
    std::string out;
    size_t end = from + len;
    while (end > from && sn[end - 1] == ' ') --end;
    for (size_t i = from; i < end; ++i) {
      uint8_t c = sn[i];
      if (i == 0 && c == 0x05) c = 0xE5;  // DIR_Name[0] == 0x05 stands for a real 0xE5
      if (lower && c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c + 32);
      append_utf8(out, c);  // OEM bytes above 0x7F shown as Latin-1: names stay valid UTF-8
    }
    return out;
  };
  std::string base = part(0, 8, case_bits & kCaseLowerBase);
  std::string ext = part(8, 3, case_bits & kCaseLowerExt);
  return ext.empty() ? base : base + "." + ext;
}

uint8_t lfn_checksum(const ShortName& sn) {
  // Microsoft FAT spec, "ChkSum": rotate right by one, add the next byte.
  uint8_t sum = 0;
  for (uint8_t c : sn) sum = static_cast<uint8_t>(((sum & 1) << 7) + (sum >> 1) + c);
  return sum;
}

bool names_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

NewName make_new_name(std::string_view name, const std::vector<ShortName>& taken) {
  std::u16string u = utf8_to_ucs2(name);
  NewName out;
  std::array<uint8_t, kSlotSize> entry{};

  // A name that already is a legal 8.3 name needs no numeric tail, and no LFN slots either
  // when each part is in one case (the NT case bits in DIR_NTRes record lowercase).
  size_t dot = u.find(u'.');
  bool one_dot = dot == std::u16string::npos || u.find(u'.', dot + 1) == std::u16string::npos;
  std::u16string base = u.substr(0, dot), ext = dot == std::u16string::npos ? u"" : u.substr(dot + 1);
  bool fits = one_dot && !base.empty() && base.size() <= 8 && ext.size() <= 3 &&
              (dot == std::u16string::npos || !ext.empty()) &&
              std::all_of(u.begin(), u.end(), [](char16_t c) { return c == '.' || is_short_char(c); });
  ShortName sn{};
  bool need_lfn = true;
  if (fits && !taken_by(make_short(base, ext), taken)) {
    sn = make_short(base, ext);
    bool base_lower = false, ext_lower = false;
    if (uniform_case(base, &base_lower) && uniform_case(ext, &ext_lower)) {
      need_lfn = false;
      entry[12] = static_cast<uint8_t>((base_lower ? kCaseLowerBase : 0) | (ext_lower ? kCaseLowerExt : 0));
    }
  } else {
    // Microsoft FAT spec, "Basis-Name Generation Algorithm": uppercase, drop spaces and leading
    // periods, lossy characters become '_', primary part before the last period (its own
    // periods dropped) up to 8, extension up to 3; then the "~N" numeric tail.
    std::u16string stripped;
    for (char16_t c : u)
      if (c != ' ' && !(c == '.' && stripped.empty())) stripped += c;
    size_t last_dot = stripped.rfind(u'.');
    std::u16string b, e;
    for (size_t i = 0; i < stripped.size(); ++i) {
      char16_t c = stripped[i];
      if (c == '.') continue;
      char16_t mapped = is_short_char(c) ? ascii_upper(c) : u'_';
      if (last_dot != std::u16string::npos && i > last_dot) {
        if (e.size() < 3) e += mapped;
      } else if (b.size() < 8) {
        b += mapped;
      }
    }
    if (b.empty()) b = u"_";
    for (uint32_t n = 1;; ++n) {
      if (n > 999999) throw Error("has no free 8.3 alias left in its directory");
      std::string tail = "~" + std::to_string(n);
      std::u16string candidate = b.substr(0, std::min(b.size(), 8 - tail.size()));
      candidate.append(tail.begin(), tail.end());
      sn = make_short(candidate, e);
      if (!taken_by(sn, taken)) break;
    }
  }

  if (need_lfn) {
    size_t count = (u.size() + kCharsPerLfn - 1) / kCharsPerLfn;
    uint8_t sum = lfn_checksum(sn);
    for (size_t k = count; k >= 1; --k) {
      std::array<uint8_t, kSlotSize> lfn{};
      lfn[0] = static_cast<uint8_t>(k | (k == count ? kLfnLast : 0));
      lfn[11] = kAttrLongName;
      lfn[13] = sum;
      for (size_t j = 0; j < kCharsPerLfn; ++j) {
        size_t i = (k - 1) * kCharsPerLfn + j;
        // The name ends with one 0x0000; the rest of the last slot is 0xFFFF padding.
        uint16_t c = i < u.size() ? u[i] : (i == u.size() ? 0x0000 : 0xFFFF);
        put16(&lfn[kLfnCharOffsets[j]], c);
      }
      out.slots.push_back(lfn);
    }
  }
  std::copy(sn.begin(), sn.end(), entry.begin());
  out.slots.push_back(entry);
  return out;
}

void lfn_chars(const uint8_t* slot, char16_t* chars) {
  for (size_t j = 0; j < kCharsPerLfn; ++j) chars[j] = get16(slot + kLfnCharOffsets[j]);
}

DosTime to_dos_time(int64_t t) {
  // DOS dates cover 1980-01-01 .. 2107-12-31; clamp rather than wrap.
  constexpr int64_t kMin = 315532800, kMax = 4354819198;
  t = std::clamp(t, kMin, kMax);
  int64_t days = t / 86400, secs = t % 86400;
  // Howard Hinnant's civil_from_days: days since 1970-01-01 to year/month/day.
  int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  DosTime d;
  d.date = static_cast<uint16_t>(((year - 1980) << 9) | (month << 5) | day);
  d.time = static_cast<uint16_t>(((secs / 3600) << 11) | (((secs / 60) % 60) << 5) | ((secs % 60) / 2));
  d.tenths = static_cast<uint8_t>((secs % 2) * 100);  // DIR_CrtTimeTenth holds the odd second
  return d;
}

}  // namespace pibake
