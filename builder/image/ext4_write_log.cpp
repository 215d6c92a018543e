// A libext2fs io manager that records what it writes: every call goes to unix_io_manager, and the
// bytes each write, discard or zeroout touches are added to a WriteLog. When the log has an
// in-place edit (in_place_edit.h), reads are patched with the base's bytes where the edit says,
// and a write goes through only for the blocks whose bytes change, each saved to the edit's undo
// journal first. It wraps the backing channel the way e2fsprogs' lib/ext2fs/undo_io.c wraps its
// backing manager (same channel set-up, refcount and close order); block numbers are in the
// channel's block size, a negative count is a byte count (unix_io.c's raw_write_blk), and the
// "offset" option moves every position.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "image/ext4_impl.h"
#include "image/in_place_edit.h"
#include "image/write_log.h"

namespace pibake {
namespace {

struct RecordingData {
  io_channel backing = nullptr;
  WriteLog* log = nullptr;
  uint64_t offset = 0;  // bytes: the "offset=N" io option
  // Bytes asked to be read and written through this channel, whether or not an in-place edit left
  // a write out: libext2fs adds bytes_written to the superblock's s_kbytes_written when it closes,
  // so an image edited in place and a fresh one get the same superblock.
  struct_io_stats stats{2, 0, 0, 0};
};

thread_local WriteLog* t_log_for_next_open = nullptr;

RecordingData* data_of(io_channel channel) { return static_cast<RecordingData*>(channel->private_data); }

// Adds [start, start + bytes) to the channel's log. Never throws: these are C callbacks, and an
// exception must not cross libext2fs's frames; EXT2_ET_NO_MEMORY when the log cannot grow.
errcode_t record(io_channel channel, uint64_t start, uint64_t bytes) noexcept {
  try {
    data_of(channel)->log->add(start, bytes);
    return 0;
  } catch (...) {
    return EXT2_ET_NO_MEMORY;
  }
}

// The errcode for an exception from an in-place edit (its journal or the base could not be read
// or written), caught in a C callback: EXT2_ET_NO_MEMORY for std::bad_alloc, else EIO, with the
// exception's message kept in the channel's log (WriteLog::failure) for the caller's error.
errcode_t edit_failure(io_channel channel) noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return EXT2_ET_NO_MEMORY;
  } catch (const std::exception& e) {
    try {
      data_of(channel)->log->set_failure(e.what());
    } catch (...) {
    }
    return EIO;
  } catch (...) {
    return EIO;
  }
}

// Bytes in a request of `count` blocks (a negative count is a byte count, unix_io.c's raw_write_blk).
uint64_t request_bytes(io_channel channel, long long count) {
  return count < 0 ? static_cast<uint64_t>(-count) : static_cast<uint64_t>(count) * channel->block_size;
}

uint64_t block_position(io_channel channel, unsigned long long block) {
  return data_of(channel)->offset + block * static_cast<uint64_t>(channel->block_size);
}

errcode_t record_blocks(io_channel channel, unsigned long long block, long long count) noexcept {
  return record(channel, block_position(channel, block), request_bytes(channel, count));
}

// Before a write the in-place edit does not compare (discard, zeroout, a byte write): its bytes
// are saved to the journal. 0 without an edit.
errcode_t will_write(io_channel channel, uint64_t start, uint64_t bytes) noexcept {
  InPlaceEdit* edit = data_of(channel)->log->edit();
  if (edit == nullptr) return 0;
  try {
    edit->will_write(start, bytes);
    return 0;
  } catch (...) {
    return edit_failure(channel);
  }
}

errcode_t rec_open(const char* name, int flags, io_channel* channel);

errcode_t rec_close(io_channel channel) {
  if (--channel->refcount > 0) return 0;
  RecordingData* d = data_of(channel);
  errcode_t rc = d->backing != nullptr ? io_channel_close(d->backing) : 0;
  delete d;
  ext2fs_free_mem(&channel->name);
  ext2fs_free_mem(&channel);
  return rc;
}

errcode_t rec_set_blksize(io_channel channel, int blksize) {
  errcode_t rc = io_channel_set_blksize(data_of(channel)->backing, blksize);
  if (rc == 0) channel->block_size = blksize;
  return rc;
}

// Reads through the backing channel; in an in-place edit, bytes the previous edit wrote and this
// one has not yet read as the base's.
errcode_t rec_read_blk64(io_channel channel, unsigned long long block, int count, void* buf) {
  data_of(channel)->stats.bytes_read += request_bytes(channel, count);
  errcode_t rc = io_channel_read_blk64(data_of(channel)->backing, block, count, buf);
  InPlaceEdit* edit = data_of(channel)->log->edit();
  if (rc != 0 || edit == nullptr) return rc;
  try {
    edit->patch_read(block_position(channel, block), buf, request_bytes(channel, count));
    return 0;
  } catch (...) {
    return edit_failure(channel);
  }
}

errcode_t rec_read_blk(io_channel channel, unsigned long block, int count, void* buf) {
  return rec_read_blk64(channel, block, count, buf);
}

// Records the write; in an in-place edit, writes only the blocks whose bytes differ from what the
// image holds (read through the backing channel, so its cache is seen), each saved first.
errcode_t rec_write_blk64(io_channel channel, unsigned long long block, int count, const void* buf) {
  if (errcode_t rc = record_blocks(channel, block, count)) return rc;
  RecordingData* d = data_of(channel);
  const uint64_t start = block_position(channel, block), bytes = request_bytes(channel, count);
  d->stats.bytes_written += bytes;
  InPlaceEdit* edit = d->log->edit();
  if (edit == nullptr) return io_channel_write_blk64(d->backing, block, count, buf);
  if (count < 0) {  // a byte count: not whole blocks, written as it is
    if (errcode_t rc = will_write(channel, start, bytes)) return rc;
    return io_channel_write_blk64(d->backing, block, count, buf);
  }
  try {
    std::vector<uint8_t> current(bytes);
    if (errcode_t rc = io_channel_read_blk64(d->backing, block, count, current.data())) return rc;
    errcode_t rc = 0;
    const auto block_size = static_cast<uint64_t>(channel->block_size);
    edit->write_changed(start, static_cast<const uint8_t*>(buf), current.data(), bytes, block_size,
                        [&](uint64_t pos, const uint8_t* data, size_t n) {
                          if (rc == 0) {
                            rc = io_channel_write_blk64(d->backing, block + (pos - start) / block_size,
                                                        static_cast<int>(n / block_size), data);
                          }
                        });
    return rc;
  } catch (...) {
    return edit_failure(channel);
  }
}

errcode_t rec_write_blk(io_channel channel, unsigned long block, int count, const void* buf) {
  return rec_write_blk64(channel, block, count, buf);
}

errcode_t rec_write_byte(io_channel channel, unsigned long offset, int size, const void* buf) {
  RecordingData* d = data_of(channel);
  if (errcode_t rc = record(channel, d->offset + offset, static_cast<uint64_t>(size))) return rc;
  d->stats.bytes_written += static_cast<uint64_t>(size);
  if (errcode_t rc = will_write(channel, d->offset + offset, static_cast<uint64_t>(size))) return rc;
  return io_channel_write_byte(d->backing, offset, size, buf);
}

errcode_t rec_flush(io_channel channel) { return io_channel_flush(data_of(channel)->backing); }

errcode_t rec_set_option(io_channel channel, const char* option, const char* arg) {
  RecordingData* d = data_of(channel);
  errcode_t rc = d->backing->manager->set_option != nullptr ? d->backing->manager->set_option(d->backing, option, arg)
                                                            : EXT2_ET_INVALID_ARGUMENT;
  if (rc == 0 && std::strcmp(option, "offset") == 0 && arg != nullptr) d->offset = std::strtoull(arg, nullptr, 0);
  return rc;
}

errcode_t rec_get_stats(io_channel channel, io_stats* stats) {
  if (stats != nullptr) *stats = &data_of(channel)->stats;
  return 0;
}

errcode_t rec_discard(io_channel channel, unsigned long long block, unsigned long long count) {
  if (errcode_t rc = record_blocks(channel, block, static_cast<long long>(count))) return rc;
  const uint64_t start = block_position(channel, block), bytes = request_bytes(channel, static_cast<long long>(count));
  if (errcode_t rc = will_write(channel, start, bytes)) return rc;
  return io_channel_discard(data_of(channel)->backing, block, count);
}

errcode_t rec_cache_readahead(io_channel channel, unsigned long long block, unsigned long long count) {
  return io_channel_cache_readahead(data_of(channel)->backing, block, count);
}

errcode_t rec_zeroout(io_channel channel, unsigned long long block, unsigned long long count) {
  if (errcode_t rc = record_blocks(channel, block, static_cast<long long>(count))) return rc;
  const uint64_t start = block_position(channel, block), bytes = request_bytes(channel, static_cast<long long>(count));
  if (errcode_t rc = will_write(channel, start, bytes)) return rc;
  return io_channel_zeroout(data_of(channel)->backing, block, count);
}

struct_io_manager g_recording_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "pibake recording I/O manager (over unix)",
    .open = rec_open,
    .close = rec_close,
    .set_blksize = rec_set_blksize,
    .read_blk = rec_read_blk,
    .write_blk = rec_write_blk,
    .flush = rec_flush,
    .write_byte = rec_write_byte,
    .set_option = rec_set_option,
    .get_stats = rec_get_stats,
    .read_blk64 = rec_read_blk64,
    .write_blk64 = rec_write_blk64,
    .discard = rec_discard,
    .cache_readahead = rec_cache_readahead,
    .zeroout = rec_zeroout,
    .reserved = {},
};

errcode_t rec_open(const char* name, int flags, io_channel* channel) {
  WriteLog* log = t_log_for_next_open;
  t_log_for_next_open = nullptr;
  if (log == nullptr || name == nullptr) return EXT2_ET_BAD_DEVICE_NAME;
  io_channel backing = nullptr;
  errcode_t rc = unix_io_manager->open(name, flags, &backing);
  if (rc != 0) return rc;
  io_channel io = nullptr;
  if ((rc = ext2fs_get_mem(sizeof(struct_io_channel), &io)) != 0) {
    io_channel_close(backing);
    return rc;
  }
  std::memset(io, 0, sizeof(struct_io_channel));
  if ((rc = ext2fs_get_mem(std::strlen(name) + 1, &io->name)) != 0) {
    ext2fs_free_mem(&io);
    io_channel_close(backing);
    return rc;
  }
  std::strcpy(io->name, name);
  io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  io->manager = &g_recording_manager;
  io->block_size = backing->block_size;
  io->refcount = 1;
  io->flags = backing->flags;
  io->align = backing->align;
  io->private_data = new (std::nothrow) RecordingData{backing, log, 0, {2, 0, 0, 0}};
  if (io->private_data == nullptr) {
    ext2fs_free_mem(&io->name);
    ext2fs_free_mem(&io);
    io_channel_close(backing);
    return EXT2_ET_NO_MEMORY;
  }
  *channel = io;
  return 0;
}

}  // namespace

io_manager recording_io_manager(WriteLog* log) {
  t_log_for_next_open = log;
  return &g_recording_manager;
}

}  // namespace pibake
