// Outputs that appear under their final name only when complete (style.md rule 7): written as
// ".<name>.tmp" beside the final path, renamed on commit, removed on error, exception or signal.
#pragma once

#include <sys/types.h>

#include <string>

namespace pibake {

class AtomicFile {
 public:
  // Creates (truncating a stale one) the temporary file ".<name>.tmp" next to `final_path`.
  AtomicFile(std::string final_path, mode_t mode);
  ~AtomicFile();  // not committed: closes and unlinks the temporary file
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_; }
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
  int fd_ = -1;
  int slot_ = -1;  // index in the signal-cleanup registry
  bool committed_ = false;
};

// Writes `data` to `path` atomically with `mode` (used for small outputs: kubeconfig, spec, bmap).
void write_file_atomic(const std::string& path, const std::string& data, mode_t mode);

// SIGINT, SIGTERM and SIGHUP remove every uncommitted temporary file, then the process dies of
// the signal as usual (exit status 128+N). Call once, early in main.
void install_interrupt_cleanup();

// For tests and progress checks: true once one of those signals arrived.
bool interrupted();

}  // namespace pibake
