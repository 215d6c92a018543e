// zstd (libzstd, ZSTD_c_nbWorkers) and xz (liblzma, lzma_stream_encoder_mt and _decoder_mt) streams (codec.h):
// the one place pibake encodes or decodes either. lzma_stream_decoder_mt decodes independent
// blocks in parallel; single-block streams (xz without -T) fall back to one thread by themselves.
#include "codec/codec.h"

#include <fcntl.h>
#include <lzma.h>
#include <unistd.h>
#include <zstd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/unique_fd.h"

namespace pibake {
namespace {

constexpr size_t kChunk = 4u << 20;
// zstd's default level: ~10× faster than xz -6 at a slightly larger size; xz keeps Ubuntu's
// own choice (preset 6) for those who want the smallest file.
constexpr int kZstdLevel = 3;
constexpr uint32_t kXzPreset = 6;

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// One lzma_stream and its lzma_end.
class LzmaStream {
 public:
  LzmaStream() = default;
  ~LzmaStream() { lzma_end(&strm_); }
  LzmaStream(const LzmaStream&) = delete;
  LzmaStream& operator=(const LzmaStream&) = delete;
  lzma_stream* get() { return &strm_; }

 private:
  lzma_stream strm_ = LZMA_STREAM_INIT;
};

class File {
 public:
  File(const std::string& path, int flags) : path_(path), fd_(open_fd(path, flags)) {}
  int fd() const { return fd_.get(); }
  size_t read(char* buf, size_t size) {
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) throw Error("cannot read " + path_ + ": " + std::strerror(errno));
    }
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

void write_all(int fd, const char* data, size_t size, const std::string& name) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot write " + name + ": " + std::strerror(n < 0 ? errno : ENOSPC));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

unsigned threads() { return std::max(1u, std::thread::hardware_concurrency()); }

class ZstdReader : public Decompressor {
 public:
  explicit ZstdReader(const std::string& path)
      : path_(path), file_(path, O_RDONLY), ctx_(ZSTD_createDCtx()), in_buf_(ZSTD_DStreamInSize()) {
    if (!ctx_) throw Error("zstd: out of memory");
  }
  size_t read(char* buf, size_t size) override {
    ZSTD_outBuffer out{buf, size, 0};
    while (out.pos < out.size) {
      if (in_.pos == in_.size) {
        if (eof_) break;
        in_ = {in_buf_.data(), file_.read(in_buf_.data(), in_buf_.size()), 0};
        if (in_.size == 0) {
          eof_ = true;
          if (last_ret_ != 0) throw Error(path_ + ": the zstd stream is truncated");
          break;
        }
      }
      last_ret_ = ZSTD_decompressStream(ctx_.get(), &out, &in_);
      if (ZSTD_isError(last_ret_)) throw Error(path_ + ": corrupt zstd data: " + ZSTD_getErrorName(last_ret_));
    }
    return out.pos;
  }

 private:
  std::string path_;
  File file_;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> ctx_;
  std::vector<char> in_buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  size_t last_ret_ = 0;
  bool eof_ = false;
};

class XzReader : public Decompressor {
 public:
  explicit XzReader(const std::string& path) : path_(path), file_(path, O_RDONLY), in_buf_(1u << 20) {
    lzma_mt mt{};
    mt.flags = LZMA_CONCATENATED;
    mt.threads = threads();
    mt.memlimit_threading = 1ull << 30;
    mt.memlimit_stop = UINT64_MAX;
    if (lzma_stream_decoder_mt(strm_.get(), &mt) != LZMA_OK) throw Error("liblzma: cannot start a decoder for " + path);
  }
  size_t read(char* buf, size_t size) override {
    lzma_stream* s = strm_.get();
    s->next_out = reinterpret_cast<uint8_t*>(buf);
    s->avail_out = size;
    while (s->avail_out > 0 && !done_) {
      if (s->avail_in == 0 && action_ == LZMA_RUN) {
        size_t n = file_.read(in_buf_.data(), in_buf_.size());
        s->next_in = reinterpret_cast<const uint8_t*>(in_buf_.data());
        s->avail_in = n;
        if (n == 0) action_ = LZMA_FINISH;
      }
      lzma_ret ret = lzma_code(s, action_);
      if (ret == LZMA_STREAM_END) {
        done_ = true;
      } else if (ret != LZMA_OK) {
        const char* why = ret == LZMA_FORMAT_ERROR ? "not an .xz file"
                          : ret == LZMA_DATA_ERROR ? "corrupt data"
                          : ret == LZMA_BUF_ERROR  ? "truncated file"
                          : ret == LZMA_MEM_ERROR  ? "out of memory"
                                                   : "decoder error";
        throw Error(fmt::format("{}: cannot decompress: {} (liblzma error {})", path_, why, static_cast<int>(ret)));
      }
    }
    return size - s->avail_out;
  }

 private:
  std::string path_;
  File file_;
  LzmaStream strm_;
  std::vector<char> in_buf_;
  lzma_action action_ = LZMA_RUN;
  bool done_ = false;
};

void compress_zstd(File& in, int out_fd, const std::string& out_name, Sha256& hash) {
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> ctx(ZSTD_createCCtx());
  if (!ctx) throw Error("zstd: out of memory");
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, kZstdLevel);
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, 1);  // so `zstd -t` and flash detect damage
  // nbWorkers fails on a libzstd built without threads: then it stays single-threaded.
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_nbWorkers, static_cast<int>(threads()));
  std::vector<char> ibuf(kChunk), obuf(ZSTD_CStreamOutSize());
  for (bool last = false; !last;) {
    size_t n = in.read(ibuf.data(), ibuf.size());
    last = n == 0;
    ZSTD_inBuffer input{ibuf.data(), n, 0};
    ZSTD_EndDirective mode = last ? ZSTD_e_end : ZSTD_e_continue;
    for (bool finished = false; !finished;) {
      ZSTD_outBuffer output{obuf.data(), obuf.size(), 0};
      size_t remaining = ZSTD_compressStream2(ctx.get(), &output, &input, mode);
      if (ZSTD_isError(remaining))
        throw Error("zstd: compressing into " + out_name + ": " + ZSTD_getErrorName(remaining));
      write_all(out_fd, obuf.data(), output.pos, out_name);
      hash.update(obuf.data(), output.pos);
      finished = last ? remaining == 0 : input.pos == input.size;
    }
  }
}

void compress_xz(File& in, int out_fd, const std::string& out_name, Sha256& hash) {
  LzmaStream strm;
  lzma_mt mt{};
  mt.threads = threads();
  mt.preset = kXzPreset;
  mt.check = LZMA_CHECK_CRC64;
  if (lzma_stream_encoder_mt(strm.get(), &mt) != LZMA_OK)
    throw Error("liblzma: cannot start an encoder for " + out_name);
  lzma_stream* s = strm.get();
  std::vector<char> ibuf(kChunk), obuf(kChunk);
  lzma_action action = LZMA_RUN;
  for (;;) {
    if (s->avail_in == 0 && action == LZMA_RUN) {
      size_t n = in.read(ibuf.data(), ibuf.size());
      s->next_in = reinterpret_cast<const uint8_t*>(ibuf.data());
      s->avail_in = n;
      if (n == 0) action = LZMA_FINISH;
    }
    s->next_out = reinterpret_cast<uint8_t*>(obuf.data());
    s->avail_out = obuf.size();
    lzma_ret ret = lzma_code(s, action);
    size_t produced = obuf.size() - s->avail_out;
    write_all(out_fd, obuf.data(), produced, out_name);
    hash.update(obuf.data(), produced);
    if (ret == LZMA_STREAM_END) break;
    if (ret != LZMA_OK)
      throw Error(fmt::format("liblzma: compressing into {} failed (error {})", out_name, static_cast<int>(ret)));
  }
}

}  // namespace

Compression parse_compression(const std::string& name) {
  if (name == "zstd" || name == "zst") return Compression::kZstd;
  if (name == "xz") return Compression::kXz;
  if (name == "none" || name.empty()) return Compression::kNone;
  throw Error("unknown compression \"" + name + "\" (use zstd or xz)");
}

Compression compression_of(const std::string& path) {
  auto ends = [&](const char* s) {
    size_t n = std::strlen(s);
    return path.size() >= n && path.compare(path.size() - n, n, s) == 0;
  };
  if (ends(".zst")) return Compression::kZstd;
  if (ends(".xz")) return Compression::kXz;
  return Compression::kNone;
}

const char* suffix_of(Compression c) { return c == Compression::kZstd ? ".zst" : c == Compression::kXz ? ".xz" : ""; }

std::unique_ptr<Decompressor> open_decompressor(const std::string& path, Compression c) {
  if (c == Compression::kZstd) return std::make_unique<ZstdReader>(path);
  if (c == Compression::kXz) return std::make_unique<XzReader>(path);
  throw Error(path + " is not compressed");
}

CompressResult compress_image(const std::string& image_path, Compression c) {
  if (c == Compression::kNone) throw Error("compress_image: no compression requested");
  CompressResult result;
  result.path = image_path + suffix_of(c);
  try {
    File in(image_path, O_RDONLY);
    posix_fadvise(in.fd(), 0, 0, POSIX_FADV_SEQUENTIAL);
    AtomicFile out(result.path, 0600);  // as secret as the image it compresses
    Sha256 hash;
    if (c == Compression::kZstd)
      compress_zstd(in, out.fd(), out.temp_path(), hash);
    else
      compress_xz(in, out.fd(), out.temp_path(), hash);
    result.bytes = static_cast<uint64_t>(lseek(out.fd(), 0, SEEK_CUR));
    result.sha256 = hash.hex_digest();
    // The checksum file first disappears, so that it never vouches for a file it does not describe.
    unlink((result.path + ".sha256").c_str());
    out.commit();
    write_file_atomic(result.path + ".sha256", result.sha256 + "  " + base_name(result.path) + "\n", 0644);
  } catch (const Error& e) {
    throw Error("while compressing " + image_path + " into " + result.path + ": " +
                mention_final_path(e.what(), result.path));
  }
  return result;
}

}  // namespace pibake
