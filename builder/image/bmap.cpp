// Block maps: SEEK_DATA/SEEK_HOLE mapping, bmaptool-compatible rendering and parsing (bmap.h).
// The template mirrors bmap-tools' BmapCreate.py (_bmap_file_start/_bmap_file_end), so a file
// pibake writes is byte-identical to what `bmaptool create` writes for the same ranges.
#include "image/bmap.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr size_t kHashChunk = 4u << 20;
constexpr const char* kZeroChecksum = "0000000000000000000000000000000000000000000000000000000000000000";

// bmap-tools' BmapHelpers.human_size: "1 byte", "N bytes" below 512, else "%.1f KiB|MiB|GiB|TiB".
std::string human_size(uint64_t size) {
  if (size == 1) return "1 byte";
  if (size < 512) return fmt::format("{} bytes", size);
  double s = static_cast<double>(size);
  for (const char* unit : {"KiB", "MiB", "GiB", "TiB"}) {
    s /= 1024.0;
    if (s < 1024) return fmt::format("{:.1f} {}", s, unit);
  }
  return fmt::format("{:.1f} EiB", s);
}

// Python's file.seek(pos); file.write(s) on the text being built: overwrite in place, extending
// the string when `s` runs past its end.
void overwrite(std::string& text, size_t pos, const std::string& s) {
  if (pos + s.size() > text.size()) text.resize(pos + s.size());
  text.replace(pos, s.size(), s);
}

std::string strip_comments(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("<!--", pos);
    if (open == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    size_t close = text.find("-->", open + 4);
    if (close == std::string_view::npos) return out;
    pos = close + 3;
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::string element(const std::string& xml, const std::string& tag, const std::string& name, bool required = true) {
  size_t open = xml.find("<" + tag + ">");
  size_t close = open == std::string::npos ? std::string::npos : xml.find("</" + tag + ">", open);
  if (close == std::string::npos) {
    if (!required) return "";
    throw Error(name + ": not a bmap file: no <" + tag + "> element");
  }
  return trim(std::string_view(xml).substr(open + tag.size() + 2, close - open - tag.size() - 2));
}

uint64_t number(const std::string& s, const std::string& what, const std::string& name) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(name + ": " + what + " \"" + s + "\" is not a number");
  }
  return std::stoull(s);
}

}  // namespace

uint64_t BmapRange::byte_end(uint64_t block_size, uint64_t image_size) const {
  return std::min((last + 1) * block_size, image_size);
}

std::string bmap_path_for(const std::string& image_path) { return image_path + ".bmap"; }

std::vector<ByteRange> data_ranges(int fd, const std::string& name) {
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0) throw Error("cannot seek in " + name + ": " + std::strerror(errno));
  std::vector<ByteRange> out;
  off_t pos = 0;
  while (pos < size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;                                                   // only a hole remains
      if (errno == EINVAL && pos == 0) return {{0, static_cast<uint64_t>(size)}};  // no hole support
      throw Error("cannot map the data of " + name + " (SEEK_DATA): " + std::strerror(errno));
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) throw Error("cannot map the data of " + name + " (SEEK_HOLE): " + std::strerror(errno));
    out.push_back({static_cast<uint64_t>(data), static_cast<uint64_t>(std::min(hole, size))});
    pos = hole;
  }
  return out;
}

std::vector<BmapRange> to_block_ranges(const std::vector<ByteRange>& bytes, uint64_t block_size) {
  std::vector<BmapRange> out;
  for (const ByteRange& r : bytes) {
    if (r.end <= r.start) continue;
    uint64_t first = r.start / block_size, last = (r.end - 1) / block_size;
    if (!out.empty() && first <= out.back().last + 1) {
      out.back().last = std::max(out.back().last, last);
    } else {
      out.push_back({first, last, {}});
    }
  }
  return out;
}

std::vector<BmapRange> split_block_ranges(const std::vector<BmapRange>& ranges, uint64_t split_blocks) {
  if (split_blocks == 0) return ranges;
  std::vector<BmapRange> out;
  for (const BmapRange& r : ranges) {
    for (uint64_t first = r.first; first <= r.last;) {
      uint64_t last = std::min(r.last, (first / split_blocks + 1) * split_blocks - 1);
      out.push_back({first, last, {}});
      first = last + 1;
    }
  }
  return out;
}

namespace {

// The base's hash for `piece` when `reuse` allows taking it (see BmapReuse), else nullptr.
const std::string* reusable_hash(const BmapReuse& reuse, const BmapRange& piece, uint64_t block_size,
                                 uint64_t image_size) {
  if (reuse.all_written || reuse.base == nullptr || reuse.base->image_size != image_size ||
      reuse.base->block_size != block_size) {
    return nullptr;
  }
  const std::vector<BmapRange>& base = reuse.base->ranges;
  auto it = std::lower_bound(base.begin(), base.end(), piece.first,
                             [](const BmapRange& r, uint64_t first) { return r.first < first; });
  if (it == base.end() || it->first != piece.first || it->last != piece.last || it->sha256.empty()) return nullptr;
  uint64_t start = piece.byte_start(block_size), end = piece.byte_end(block_size, image_size);
  // The first written range ending after `start` must begin at or after `end`.
  auto w = std::upper_bound(reuse.written.begin(), reuse.written.end(), start,
                            [](uint64_t pos, const ByteRange& r) { return pos < r.end; });
  if (w != reuse.written.end() && w->start < end) return nullptr;
  return &it->sha256;
}

}  // namespace

Bmap make_bmap(const std::string& image_path, uint64_t split_blocks, const BmapReuse* reuse, BmapWork* work) {
  UniqueFd fd = open_fd(image_path, O_RDONLY);
  Bmap bmap;
  off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size <= 0) throw Error("cannot write a block map for " + image_path + ": the file is empty");
  bmap.image_size = static_cast<uint64_t>(size);
  bmap.blocks_count = (bmap.image_size + bmap.block_size - 1) / bmap.block_size;
  bmap.ranges = split_block_ranges(to_block_ranges(data_ranges(fd.get(), image_path), bmap.block_size), split_blocks);
  // The ranges are read in order: tell the kernel so it reads ahead generously.
  posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf;
  BmapWork done;
  for (BmapRange& r : bmap.ranges) {
    bmap.mapped_blocks += r.last - r.first + 1;
    uint64_t end = r.byte_end(bmap.block_size, bmap.image_size);
    if (const std::string* sha = reuse ? reusable_hash(*reuse, r, bmap.block_size, bmap.image_size) : nullptr) {
      r.sha256 = *sha;
      done.reused_bytes += end - r.byte_start(bmap.block_size);
      continue;
    }
    if (buf.empty()) buf.resize(kHashChunk);
    Sha256 hash;
    for (uint64_t pos = r.byte_start(bmap.block_size); pos < end;) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
      pread_exact(fd.get(), buf.data(), want, pos, image_path);
      hash.update(buf.data(), want);
      pos += want;
      done.hashed_bytes += want;
    }
    r.sha256 = hash.hex_digest();
  }
  if (work != nullptr) *work = done;
  return bmap;
}

std::string render_bmap(const Bmap& bmap) {
  std::string image_human = human_size(bmap.image_size);
  std::string xml = fmt::format(
      "<?xml version=\"1.0\" ?>\n"
      "<!-- This file contains the block map for an image file, which is basically\n"
      "     a list of useful (mapped) block numbers in the image file. In other words,\n"
      "     it lists only those blocks which contain data (boot sector, partition\n"
      "     table, file-system metadata, files, directories, extents, etc). These\n"
      "     blocks have to be copied to the target device. The other blocks do not\n"
      "     contain any useful data and do not have to be copied to the target\n"
      "     device.\n"
      "\n"
      "     The block map an optimization which allows to copy or flash the image to\n"
      "     the image quicker than copying of flashing the entire image. This is\n"
      "     because with bmap less data is copied: <MappedBlocksCount> blocks instead\n"
      "     of <BlocksCount> blocks.\n"
      "\n"
      "     Besides the machine-readable data, this file contains useful commentaries\n"
      "     which contain human-readable information like image size, percentage of\n"
      "     mapped data, etc.\n"
      "\n"
      "     The 'version' attribute is the block map file format version in the\n"
      "     'major.minor' format. The version major number is increased whenever an\n"
      "     incompatible block map format change is made. The minor number changes\n"
      "     in case of minor backward-compatible changes. -->\n"
      "\n"
      "<bmap version=\"2.0\">\n"
      "    <!-- Image size in bytes: {} -->\n"
      "    <ImageSize> {} </ImageSize>\n"
      "\n"
      "    <!-- Size of a block in bytes -->\n"
      "    <BlockSize> {} </BlockSize>\n"
      "\n"
      "    <!-- Count of blocks in the image file -->\n"
      "    <BlocksCount> {} </BlocksCount>\n"
      "\n"
      "    <!-- Count of mapped blocks: ",
      image_human, bmap.image_size, bmap.block_size, bmap.blocks_count);
  size_t count_pos1 = xml.size();
  xml += std::string(image_human.size(), ' ') + " or " + std::string(6, ' ') + "   -->\n";
  xml += "    <MappedBlocksCount> ";
  size_t count_pos2 = xml.size();
  xml += std::string(std::to_string(bmap.blocks_count).size(), ' ') + " </MappedBlocksCount>\n\n";
  xml += "    <!-- Type of checksum used in this file -->\n";
  xml += "    <ChecksumType> sha256 </ChecksumType>\n\n";
  xml += "    <!-- The checksum of this bmap file. When it is calculated, the value of\n";
  xml += "         the checksum has be zero (all ASCII \"0\" symbols).  -->\n";
  xml += "    <BmapFileChecksum> ";
  size_t checksum_pos = xml.size();
  xml += std::string(kZeroChecksum) + " </BmapFileChecksum>\n\n";
  xml += "    <!-- The block map which consists of elements which may either be a\n";
  xml += "         range of blocks or a single block. The 'chksum' attribute\n";
  xml += "         (if present) is the checksum of this blocks range. -->\n";
  xml += "    <BlockMap>\n";
  for (const BmapRange& r : bmap.ranges) {
    std::string chksum = r.sha256.empty() ? "" : " chksum=\"" + r.sha256 + "\"";
    if (r.first != r.last) {
      xml += fmt::format("        <Range{}> {}-{} </Range>\n", chksum, r.first, r.last);
    } else {
      xml += fmt::format("        <Range{}> {} </Range>\n", chksum, r.first);
    }
  }
  xml += "    </BlockMap>\n</bmap>\n";

  double percent = bmap.blocks_count == 0 ? 0.0 : bmap.mapped_blocks * 100.0 / bmap.blocks_count;
  overwrite(xml, count_pos1, fmt::format("{} or {:.1f}%", human_size(bmap.mapped_blocks * bmap.block_size), percent));
  overwrite(xml, count_pos2, std::to_string(bmap.mapped_blocks));
  Sha256 file_hash;
  file_hash.update(xml);  // with the checksum field still all zeros, as bmap-tools hashes it
  overwrite(xml, checksum_pos, file_hash.hex_digest());
  return xml;
}

Bmap parse_bmap(std::string_view text, const std::string& name) {
  std::string xml = strip_comments(text);
  size_t root = xml.find("<bmap version=\"");
  if (root == std::string::npos) throw Error(name + ": not a bmap file: no <bmap version=...> element");
  std::string version = xml.substr(root + 15, xml.find('"', root + 15) - root - 15);
  if (version.empty() || version[0] != '2') {
    throw Error(name + ": bmap format version " + version + " is not supported (pibake reads 2.x)");
  }
  // bmap-tools' _verify_bmap_checksum: the first occurrence of the value, zeroed, then hashed.
  std::string file_sum = element(xml, "BmapFileChecksum", name, /*required=*/false);
  if (!file_sum.empty()) {
    std::string copy(text);
    size_t at = copy.find(file_sum);
    copy.replace(at, file_sum.size(), std::string(file_sum.size(), '0'));
    Sha256 h;
    h.update(copy);
    std::string actual = h.hex_digest();
    if (actual != file_sum)
      throw Error(name + ": the bmap file is damaged (BmapFileChecksum " + file_sum + ", content hashes to " + actual +
                  ")");
  }
  Bmap bmap;
  bmap.image_size = number(element(xml, "ImageSize", name), "ImageSize", name);
  bmap.block_size = number(element(xml, "BlockSize", name), "BlockSize", name);
  bmap.blocks_count = number(element(xml, "BlocksCount", name), "BlocksCount", name);
  uint64_t mapped = number(element(xml, "MappedBlocksCount", name), "MappedBlocksCount", name);
  std::string type = element(xml, "ChecksumType", name);
  if (type != "sha256") throw Error(name + ": checksum type " + type + " is not supported (pibake reads sha256)");
  if (bmap.block_size == 0 || bmap.blocks_count != (bmap.image_size + bmap.block_size - 1) / bmap.block_size) {
    throw Error(name + ": BlocksCount does not match ImageSize / BlockSize");
  }
  size_t pos = xml.find("<BlockMap>");
  size_t end = xml.find("</BlockMap>");
  if (pos == std::string::npos || end == std::string::npos) throw Error(name + ": not a bmap file: no <BlockMap>");
  while ((pos = xml.find("<Range", pos)) != std::string::npos && pos < end) {
    size_t gt = xml.find('>', pos), close = xml.find("</Range>", pos);
    if (gt == std::string::npos || close == std::string::npos) throw Error(name + ": unterminated <Range>");
    BmapRange r;
    std::string attrs = xml.substr(pos + 6, gt - pos - 6);
    if (size_t c = attrs.find("chksum=\""); c != std::string::npos)
      r.sha256 = attrs.substr(c + 8, attrs.find('"', c + 8) - c - 8);
    std::string body = trim(std::string_view(xml).substr(gt + 1, close - gt - 1));
    size_t dash = body.find('-');
    r.first = number(trim(body.substr(0, dash)), "range start", name);
    r.last = dash == std::string::npos ? r.first : number(trim(body.substr(dash + 1)), "range end", name);
    if (r.last < r.first || r.last >= bmap.blocks_count ||
        (!bmap.ranges.empty() && r.first <= bmap.ranges.back().last)) {
      throw Error(
          fmt::format("{}: range {} is out of order or outside the image's {} blocks", name, body, bmap.blocks_count));
    }
    bmap.mapped_blocks += r.last - r.first + 1;
    bmap.ranges.push_back(std::move(r));
    pos = close;
  }
  if (bmap.mapped_blocks != mapped) {
    throw Error(
        fmt::format("{}: MappedBlocksCount is {} but the ranges cover {} blocks", name, mapped, bmap.mapped_blocks));
  }
  return bmap;
}

}  // namespace pibake
