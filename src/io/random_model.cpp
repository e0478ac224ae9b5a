#include "io/random_model.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>
#include <vector>

#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Marks a config.json as ours, so an existing folder is only reused or overwritten when we wrote it.
constexpr const char* kSeedKey = "neurontrace_random_seed";

// Values are generated in chunks of this many elements, each from its own stream seeded by
// (seed, tensor, chunk), so the result does not depend on how chunks are spread over threads.
constexpr size_t kChunk = size_t{1} << 20;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t s = a ^ (b * 0xD1B54A32D192ED03ull);
  return splitmix64(s);
}

// offset + stddev * N(0, 1), Box-Muller on two 24-bit uniforms per 64-bit draw.
void fill_normal(float* out, size_t n, float offset, float stddev, uint64_t stream) {
  constexpr float kTwoPi = 6.28318530717958647692f;
  constexpr float kInv24 = 1.0f / 16777216.0f;
  uint64_t state = stream;
  size_t i = 0;
  while (i < n) {
    const uint64_t x = splitmix64(state);
    const float u1 = (static_cast<float>(x >> 40) + 1.0f) * kInv24;         // (0, 1]
    const float u2 = static_cast<float>((x >> 16) & 0xFFFFFFull) * kInv24;  // [0, 1)
    const float r = stddev * std::sqrt(-2.0f * std::log(u1));
    const float t = kTwoPi * u2;
    out[i++] = offset + r * std::cos(t);
    if (i < n) out[i++] = offset + r * std::sin(t);
  }
}

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  float offset;  // 1 for LayerNorm weights, else 0
  float stddev;
  size_t numel() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
};

std::vector<TensorSpec> tensor_specs(const RandomGpt2Spec& s) {
  const int64_t C = s.width, M = s.mlp, V = s.vocab, P = s.ctx;
  std::vector<TensorSpec> t;
  t.push_back({"wte.weight", {V, C}, 0.0f, 0.02f});
  t.push_back({"wpe.weight", {P, C}, 0.0f, 0.02f});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    t.push_back({p + "ln_1.weight", {C}, 1.0f, 0.1f});
    t.push_back({p + "ln_1.bias", {C}, 0.0f, 0.02f});
    t.push_back({p + "attn.c_attn.weight", {C, 3 * C}, 0.0f, 0.02f});
    t.push_back({p + "attn.c_attn.bias", {3 * C}, 0.0f, 0.02f});
    t.push_back({p + "attn.c_proj.weight", {C, C}, 0.0f, 0.02f});
    t.push_back({p + "attn.c_proj.bias", {C}, 0.0f, 0.02f});
    t.push_back({p + "ln_2.weight", {C}, 1.0f, 0.1f});
    t.push_back({p + "ln_2.bias", {C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.c_fc.weight", {C, M}, 0.0f, 0.02f});
    t.push_back({p + "mlp.c_fc.bias", {M}, 0.0f, 0.02f});
    t.push_back({p + "mlp.c_proj.weight", {M, C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.c_proj.bias", {C}, 0.0f, 0.02f});
  }
  t.push_back({"ln_f.weight", {C}, 1.0f, 0.1f});
  t.push_back({"ln_f.bias", {C}, 0.0f, 0.02f});
  return t;
}

json config_json(const RandomGpt2Spec& s) {
  const int special = s.vocab > 50256 ? 50256 : s.vocab - 1;
  json j;
  j["architectures"] = json::array({"GPT2LMHeadModel"});
  j["model_type"] = "gpt2";
  j["n_layer"] = s.layers;
  j["n_embd"] = s.width;
  j["n_head"] = s.heads;
  j["n_inner"] = s.mlp;
  j["n_positions"] = s.ctx;
  j["n_ctx"] = s.ctx;
  j["vocab_size"] = s.vocab;
  j["layer_norm_epsilon"] = 1e-5;
  j["activation_function"] = "gelu_new";
  j["tie_word_embeddings"] = true;
  j["bos_token_id"] = special;
  j["eos_token_id"] = special;
  j["torch_dtype"] = "float32";
  j[kSeedKey] = s.seed;
  return j;
}

bool same_int(const json& j, const char* key, int64_t want) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() && it->get<int64_t>() == want;
}

}  // namespace

void validate(const RandomGpt2Spec& s) {
  auto positive = [](int v, const char* flag) {
    if (v <= 0) throw Error(std::string(flag) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive(s.layers, "--layers");
  positive(s.width, "--width");
  positive(s.heads, "--heads");
  positive(s.mlp, "--mlp");
  positive(s.vocab, "--vocab");
  positive(s.ctx, "--ctx");
  if (s.width % s.heads != 0)
    throw Error("--width " + std::to_string(s.width) + " is not divisible by --heads " +
                std::to_string(s.heads));
}

size_t random_gpt2_weight_bytes(const RandomGpt2Spec& spec) {
  size_t n = 0;
  for (const auto& t : tensor_specs(spec)) n += t.numel();
  return n * sizeof(float);
}

bool random_gpt2_is_current(const std::string& dir, const RandomGpt2Spec& spec) {
  std::error_code ec;
  const std::string cfg = dir + "/config.json";
  if (!fs::is_regular_file(cfg, ec) || !fs::is_regular_file(dir + "/vocab.json", ec) ||
      !fs::is_regular_file(dir + "/merges.txt", ec))
    return false;
  const auto st_size = fs::file_size(dir + "/model.safetensors", ec);
  if (ec || st_size < random_gpt2_weight_bytes(spec) + 8) return false;
  json j;
  try {
    j = json::parse(read_file(cfg));
  } catch (const std::exception&) {
    return false;
  }
  if (!j.is_object() || j.value("model_type", std::string()) != "gpt2") return false;
  auto seed = j.find(kSeedKey);
  if (seed == j.end() || !seed->is_number_unsigned() || seed->get<uint64_t>() != spec.seed) return false;
  return same_int(j, "n_layer", spec.layers) && same_int(j, "n_embd", spec.width) &&
         same_int(j, "n_head", spec.heads) && same_int(j, "n_inner", spec.mlp) &&
         same_int(j, "n_positions", spec.ctx) && same_int(j, "vocab_size", spec.vocab);
}

std::string default_random_gpt2_tokenizer_dir() {
  // __FILE__ is <repo>/src/io/random_model.cpp in CMake builds (absolute source paths).
  const fs::path repo = fs::path(__FILE__).parent_path().parent_path().parent_path();
  return (repo.parent_path() / "shared" / "fixtures" / "tokenizers" / "gpt2").lexically_normal().string();
}

void write_random_gpt2(const std::string& dir, const RandomGpt2Spec& spec, const std::string& tokenizer_dir) {
  validate(spec);
  if (random_gpt2_is_current(dir, spec)) return;

  std::error_code ec;
  const std::string cfg = dir + "/config.json";
  if (fs::exists(cfg, ec)) {
    // Only replace a folder we wrote before (any spec); never a real model.
    bool ours = false;
    try {
      const json j = json::parse(read_file(cfg));
      ours = j.is_object() && j.contains(kSeedKey);
    } catch (const std::exception&) {
    }
    if (!ours)
      throw Error(dir + ": holds a model not written by make_random_model; refusing to overwrite it");
  }
  for (const char* f : {"vocab.json", "merges.txt"})
    if (!fs::is_regular_file(tokenizer_dir + "/" + f, ec))
      throw Error(tokenizer_dir + ": missing " + f + " (give a GPT-2 tokenizer folder with --tokenizer)");
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create folder (" + ec.message() + ")");
  // An old config.json must not describe the new weights while they are being written.
  fs::remove(cfg, ec);

  const std::vector<TensorSpec> specs = tensor_specs(spec);
  std::vector<size_t> offsets;
  size_t total = 0;
  for (const auto& t : specs) {
    offsets.push_back(total);
    total += t.numel();
  }
  // Not zero-initialised: every element is written below, so the page faults happen in the
  // generating threads; 2 MiB-aligned and marked for huge pages, which makes them ~500x fewer.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t alloc_bytes = (total * sizeof(float) + kHuge - 1) / kHuge * kHuge;
  std::unique_ptr<float, void (*)(void*)> values(static_cast<float*>(std::aligned_alloc(kHuge, alloc_bytes)),
                                                 std::free);
  if (!values)
    throw Error(dir + ": cannot allocate " + std::to_string(alloc_bytes) + " bytes for the weights");
  ::madvise(values.get(), alloc_bytes, MADV_HUGEPAGE);  // advisory; ignored where unsupported

  // Work items: (tensor, chunk), handed out to threads through an atomic counter.
  struct Item {
    size_t tensor, chunk;
  };
  std::vector<Item> items;
  for (size_t t = 0; t < specs.size(); ++t)
    for (size_t c = 0; c * kChunk < specs[t].numel(); ++c) items.push_back({t, c});
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < items.size();) {
      const Item& it = items[i];
      const TensorSpec& t = specs[it.tensor];
      const size_t begin = it.chunk * kChunk;
      const size_t n = std::min(kChunk, t.numel() - begin);
      const uint64_t stream = mix(mix(spec.seed, it.tensor + 1), it.chunk + 1);
      fill_normal(values.get() + offsets[it.tensor] + begin, n, t.offset, t.stddev, stream);
    }
  };
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n_threads; ++i) threads.emplace_back(work);
  work();
  for (auto& th : threads) th.join();

  std::vector<TensorToWrite> tensors;
  for (size_t t = 0; t < specs.size(); ++t) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(values.get() + offsets[t]);
    tensors.push_back({specs[t].name, DType::F32, specs[t].shape,
                       std::span<const uint8_t>(bytes, specs[t].numel() * sizeof(float))});
  }
  write_safetensors(dir + "/model.safetensors", tensors,
                    {{"format", "pt"}, {kSeedKey, std::to_string(spec.seed)}});
  values.reset();

  for (const char* f : {"vocab.json", "merges.txt"})
    write_file_atomic(dir + "/" + f, read_file(tokenizer_dir + "/" + f));
  write_file_atomic(cfg, config_json(spec).dump(2) + "\n");
}

}  // namespace nt
