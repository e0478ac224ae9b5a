#include "model/weight_matrix.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "util/error.h"
#include "util/message_text.h"
#include "util/populate_pages.h"
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
  // posix_memalign, not aligned_alloc: the size need not be a multiple of the alignment.
  void* p = nullptr;
  if (posix_memalign(&p, align, size) != 0) throw std::bad_alloc();
  if (align == kHuge) {
#ifdef MADV_HUGEPAGE
    madvise(p, size / kHuge * kHuge, MADV_HUGEPAGE);
#endif
    populate_pages(p, size, /*for_write=*/true);
  }
  return p;
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

// Round to nearest (ties to even, as nearbyint in the default mode), then clamp to +-127.
inline int8_t to_int8(float v, float inv_scale) {
  float q = std::nearbyint(v * inv_scale);
  q = q < -127.0f ? -127.0f : q;
  q = q > 127.0f ? 127.0f : q;
  return static_cast<int8_t>(static_cast<int>(q));
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
  throw Error("unknown weight format " + quote_for_message(name) + " (expected f32, bf16 or int8)");
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
  const size_t weights = static_cast<size_t>(panels()) * kPanel * static_cast<size_t>(in_);
  switch (format_) {
    case WeightFormat::F32:
      return weights * sizeof(float);
    case WeightFormat::BF16:
      return weights * sizeof(uint16_t);
    case WeightFormat::Int8:
      return weights + static_cast<size_t>(scales_input() ? in_ : out_) * sizeof(float);
  }
  return 0;
}

float Matrix::weight(int o, int i) const {
  const size_t at = (static_cast<size_t>(o / kPanel) * static_cast<size_t>(in_) + static_cast<size_t>(i)) * kPanel +
                    static_cast<size_t>(o % kPanel);
  switch (format_) {
    case WeightFormat::F32:
      return f32()[at];
    case WeightFormat::BF16:
      return bf16_to_float(bf16()[at]);
    case WeightFormat::Int8:
      return static_cast<float>(i8()[at]) * scales_[static_cast<size_t>(scales_input() ? i : o)];
  }
  return 0.0f;
}

Matrix::Matrix(const float* w, int in, int out, WeightLayout layout, WeightFormat format)
    : in_(in), out_(out), layout_(layout), format_(format) {
  if (in <= 0 || out <= 0) throw Error("weight matrix with no elements");
  const size_t I = static_cast<size_t>(in), O = static_cast<size_t>(out), P = static_cast<size_t>(panels());
  populate_pages(w, I * O * sizeof(float), /*for_write=*/false);  // the checkpoint's mapping
  const size_t elem = format == WeightFormat::F32 ? sizeof(float) : format == WeightFormat::BF16 ? sizeof(uint16_t) : 1;
  data_.reset(alloc_weights(P * I * kPanel * elem));

  // Int8 scales and their reciprocals (what to_int8() multiplies by), per source row.
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

  // Panel by panel in parallel: dst[p][k][j] = W[p * kPanel + j][k] in the stored type. The source
  // is gathered kBlock inputs at a time into a float32 tile [kBlock][kPanel] (InOut: kPanel
  // contiguous values per input; OutIn: kBlock contiguous values from each of kPanel rows), then
  // each tile row is converted and stored.
  constexpr size_t kBlock = 16;
  auto fill = [&](auto* dst) {
    using T = std::remove_pointer_t<decltype(dst)>;
    parallel_rows(P, 1, [&](size_t b, size_t e) {
      float tile[kBlock][kPanel];
      for (size_t p = b; p < e; ++p) {
        T* panel = dst + p * I * kPanel;
        const size_t o0 = p * kPanel, no = std::min<size_t>(kPanel, O - o0);
        for (size_t k0 = 0; k0 < I; k0 += kBlock) {
          const size_t nk = std::min(kBlock, I - k0);
          if (no < kPanel) std::memset(tile, 0, sizeof tile);
          if (layout == WeightLayout::InOut) {
            for (size_t kk = 0; kk < nk; ++kk) std::memcpy(tile[kk], w + (k0 + kk) * O + o0, no * sizeof(float));
          } else {
            for (size_t j = 0; j < no; ++j) {
              const float* src = w + (o0 + j) * I + k0;
              for (size_t kk = 0; kk < nk; ++kk) tile[kk][j] = src[kk];
            }
          }
          for (size_t kk = 0; kk < nk; ++kk) {
            T* d = panel + (k0 + kk) * kPanel;
            const float* t = tile[kk];
            if constexpr (std::is_same_v<T, float>) {
              std::memcpy(d, t, sizeof tile[kk]);
            } else if constexpr (std::is_same_v<T, uint16_t>) {
              for (size_t j = 0; j < kPanel; ++j) {
                uint32_t u;
                std::memcpy(&u, t + j, sizeof u);
                d[j] = bf16_bits(u);
              }
            } else if (layout == WeightLayout::OutIn) {  // int8, a scale per output
              for (size_t j = 0; j < kPanel; ++j) d[j] = j < no ? to_int8(t[j], inv[o0 + j]) : 0;
            } else {  // int8, a scale per input
              const float s = inv[k0 + kk];
              for (size_t j = 0; j < kPanel; ++j) d[j] = to_int8(t[j], s);
            }
          }
        }
      }
    });
  };
  switch (format) {
    case WeightFormat::F32:
      fill(static_cast<float*>(data_.get()));
      break;
    case WeightFormat::BF16:
      fill(static_cast<uint16_t*>(data_.get()));
      break;
    case WeightFormat::Int8:
      fill(static_cast<int8_t*>(data_.get()));
      break;
  }
}

}  // namespace nt
