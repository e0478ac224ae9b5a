#pragma once
// A weight matrix of a linear layer, repacked once at load into panels of kPanel outputs:
//   panel p, input k: the weights of outputs p*kPanel .. p*kPanel+kPanel-1 for input k, contiguous
// (outputs past out() are zero). A matrix product reads each panel front to back and updates
// kPanel outputs of several rows of x at once (kernels.h: linear()). Stored in float32, or in a
// reduced precision that a forward step streams at half (bf16) or a quarter (int8) of the bytes:
// decode is memory-bound, so fewer bytes per weight means proportionally more tokens per second.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nt {

// How a weight matrix is stored in the checkpoint: GPT-2's Conv1D keeps [in, out]; nn.Linear
// keeps [out, in].
enum class WeightLayout { InOut, OutIn };

// The precision matrix products use (--weights). Everything else (embeddings, norms, biases,
// activations, accumulation) stays float32.
//   F32   the checkpoint's values.
//   BF16  bfloat16 (round to nearest even): 8 significant bits, float32's exponent range.
//   Int8  symmetric int8 with one float32 scale per row, scale = max|w| / 127:
//         OutIn ([out, in]): one scale per output row, y_o = s_o * sum_i x_i q_oi;
//         InOut ([in, out], GPT-2 Conv1D): one scale per input row, applied by scaling x,
//         y_o = sum_i (x_i s_i) q_io.
enum class WeightFormat { F32, BF16, Int8 };

const char* weight_format_name(WeightFormat format);  // "f32", "bf16", "int8"
// Parses "f32" | "bf16" | "int8" (also "fp32", "float32", "bfloat16"); throws nt::Error otherwise.
WeightFormat parse_weight_format(const std::string& name);

// The format load_model() and open_session() use when not given one: f32, unless the program set
// another (the CLI's global --weights flag does, so every subcommand loads its model that way).
WeightFormat default_weight_format();
void set_default_weight_format(WeightFormat format);

// float32 -> bfloat16, round to nearest even (NaN stays NaN).
uint16_t float_to_bf16(float f);
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

// Outputs per panel (four 16-float vectors).
inline constexpr int kPanel = 64;

class Matrix {
 public:
  Matrix() = default;
  // `w` holds `in` x `out` float32 weights in `layout`. They are copied now (in parallel on
  // thread_pool()) into panels in `format`; `w` is not read afterwards (the caller may release it:
  // ModelWeights::release).
  Matrix(const float* w, int in, int out, WeightLayout layout, WeightFormat format = WeightFormat::F32);

  int in() const { return in_; }
  int out() const { return out_; }
  int panels() const { return (out_ + kPanel - 1) / kPanel; }
  WeightLayout layout() const { return layout_; }  // the checkpoint's layout
  WeightFormat format() const { return format_; }
  bool empty() const { return out_ == 0; }

  // The panels (64-byte aligned), [panels()][in()][kPanel], in the stored type of format().
  const float* f32() const { return static_cast<const float*>(data_.get()); }
  const uint16_t* bf16() const { return static_cast<const uint16_t*>(data_.get()); }
  const int8_t* i8() const { return static_cast<const int8_t*>(data_.get()); }
  // Int8 scales: [out] for OutIn, [in] for InOut (see WeightFormat).
  const float* scales() const { return scales_.get(); }
  bool scales_input() const { return format_ == WeightFormat::Int8 && layout_ == WeightLayout::InOut; }
  // The weight W[o][i] as the kernels use it (dequantized), for tests and tools.
  float weight(int o, int i) const;

  // Bytes one full product reads (weights in their stored precision, padding and scales included).
  size_t bytes() const;
  // What the same matrix takes in float32.
  size_t f32_bytes() const { return static_cast<size_t>(in_) * static_cast<size_t>(out_) * sizeof(float); }

 private:
  struct FreeDeleter {
    void operator()(void* p) const;
  };
  int in_ = 0, out_ = 0;
  WeightLayout layout_ = WeightLayout::OutIn;
  WeightFormat format_ = WeightFormat::F32;
  std::unique_ptr<void, FreeDeleter> data_;
  std::unique_ptr<float[]> scales_;
};

}  // namespace nt
