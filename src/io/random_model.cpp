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
  float offset;  // 1 for norm weights, else 0
  float stddev;
  size_t numel() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
};

bool is_llama(const RandomModelSpec& s) { return s.arch == "llama"; }
int kv_heads(const RandomModelSpec& s) { return s.kv_heads > 0 ? s.kv_heads : s.heads; }

std::vector<TensorSpec> gpt2_tensors(const RandomModelSpec& s) {
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

std::vector<TensorSpec> llama_tensors(const RandomModelSpec& s) {
  const int64_t C = s.width, M = s.mlp, V = s.vocab;
  const int64_t K = static_cast<int64_t>(kv_heads(s)) * (s.width / s.heads);
  std::vector<TensorSpec> t;
  t.push_back({"model.embed_tokens.weight", {V, C}, 0.0f, 0.02f});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", {C}, 1.0f, 0.1f});
    t.push_back({p + "self_attn.q_proj.weight", {C, C}, 0.0f, 0.02f});
    t.push_back({p + "self_attn.k_proj.weight", {K, C}, 0.0f, 0.02f});
    t.push_back({p + "self_attn.v_proj.weight", {K, C}, 0.0f, 0.02f});
    t.push_back({p + "self_attn.o_proj.weight", {C, C}, 0.0f, 0.02f});
    t.push_back({p + "post_attention_layernorm.weight", {C}, 1.0f, 0.1f});
    t.push_back({p + "mlp.gate_proj.weight", {M, C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.up_proj.weight", {M, C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.down_proj.weight", {C, M}, 0.0f, 0.02f});
  }
  t.push_back({"model.norm.weight", {C}, 1.0f, 0.1f});
  t.push_back({"lm_head.weight", {V, C}, 0.0f, 0.02f});
  return t;
}

std::vector<TensorSpec> tensor_specs(const RandomModelSpec& s) {
  return is_llama(s) ? llama_tensors(s) : gpt2_tensors(s);
}

const char* dtype_json(const RandomModelSpec& s) { return s.bf16 ? "bfloat16" : "float32"; }

std::vector<std::string> tokenizer_files(const RandomModelSpec& s) {
  if (is_llama(s)) return {"tokenizer.model"};
  return {"vocab.json", "merges.txt"};
}

json gpt2_config(const RandomModelSpec& s) {
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
  return j;
}

json llama_config(const RandomModelSpec& s) {
  json j;
  j["architectures"] = json::array({"LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["num_hidden_layers"] = s.layers;
  j["hidden_size"] = s.width;
  j["num_attention_heads"] = s.heads;
  j["num_key_value_heads"] = kv_heads(s);
  j["intermediate_size"] = s.mlp;
  j["max_position_embeddings"] = s.ctx;
  j["vocab_size"] = s.vocab;
  j["rms_norm_eps"] = 1e-5;
  j["rope_theta"] = 10000.0;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = false;
  j["bos_token_id"] = 1;
  j["eos_token_id"] = 2;
  return j;
}

json config_json(const RandomModelSpec& s) {
  json j = is_llama(s) ? llama_config(s) : gpt2_config(s);
  j["torch_dtype"] = dtype_json(s);
  j[kSeedKey] = s.seed;
  return j;
}

bool same_int(const json& j, const char* key, int64_t want) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() && it->get<int64_t>() == want;
}

bool same_sizes(const json& j, const RandomModelSpec& s) {
  if (is_llama(s))
    return same_int(j, "num_hidden_layers", s.layers) && same_int(j, "hidden_size", s.width) &&
           same_int(j, "num_attention_heads", s.heads) && same_int(j, "num_key_value_heads", kv_heads(s)) &&
           same_int(j, "intermediate_size", s.mlp) && same_int(j, "max_position_embeddings", s.ctx) &&
           same_int(j, "vocab_size", s.vocab);
  return same_int(j, "n_layer", s.layers) && same_int(j, "n_embd", s.width) && same_int(j, "n_head", s.heads) &&
         same_int(j, "n_inner", s.mlp) && same_int(j, "n_positions", s.ctx) && same_int(j, "vocab_size", s.vocab);
}

}  // namespace

RandomModelSpec tinyllama_shape() {
  RandomModelSpec s;
  s.arch = "llama";
  s.layers = 22;
  s.width = 2048;
  s.heads = 32;
  s.kv_heads = 4;
  s.mlp = 5632;
  s.vocab = 32000;
  s.ctx = 2048;
  s.bf16 = true;
  return s;
}

void validate(const RandomModelSpec& s) {
  if (s.arch != "gpt2" && s.arch != "llama")
    throw Error("--arch: unknown shape '" + s.arch + "' (valid: gpt2, llama)");
  auto positive = [](int v, const char* flag) {
    if (v <= 0) throw Error(std::string(flag) + " must be positive (got " + std::to_string(v) + ")");
  };
  positive(s.layers, "--layers");
  positive(s.width, "--width");
  positive(s.heads, "--heads");
  positive(s.mlp, "--mlp");
  positive(s.vocab, "--vocab");
  positive(s.ctx, "--ctx");
  if (s.kv_heads < 0) throw Error("--kv-heads must not be negative (got " + std::to_string(s.kv_heads) + ")");
  if (s.width % s.heads != 0)
    throw Error("--width " + std::to_string(s.width) + " is not divisible by --heads " +
                std::to_string(s.heads));
  if (s.heads % kv_heads(s) != 0)
    throw Error("--heads " + std::to_string(s.heads) + " is not divisible by --kv-heads " +
                std::to_string(kv_heads(s)));
  if (!is_llama(s) && kv_heads(s) != s.heads) throw Error("--kv-heads: the gpt2 shape has no grouped-query attention");
}

size_t random_model_weight_bytes(const RandomModelSpec& spec) {
  size_t n = 0;
  for (const auto& t : tensor_specs(spec)) n += t.numel();
  return n * (spec.bf16 ? 2 : 4);
}

bool random_model_is_current(const std::string& dir, const RandomModelSpec& spec) {
  std::error_code ec;
  const std::string cfg = dir + "/config.json";
  if (!fs::is_regular_file(cfg, ec)) return false;
  for (const auto& f : tokenizer_files(spec))
    if (!fs::is_regular_file(dir + "/" + f, ec)) return false;
  const auto st_size = fs::file_size(dir + "/model.safetensors", ec);
  if (ec || st_size < random_model_weight_bytes(spec) + 8) return false;
  json j;
  try {
    j = json::parse(read_file(cfg));
  } catch (const std::exception&) {
    return false;
  }
  if (!j.is_object() || j.value("model_type", std::string()) != spec.arch ||
      j.value("torch_dtype", std::string()) != dtype_json(spec))
    return false;
  auto seed = j.find(kSeedKey);
  if (seed == j.end() || !seed->is_number_unsigned() || seed->get<uint64_t>() != spec.seed) return false;
  return same_sizes(j, spec);
}

std::string default_random_model_tokenizer_dir(const std::string& arch) {
  // NT_FIXTURE_TOKENIZERS: <repo>/../shared/fixtures/tokenizers, set by CMake for this file (not
  // derived from __FILE__, which ccache's base_dir makes relative).
  return (fs::path(NT_FIXTURE_TOKENIZERS) / (arch == "llama" ? "llama-spm" : "gpt2")).lexically_normal().string();
}

void write_random_model(const std::string& dir, const RandomModelSpec& spec, const std::string& tokenizer_dir) {
  validate(spec);
  if (random_model_is_current(dir, spec)) return;

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
  for (const auto& f : tokenizer_files(spec))
    if (!fs::is_regular_file(tokenizer_dir + "/" + f, ec))
      throw Error(tokenizer_dir + ": missing " + f + " (give a " + spec.arch + " tokenizer folder with --tokenizer)");
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
  const size_t elem = spec.bf16 ? sizeof(uint16_t) : sizeof(float);
  const size_t alloc_bytes = (total * elem + kHuge - 1) / kHuge * kHuge;
  std::unique_ptr<uint8_t, void (*)(void*)> values(static_cast<uint8_t*>(std::aligned_alloc(kHuge, alloc_bytes)),
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
    std::vector<float> chunk(spec.bf16 ? kChunk : 0);  // BF16: drawn as float32, then rounded
    for (size_t i; (i = next.fetch_add(1)) < items.size();) {
      const Item& it = items[i];
      const TensorSpec& t = specs[it.tensor];
      const size_t begin = it.chunk * kChunk;
      const size_t n = std::min(kChunk, t.numel() - begin);
      const uint64_t stream = mix(mix(spec.seed, it.tensor + 1), it.chunk + 1);
      uint8_t* out = values.get() + (offsets[it.tensor] + begin) * elem;
      if (!spec.bf16) {
        fill_normal(reinterpret_cast<float*>(out), n, t.offset, t.stddev, stream);
        continue;
      }
      fill_normal(chunk.data(), n, t.offset, t.stddev, stream);
      auto* bf = reinterpret_cast<uint16_t*>(out);
      for (size_t k = 0; k < n; ++k) bf[k] = f32_to_bf16(chunk[k]);
    }
  };
  const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n_threads; ++i) threads.emplace_back(work);
  work();
  for (auto& th : threads) th.join();

  std::vector<TensorToWrite> tensors;
  for (size_t t = 0; t < specs.size(); ++t) {
    tensors.push_back({specs[t].name, spec.bf16 ? DType::BF16 : DType::F32, specs[t].shape,
                       std::span<const uint8_t>(values.get() + offsets[t] * elem, specs[t].numel() * elem)});
  }
  write_safetensors(dir + "/model.safetensors", tensors,
                    {{"format", "pt"}, {kSeedKey, std::to_string(spec.seed)}});
  values.reset();

  for (const auto& f : tokenizer_files(spec)) write_file_atomic(dir + "/" + f, read_file(tokenizer_dir + "/" + f));
  write_file_atomic(cfg, config_json(spec).dump(2) + "\n");
}

}  // namespace nt
