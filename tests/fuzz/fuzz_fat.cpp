// Fuzz target: FatFs on arbitrary bytes as a filesystem: open (boot sector, FAT), check() (every
// chain and directory), and reading the files of the root directory.
#include "image/fat.h"
#include "input_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputFile in(data, size);
  if (!in.ok()) return 0;
  try {
    pibake::FatFs fs(in.path(), 0, size, /*writable=*/false);
    (void)fs.label();
    (void)fs.check();
    for (const pibake::FatEntry& e : fs.list("/")) {
      try {
        if (e.is_directory) {
          (void)fs.list(e.name);
        } else {
          (void)fs.read_file(e.name);
        }
      } catch (const pibake::Error&) {
      }
    }
  } catch (const pibake::Error&) {
  }
  return 0;
}
