// Release tarballs through libarchive (see archive.h).
#include "codec/archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <vector>

#include "util/error.h"

namespace pibake {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

ArchivePtr open_archive(const std::string& path) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw Error(path + ": " + archive_error_string(a.get()));
  }
  return a;
}

// The member's path relative to `prefix`, or "" when it is not installed. Throws on unsafe entries.
std::string checked_name(const std::string& archive_path, archive_entry* e, const std::string& prefix) {
  const char* raw = archive_entry_pathname(e);
  std::string name = raw ? raw : "";
  const std::string where = archive_path + ": entry \"" + name + "\"";
  if (name.empty() || name[0] == '/') throw Error(where + " has an absolute or empty path");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) throw Error(where + " climbs out with \"..\"");
    start = end + 1;
  }
  mode_t type = archive_entry_filetype(e);
  if (type != AE_IFREG && type != AE_IFDIR)
    throw Error(where + " is a link or special file, which pibake never installs");
  if (archive_entry_hardlink(e) != nullptr) throw Error(where + " is a hard link, which pibake never installs");
  if (type == AE_IFDIR) return "";
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  if (name.compare(0, prefix.size(), prefix) != 0) return "";
  std::string rel = name.substr(prefix.size());
  return rel.find('/') == std::string::npos ? rel : "";  // only direct members of the prefix
}

}  // namespace

void for_each_archive_file(const std::string& archive_path, const std::string& prefix,
                           const std::function<void(const std::string&, const MemberReader&, uint32_t)>& fn,
                           bool validated) {
  // Validate every entry first: a bad archive installs nothing.
  if (!validated) archive_install_bytes(archive_path, prefix);
  ArchivePtr a = open_archive(archive_path);
  archive_entry* e = nullptr;
  int rc;
  const MemberReader read = [&](char* buf, size_t size) {
    la_ssize_t n = archive_read_data(a.get(), buf, size);
    if (n < 0) throw Error(archive_path + ": " + archive_error_string(a.get()));
    return static_cast<size_t>(n);
  };
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    std::string rel = checked_name(archive_path, e, prefix);
    if (rel.empty()) continue;
    fn(rel, read, static_cast<uint32_t>(archive_entry_perm(e)));
  }
  if (rc != ARCHIVE_EOF) throw Error(archive_path + ": " + archive_error_string(a.get()));
}

uint64_t archive_install_bytes(const std::string& archive_path, const std::string& prefix) {
  ArchivePtr a = open_archive(archive_path);
  archive_entry* e = nullptr;
  uint64_t total = 0;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    if (!checked_name(archive_path, e, prefix).empty()) total += static_cast<uint64_t>(archive_entry_size(e));
    archive_read_data_skip(a.get());
  }
  if (rc != ARCHIVE_EOF) throw Error(archive_path + ": " + archive_error_string(a.get()));
  return total;
}

}  // namespace pibake
