// Fuzz target: Ext4Fs on arbitrary bytes as a filesystem (libext2fs's superblock and descriptor
// parsing, then pibake's check() and path resolution), read-only.
#include "image/ext4.h"
#include "input_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputFile in(data, size);
  if (!in.ok()) return 0;
  try {
    pibake::Ext4Fs fs(in.path(), 0, /*writable=*/false);
    (void)fs.label();
    (void)fs.check();
    for (const char* path : {"/etc/hostname", "/etc/os-release", "/lib/firmware"}) {
      try {
        if (fs.exists(path) && !fs.is_directory(path)) (void)fs.read_file(path);
      } catch (const pibake::Error&) {
      }
    }
  } catch (const pibake::Error&) {
  }
  return 0;
}
