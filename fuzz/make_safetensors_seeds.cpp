// Writes the seed corpus of fuzz_safetensors: small safetensors files (a few KB at most) made
// with nt::write_safetensors, covering every dtype, empty and scalar tensors, metadata, several
// tensors per file, and the layout of a study group checkpoint.
//   build-fuzz/fuzz/fuzz_make_safetensors_seeds fuzz/corpus/fuzz_safetensors
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct Seed {
  std::string file;
  std::vector<std::pair<nt::TensorToWrite, std::vector<uint8_t>>> tensors;
  std::map<std::string, std::string> metadata;
};

void add(Seed& s, const std::string& name, nt::DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  s.tensors.push_back({nt::TensorToWrite{name, dtype, std::move(shape), {}}, std::move(bytes)});
}

void write(const std::string& dir, Seed& s) {
  std::vector<nt::TensorToWrite> ts;
  for (auto& [t, b] : s.tensors) {
    t.bytes = std::span<const uint8_t>(b.data(), b.size());
    ts.push_back(t);
  }
  nt::write_safetensors(dir + "/" + s.file, ts, s.metadata);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<float> f = {0.0f, -1.5f, 3.25f, 1e-8f, -0.0f, 65504.0f};
  std::vector<Seed> seeds;
  {
    Seed s{"f32_2x3.safetensors", {}, {}};
    add(s, "weight", nt::DType::F32, {2, 3}, bytes_of(f));
    seeds.push_back(std::move(s));
  }
  {
    Seed s{"all_dtypes.safetensors", {}, {{"format", "pt"}}};
    add(s, "f64", nt::DType::F64, {3}, bytes_of(std::vector<double>{1.0, -2.5, 1e300}));
    add(s, "f32", nt::DType::F32, {2, 2}, bytes_of(std::vector<float>{1, 2, 3, 4}));
    add(s, "f16", nt::DType::F16, {4}, bytes_of(std::vector<uint16_t>{0x3c00, 0x8001, 0x7c00, 0x7e00}));
    add(s, "bf16", nt::DType::BF16, {2}, bytes_of(std::vector<uint16_t>{0x3f80, 0xff80}));
    add(s, "i64", nt::DType::I64, {2}, bytes_of(std::vector<int64_t>{-1, INT64_MAX}));
    add(s, "i32", nt::DType::I32, {2}, bytes_of(std::vector<int32_t>{7, -7}));
    add(s, "i16", nt::DType::I16, {1}, bytes_of(std::vector<int16_t>{-300}));
    add(s, "i8", nt::DType::I8, {3}, bytes_of(std::vector<int8_t>{-128, 0, 127}));
    add(s, "u8", nt::DType::U8, {2}, bytes_of(std::vector<uint8_t>{0, 255}));
    add(s, "bool", nt::DType::BOOL, {3}, bytes_of(std::vector<uint8_t>{0, 1, 2}));
    seeds.push_back(std::move(s));
  }
  {
    Seed s{"empty_and_scalar.safetensors", {}, {}};
    add(s, "empty", nt::DType::F32, {0, 4}, {});
    add(s, "scalar", nt::DType::F32, {}, bytes_of(std::vector<float>{42.0f}));
    add(s, "zero_dim_first", nt::DType::I64, {4, 0}, {});
    seeds.push_back(std::move(s));
  }
  {
    Seed s{"no_tensors_metadata.safetensors", {}, {{"note", "only metadata"}, {"k\u00e9y", "v\u00e4lue \xe2\x9c\x93"}}};
    seeds.push_back(std::move(s));
  }
  {
    // A tiny GPT-2-shaped layer, names as Hugging Face writes them.
    Seed s{"gpt2_layer.safetensors", {}, {{"format", "pt"}}};
    std::vector<float> w(4 * 12, 0.25f), b(12, -0.5f), ln(4, 1.0f);
    add(s, "h.0.attn.c_attn.weight", nt::DType::F32, {4, 12}, bytes_of(w));
    add(s, "h.0.attn.c_attn.bias", nt::DType::F32, {12}, bytes_of(b));
    add(s, "h.0.ln_1.weight", nt::DType::F32, {4}, bytes_of(ln));
    add(s, "h.0.ln_1.bias", nt::DType::F32, {4}, bytes_of(std::vector<float>(4, 0.0f)));
    add(s, "wte.weight", nt::DType::F16, {3, 4}, bytes_of(std::vector<uint16_t>(12, 0x3800)));
    seeds.push_back(std::move(s));
  }
  {
    // The layout of a study checkpoint: generations as I64, statistics as F32 / F64.
    Seed s{"checkpoint_like.safetensors", {}, {{"key", "0123456789abcdef"}, {"kind", "neurontrace-group"}}};
    add(s, "seqs", nt::DType::I64, {2}, bytes_of(std::vector<int64_t>{3, 4}));
    add(s, "prompt_ids", nt::DType::I64, {5}, bytes_of(std::vector<int64_t>{464, 2068, 7586, 21831, 13}));
    add(s, "generated_ids", nt::DType::I64, {3}, bytes_of(std::vector<int64_t>{50256, 11, 262}));
    add(s, "s0.n_tokens", nt::DType::I64, {2}, bytes_of(std::vector<int64_t>{4, 4}));
    add(s, "s0.mean", nt::DType::F32, {2, 4}, bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
    add(s, "g0.sum", nt::DType::F64, {4}, bytes_of(std::vector<double>{0.5, 1.5, -2.0, 8.0}));
    seeds.push_back(std::move(s));
  }
  for (auto& s : seeds) write(dir, s);
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
  return 0;
}
