// Fuzz target: read_partition_table (libfdisk, then pibake's layout checks) on arbitrary bytes as a
// disk image. pibake::Error is the expected way to refuse; anything else is a finding.
#include "image/partitions.h"
#include "input_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputFile in(data, size);
  if (!in.ok()) return 0;
  try {
    pibake::PartitionTable t = pibake::read_partition_table(in.path());
    // What was accepted must be self-consistent: inside the file, no overlaps.
    for (const pibake::Partition& p : t.partitions) {
      if (p.size == 0 || p.end() > t.image_size || p.end() < p.start) __builtin_trap();
    }
    (void)pibake::describe(t);
  } catch (const pibake::Error&) {
  }
  return 0;
}
