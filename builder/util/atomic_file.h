// Outputs that appear under their final name only when complete (docs/conventions.md, "Atomic outputs"): written as
// ".<name>.tmp" beside the final path, renamed on commit, removed on error, exception or signal.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/unique_fd.h"

namespace pibake {

class AtomicFile {
 public:
  // Creates (truncating a stale one) the temporary file ".<name>.tmp" next to `final_path`.
  AtomicFile(std::string final_path, mode_t mode);
  ~AtomicFile();  // not committed: closes and unlinks the temporary file
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_.get(); }
  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }

  // Closes the descriptor (other libraries may reopen temp_path() meanwhile) without committing.
  void close_fd();
  // fsyncs, renames to the final name, fsyncs the directory. Throws pibake::Error on failure
  // (and the temporary is removed by the destructor).
  void commit();

 private:
  std::string final_path_;
  std::string temp_path_;
  UniqueFd fd_;
  int slot_ = -1;  // index in the signal-cleanup registry
  bool committed_ = false;
};

// Writes `data` to `path` atomically with `mode` (used for small outputs: kubeconfig, spec, bmap).
void write_file_atomic(const std::string& path, const std::string& data, mode_t mode);

// fsync(2)s the directory `dir`, so that the renames and links made in it last across a power
// loss. Throws pibake::Error naming it when it cannot be opened or synced.
void fsync_directory(const std::string& dir);

// Error messages name the user's file, never the temporary one: `message` with every mention of
// final_path's temporary (".<name>.tmp" beside it) replaced by final_path itself. For the catch
// blocks around code that works on AtomicFile::temp_path().
std::string mention_final_path(std::string message, const std::string& final_path);
// The same for a working file of another name (an image edited in place under
// ".<name>.in-place", pipeline/in_place.h): every mention of `working_path` becomes final_path.
std::string mention_final_path(std::string message, const std::string& final_path, const std::string& working_path);

// "<dir>/.<name><suffix>" for `path` "<dir>/<name>": the hidden name beside an output under which
// its working files live (AtomicFile's ".tmp", pipeline/in_place.h's records and journals).
std::string hidden_name_beside(const std::string& path, const std::string& suffix);

// True for a name AtomicFile gives its temporaries (".<name>.tmp"); `final_name` gets "<name>".
bool is_temp_name(const std::string& file_name, std::string* final_name = nullptr);

// SIGINT, SIGTERM and SIGHUP remove every uncommitted temporary file, then the process dies of
// the signal as usual (exit status 128+N). SIGXFSZ (a write past the file-size limit, RLIMIT_FSIZE)
// is ignored, so such a write fails with EFBIG and ends in the usual error, clean-up included,
// instead of killing the process with its temporaries in place. Call once, early in main.
void install_interrupt_cleanup();

// For tests and progress checks: true once one of those signals arrived.
bool interrupted();

}  // namespace pibake
