#include "model/weight_matrix.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "util/error.h"
#include "util/thread_pool.h"

namespace nt {

namespace {

std::atomic<WeightFormat> g_default_format{WeightFormat::F32};

size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

// 64-byte aligned (2 MiB aligned and backed by huge pages where the kernel allows, when
// large: a decode step streams through all of it, and a load writes all of it).
void* alloc_weights(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= 2 * kHuge ? kHuge : 64;
  const size_t size = round_up(std::max<size_t>(bytes, 1), align);
  void* p = std::aligned_alloc(align, size);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (align == kHuge) madvise(p, size, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
  if (align == kHuge) madvise(p, size, MADV_POPULATE_WRITE);  // one call instead of a fault per page
#endif
  return p;
}

// Faults in the pages of [p, p + bytes) (the memory map of the checkpoint) in one call, which is
// much cheaper than a page fault per 4 KiB while converting. Advisory: failures are ignored.
void prefault(const void* p, size_t bytes) {
#ifdef MADV_POPULATE_READ
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t e = reinterpret_cast<uintptr_t>(p) + bytes;
  madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_READ);
#else
  (void)p;
  (void)bytes;
#endif
}

// Rows [0, rows) in parallel, `grain` at a time.
template <class Fn>
void parallel_rows(size_t rows, size_t grain, Fn fn) {
  thread_pool().parallel_for(rows, grain, [&](size_t b, size_t e) { fn(b, e); });
}

float abs_max(const float* p, size_t n) {
  float acc[16] = {};  // 16 lanes, so the loop vectorises without reassociating a max reduction
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (size_t j = 0; j < 16; ++j) {
      const float a = std::fabs(p[i + j]);
      acc[j] = acc[j] > a ? acc[j] : a;
    }
  for (; i < n; ++i) acc[0] = std::max(acc[0], std::fabs(p[i]));
  return *std::max_element(acc, acc + 16);
}

// Branch-free forms of float_to_bf16 and of rounding to int8, so the loops below vectorise.
inline uint16_t bf16_bits(uint32_t u) {
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

void to_bf16(const float* src, size_t n, uint16_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, sizeof u);
    dst[i] = bf16_bits(u);
  }
}

// Round to nearest (ties to even, as nearbyint in the default mode), then clamp to +-127.
void to_int8(const float* src, size_t n, float inv_scale, int8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    float q = std::nearbyint(src[i] * inv_scale);
    q = q < -127.0f ? -127.0f : q;
    q = q > 127.0f ? 127.0f : q;
    dst[i] = static_cast<int8_t>(static_cast<int>(q));
  }
}

// Once a matrix is converted, the model reads the copy. When the float32 source lies in a
// read-only private file mapping (the checkpoint's memory map), this drops the process's mappings
// of those pages so they stop counting in its resident set; the file's pages stay in the page
// cache, and anything still reading them (the embedding lookup, when the LM head is tied) faults
// them back in. Sources elsewhere (float32 copies made from F16/BF16 checkpoints) are left alone:
// MADV_DONTNEED would zero anonymous memory.
void release_source(const void* p, size_t bytes) {
#ifdef MADV_DONTNEED
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return;
  bool file_backed = false;
  char line[4096];
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long start = 0, end = 0, offset = 0, inode = 0;
    unsigned dev_major = 0, dev_minor = 0;
    char perms[5] = {};
    if (std::sscanf(line, "%lx-%lx %4s %lx %x:%x %lu", &start, &end, perms, &offset, &dev_major, &dev_minor,
                    &inode) != 7)
      continue;
    if (start <= b && e <= end) {
      file_backed = inode != 0 && std::strcmp(perms, "r--p") == 0;
      break;
    }
  }
  std::fclose(maps);
  if (!file_backed) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t pb = b / page * page, pe = (e + page - 1) / page * page;
  madvise(reinterpret_cast<void*>(pb), pe - pb, MADV_DONTNEED);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace

const char* weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::F32:
      return "f32";
    case WeightFormat::BF16:
      return "bf16";
    case WeightFormat::Int8:
      return "int8";
  }
  return "?";
}

WeightFormat parse_weight_format(const std::string& name) {
  if (name == "f32" || name == "fp32" || name == "float32") return WeightFormat::F32;
  if (name == "bf16" || name == "bfloat16") return WeightFormat::BF16;
  if (name == "int8" || name == "i8") return WeightFormat::Int8;
  throw Error("unknown weight format '" + name + "' (expected f32, bf16 or int8)");
}

WeightFormat default_weight_format() { return g_default_format.load(std::memory_order_relaxed); }
void set_default_weight_format(WeightFormat format) { g_default_format.store(format, std::memory_order_relaxed); }

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return bf16_bits(u);
}

void Matrix::FreeDeleter::operator()(void* p) const { std::free(p); }

size_t Matrix::bytes() const {
  const size_t rows = static_cast<size_t>(out_);
  switch (format_) {
    case WeightFormat::F32:
      return f32_bytes();
    case WeightFormat::BF16:
      return rows * ld_ * sizeof(uint16_t);
    case WeightFormat::Int8:
      return rows * ld_ + static_cast<size_t>(scales_input() ? in_ : out_) * sizeof(float);
  }
  return 0;
}

Matrix::Matrix(const float* w, int in, int out, WeightLayout layout, WeightFormat format)
    : in_(in), out_(out), layout_(layout), format_(format) {
  if (in <= 0 || out <= 0) throw Error("weight matrix with no elements");
  if (format == WeightFormat::F32) {
    f32_ = w;
    return;
  }
  const size_t I = static_cast<size_t>(in), O = static_cast<size_t>(out);
  prefault(w, I * O * sizeof(float));
  const bool bf16 = format == WeightFormat::BF16;
  const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(int8_t);
  ld_ = round_up(I, 64 / elem);  // 64-byte rows
  data_.reset(alloc_weights(O * ld_ * elem));
  uint16_t* dst16 = reinterpret_cast<uint16_t*>(data_.get());
  int8_t* dst8 = reinterpret_cast<int8_t*>(data_.get());

  // Int8 scales and their reciprocals (what to_int8() multiplies by).
  std::vector<float> inv;
  if (!bf16) {
    const size_t rows = layout == WeightLayout::OutIn ? O : I, width = layout == WeightLayout::OutIn ? I : O;
    scales_ = std::make_unique<float[]>(rows);
    inv.resize(rows);
    parallel_rows(rows, 64, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        const float m = abs_max(w + r * width, width);
        scales_[r] = m / 127.0f;
        inv[r] = m > 0.0f ? 127.0f / m : 0.0f;
      }
    });
  }
  // Converts n source values of source row `r` (of the checkpoint's layout) into dst.
  auto convert = [&](const float* src, size_t n, size_t r, void* dst) {
    if (bf16)
      to_bf16(src, n, static_cast<uint16_t*>(dst));
    else
      to_int8(src, n, inv[r], static_cast<int8_t*>(dst));
  };
  auto pad = [&](size_t o) {
    std::memset(static_cast<char*>(data_.get()) + (o * ld_ + I) * elem, 0, (ld_ - I) * elem);
  };

  if (layout == WeightLayout::OutIn) {
    parallel_rows(O, 64, [&](size_t b, size_t e) {
      for (size_t o = b; o < e; ++o) {
        convert(w + o * I, I, o, bf16 ? static_cast<void*>(dst16 + o * ld_) : static_cast<void*>(dst8 + o * ld_));
        pad(o);
      }
    });
    release_source(w, I * O * sizeof(float));
    return;
  }
  // InOut: blocks of kBlock source rows (contiguous in the checkpoint) are converted row by row
  // (vectorised) into a buffer, then written out transposed: each stored row gets kBlock
  // consecutive values (whole cache lines).
  constexpr size_t kBlock = 64;
  parallel_rows((I + kBlock - 1) / kBlock, 1, [&](size_t b, size_t) {
    const size_t i0 = b * kBlock, ni = std::min(I, i0 + kBlock) - i0;
    thread_local std::vector<uint16_t> buf16;
    thread_local std::vector<int8_t> buf8;
    if (bf16)
      buf16.resize(ni * O);
    else
      buf8.resize(ni * O);
    for (size_t ii = 0; ii < ni; ++ii)
      convert(w + (i0 + ii) * O, O, i0 + ii, bf16 ? static_cast<void*>(buf16.data() + ii * O) : static_cast<void*>(buf8.data() + ii * O));
    for (size_t o = 0; o < O; ++o) {
      if (bf16) {
        uint16_t* d = dst16 + o * ld_ + i0;
        for (size_t ii = 0; ii < ni; ++ii) d[ii] = buf16[ii * O + o];
      } else {
        int8_t* d = dst8 + o * ld_ + i0;
        for (size_t ii = 0; ii < ni; ++ii) d[ii] = buf8[ii * O + o];
      }
    }
  });
  for (size_t o = 0; o < O; ++o) pad(o);
  release_source(w, I * O * sizeof(float));
}

}  // namespace nt
