// A libext2fs io manager that records what it writes: every call goes to unix_io_manager, and the
// bytes each write, discard or zeroout touches are added to a WriteLog. It wraps the backing
// channel the way e2fsprogs' lib/ext2fs/undo_io.c wraps its backing manager (same channel set-up,
// refcount and close order); block numbers are in the channel's block size, a negative count is
// a byte count (unix_io.c's raw_write_blk), and the "offset" option moves every position.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "image/ext4_impl.h"
#include "image/write_log.h"

namespace pibake {
namespace {

struct RecordingData {
  io_channel backing = nullptr;
  WriteLog* log = nullptr;
  uint64_t offset = 0;  // bytes: the "offset=N" io option
};

thread_local WriteLog* t_log_for_next_open = nullptr;

RecordingData* data_of(io_channel channel) { return static_cast<RecordingData*>(channel->private_data); }

// Adds [start, start + bytes) to the channel's log (which first saves those bytes to its undo
// journal, if it has one). Never throws: these are C callbacks, and an exception must not cross
// libext2fs's frames; EXT2_ET_NO_MEMORY when the log cannot grow, an errno when the journal
// cannot save the bytes (the write is then not made).
errcode_t record(io_channel channel, uint64_t start, uint64_t bytes) noexcept {
  try {
    data_of(channel)->log->add(start, bytes);
    return 0;
  } catch (const std::bad_alloc&) {
    return EXT2_ET_NO_MEMORY;
  } catch (...) {
    // The undo journal could not save the bytes (util/error.h's Error after a failed read or
    // write): report the write as failed, with the errno of that failure when it is still set.
    return errno != 0 ? errno : EIO;
  }
}

errcode_t record_blocks(io_channel channel, unsigned long long block, long long count) noexcept {
  RecordingData* d = data_of(channel);
  uint64_t bytes = count < 0 ? static_cast<uint64_t>(-count) : static_cast<uint64_t>(count) * channel->block_size;
  return record(channel, d->offset + block * static_cast<uint64_t>(channel->block_size), bytes);
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

errcode_t rec_read_blk64(io_channel channel, unsigned long long block, int count, void* buf) {
  return io_channel_read_blk64(data_of(channel)->backing, block, count, buf);
}

errcode_t rec_read_blk(io_channel channel, unsigned long block, int count, void* buf) {
  return rec_read_blk64(channel, block, count, buf);
}

errcode_t rec_write_blk64(io_channel channel, unsigned long long block, int count, const void* buf) {
  if (errcode_t rc = record_blocks(channel, block, count)) return rc;
  return io_channel_write_blk64(data_of(channel)->backing, block, count, buf);
}

errcode_t rec_write_blk(io_channel channel, unsigned long block, int count, const void* buf) {
  return rec_write_blk64(channel, block, count, buf);
}

errcode_t rec_write_byte(io_channel channel, unsigned long offset, int size, const void* buf) {
  RecordingData* d = data_of(channel);
  if (errcode_t rc = record(channel, d->offset + offset, static_cast<uint64_t>(size))) return rc;
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
  io_channel b = data_of(channel)->backing;
  return b->manager->get_stats != nullptr ? b->manager->get_stats(b, stats) : EXT2_ET_OP_NOT_SUPPORTED;
}

errcode_t rec_discard(io_channel channel, unsigned long long block, unsigned long long count) {
  if (errcode_t rc = record_blocks(channel, block, static_cast<long long>(count))) return rc;
  return io_channel_discard(data_of(channel)->backing, block, count);
}

errcode_t rec_cache_readahead(io_channel channel, unsigned long long block, unsigned long long count) {
  return io_channel_cache_readahead(data_of(channel)->backing, block, count);
}

errcode_t rec_zeroout(io_channel channel, unsigned long long block, unsigned long long count) {
  if (errcode_t rc = record_blocks(channel, block, static_cast<long long>(count))) return rc;
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
  io->private_data = new (std::nothrow) RecordingData{backing, log, 0};
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
