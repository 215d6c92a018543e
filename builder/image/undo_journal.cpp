// UndoJournal and roll_back_journal (undo_journal.h).
#include "image/undo_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/files.h"
#include "util/little_endian.h"

namespace pibake {
namespace {

constexpr char kMagic[16] = {'p', 'i', 'b', 'a', 'k', 'e', '-', 'u', 'n', 'd', 'o', '-', '1', '\n', 0, 0};
constexpr uint64_t kRecordBytes = 1ull << 20;  // bytes of image data per record at most

}  // namespace

UndoJournal::UndoJournal(int image_fd, uint64_t image_size, std::string journal_path)
    : image_fd_(image_fd), image_size_(image_size), path_(std::move(journal_path)) {
  fd_.reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd_) throw Error("cannot create " + path_ + ": " + std::strerror(errno));
  try {
    pwrite_exact(fd_.get(), kMagic, sizeof kMagic, 0, path_);
  } catch (const Error&) {
    unlink(path_.c_str());  // nothing saved yet: no journal is left behind
    throw;
  }
  journal_bytes_ = sizeof kMagic;
}

void UndoJournal::save(uint64_t start, uint64_t length) {
  if (start >= image_size_ || length == 0) return;
  const uint64_t end = start + std::min(length, image_size_ - start);
  saved_.for_each_outside(start, end, [&](uint64_t from, uint64_t to) { append(from, to); });
  saved_.add(start, end);
}

void UndoJournal::append(uint64_t start, uint64_t end) {
  std::vector<uint8_t> buf;
  for (uint64_t pos = start; pos < end;) {
    uint64_t n = std::min(kRecordBytes, end - pos);
    buf.resize(16 + n);
    if (pread_up_to(image_fd_, buf.data() + 16, n, pos, path_) != n) {
      throw Error(path_ + ": the image ended before byte " + std::to_string(pos + n));
    }
    put64(buf.data(), pos);
    put64(buf.data() + 8, n);
    pwrite_exact(fd_.get(), buf.data(), buf.size(), journal_bytes_, path_);
    journal_bytes_ += buf.size();
    saved_bytes_ += n;
    pos += n;
  }
}

uint64_t roll_back_journal(const std::string& image_path, const std::string& journal_path) {
  UniqueFd journal(open(journal_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!journal) throw Error("cannot open " + journal_path + ": " + std::strerror(errno));
  UniqueFd image(open(image_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!image) throw Error("cannot open " + image_path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(image.get(), &st) != 0) throw Error(image_path + ": " + std::strerror(errno));
  const uint64_t image_size = static_cast<uint64_t>(st.st_size);
  uint8_t head[16];
  const size_t got = pread_up_to(journal.get(), head, sizeof head, 0, journal_path);
  if (std::memcmp(head, kMagic, got) != 0) throw MalformedJournal(journal_path + " is not a pibake undo journal");
  if (got < sizeof head) return 0;  // killed while creating it: nothing was saved, so nothing written
  uint64_t pos = sizeof head, restored = 0;
  std::vector<uint8_t> buf, current;
  for (;;) {
    if (pread_up_to(journal.get(), head, sizeof head, pos, journal_path) != sizeof head) break;
    uint64_t offset = get64(head), length = get64(head + 8);
    if (length == 0 || length > kRecordBytes || offset > image_size || length > image_size - offset) {
      throw MalformedJournal(journal_path + ": a record at byte " + std::to_string(pos) + " lies outside " +
                             image_path);
    }
    buf.resize(length);
    if (pread_up_to(journal.get(), buf.data(), length, pos + 16, journal_path) != length) break;  // cut short
    pos += 16 + length;
    // Bytes the image still holds (a write that failed, or never came) are left alone, so a
    // rollback writes no more than the edit did.
    current.resize(length);
    if (pread_up_to(image.get(), current.data(), length, offset, image_path) == length && current == buf) continue;
    pwrite_exact(image.get(), buf.data(), length, offset, image_path);
    restored += length;
  }
  if (fsync(image.get()) != 0) throw Error(image_path + ": " + std::strerror(errno));
  return restored;
}

}  // namespace pibake
