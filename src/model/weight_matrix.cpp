#include "model/weight_matrix.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
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

// 64-byte aligned; when large, 2 MiB aligned with the whole 2 MiB pages inside it backed by huge
// pages where the kernel allows (a decode step streams through all of it). The size is rounded to
// 4 KiB pages only, not to 2 MiB: that rounding cost ~1 MiB per matrix, 44 MB on GPT-2 small.
void* alloc_weights(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= 2 * kHuge ? kHuge : 64;
  const size_t size = round_up(std::max<size_t>(bytes, 1), align == kHuge ? 4096 : 64);
  void* p = std::aligned_alloc(align, size);
  if (!p) throw std::bad_alloc();
  if (align == kHuge) {
#ifdef MADV_HUGEPAGE
    madvise(p, size / kHuge * kHuge, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    madvise(p, size, MADV_POPULATE_WRITE);  // one call instead of a fault per page
#endif
  }
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
      return rows * ld_ * sizeof(float);
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
  const size_t I = static_cast<size_t>(in), O = static_cast<size_t>(out);
  if (format == WeightFormat::F32 && layout == WeightLayout::OutIn && I % 16 == 0) {
    f32_ = w;  // already [out, in] with whole 16-float groups: no copy
    ld_ = I;
    return;
  }
  prefault(w, I * O * sizeof(float));
  const size_t elem = format == WeightFormat::F32 ? sizeof(float) : format == WeightFormat::BF16 ? sizeof(uint16_t) : 1;
  ld_ = round_up(I, 64 / elem);  // 64-byte rows
  data_.reset(alloc_weights(O * ld_ * elem));
  char* dst = static_cast<char*>(data_.get());
  if (format == WeightFormat::F32) f32_ = reinterpret_cast<const float*>(dst);

  // Int8 scales and their reciprocals (what to_int8() multiplies by).
  std::vector<float> inv;
  if (format == WeightFormat::Int8) {
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
  auto convert = [&](const float* src, size_t n, size_t r, char* to) {
    switch (format) {
      case WeightFormat::F32:
        std::memcpy(to, src, n * sizeof(float));
        break;
      case WeightFormat::BF16:
        to_bf16(src, n, reinterpret_cast<uint16_t*>(to));
        break;
      case WeightFormat::Int8:
        to_int8(src, n, inv[r], reinterpret_cast<int8_t*>(to));
        break;
    }
  };
  auto pad = [&](size_t o) { std::memset(dst + (o * ld_ + I) * elem, 0, (ld_ - I) * elem); };

  if (layout == WeightLayout::OutIn) {
    parallel_rows(O, 64, [&](size_t b, size_t e) {
      for (size_t o = b; o < e; ++o) {
        convert(w + o * I, I, o, dst + o * ld_ * elem);
        pad(o);
      }
    });
    return;
  }
  // InOut: blocks of kBlock source rows (contiguous in the checkpoint) are converted row by row
  // (vectorised) into a buffer, then written out transposed: each stored row gets kBlock
  // consecutive values (whole cache lines).
  constexpr size_t kBlock = 64;
  parallel_rows((I + kBlock - 1) / kBlock, 1, [&](size_t b, size_t) {
    const size_t i0 = b * kBlock, ni = std::min(I, i0 + kBlock) - i0;
    thread_local std::vector<char> buf;
    buf.resize(ni * O * elem);
    for (size_t ii = 0; ii < ni; ++ii) convert(w + (i0 + ii) * O, O, i0 + ii, buf.data() + ii * O * elem);
    auto scatter = [&](auto elem_type) {
      using T = decltype(elem_type);
      const T* src = reinterpret_cast<const T*>(buf.data());
      T* out_rows = reinterpret_cast<T*>(dst);
      for (size_t o = 0; o < O; ++o) {
        T* d = out_rows + o * ld_ + i0;
        for (size_t ii = 0; ii < ni; ++ii) d[ii] = src[ii * O + o];
      }
    };
    if (elem == sizeof(float))
      scatter(float{});
    else if (elem == sizeof(uint16_t))
      scatter(uint16_t{});
    else
      scatter(int8_t{});
  });
  for (size_t o = 0; o < O; ++o) pad(o);
}

}  // namespace nt
