// OCI image layouts in tar archives (see oci_archive.h).
#include "codec/oci_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class TarWriter {
 public:
  TarWriter(int fd, const std::string& dest) : a_(archive_write_new()), dest_(dest) {
    if (!a_ || archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_open_fd(a_.get(), fd) != ARCHIVE_OK) {
      fail("cannot start the archive");
    }
  }

  void header(const std::string& name, uint64_t size) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e.get(), 0, 0);
    if (archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) fail(name);
  }

  void text(const std::string& name, const std::string& content) {
    header(name, content.size());
    data(content.data(), content.size(), name);
  }

  // Streams the file at `path` (which must be `size` bytes) as the member `name`.
  void file(const std::string& name, const std::string& path, uint64_t size) {
    UniqueFd in(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw Error(path + ": " + std::strerror(errno));
    header(name, size);
    std::vector<char> buf(1 << 20);
    uint64_t done = 0;
    ssize_t n;
    while ((n = read(in.get(), buf.data(), buf.size())) > 0) {
      done += static_cast<uint64_t>(n);
      if (done > size) break;
      data(buf.data(), static_cast<size_t>(n), name);
    }
    if (n < 0) throw Error(path + ": " + std::strerror(errno));
    if (done != size) throw Error(dest_ + ": the cached blob " + path + " is not the size its manifest gives");
  }

  void close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("closing");
  }

 private:
  void data(const char* p, size_t n, const std::string& name) {
    if (archive_write_data(a_.get(), p, n) != static_cast<la_ssize_t>(n)) fail(name);
  }
  [[noreturn]] void fail(const std::string& what) {
    throw Error("cannot write " + dest_ + " (" + what + "): " + (a_ ? archive_error_string(a_.get()) ?: "" : ""));
  }

  std::unique_ptr<archive, ArchiveDeleter> a_;
  std::string dest_;
};

}  // namespace

void write_oci_archive(const PulledImage& image, const std::string& dest) {
  const ImageReference ref = parse_image_reference(image.reference);
  nlohmann::ordered_json index = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       {{{"mediaType", image.manifest.media_type},
         {"digest", image.manifest.digest},
         {"size", image.manifest.size},
         {"annotations",
          {{"io.containerd.image.name", image.reference}, {"org.opencontainers.image.ref.name", ref.tag}}}}}}};
  AtomicFile out(dest, 0644);
  {
    TarWriter tar(out.fd(), dest);
    tar.text("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    tar.text("index.json", index.dump());
    tar.file("blobs/sha256/" + image.manifest.digest.substr(7), image.manifest.path, image.manifest.size);
    std::vector<std::string> written;
    for (const OciBlob& b : image.blobs) {
      // A layer listed twice in one manifest (an empty layer) goes in once.
      bool seen = false;
      for (const std::string& w : written) seen = seen || w == b.digest;
      if (seen) continue;
      written.push_back(b.digest);
      tar.file("blobs/sha256/" + b.digest.substr(7), b.path, b.size);
    }
    tar.close();
  }
  out.commit();
}

}  // namespace pibake
