#include "io/random_family_model.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kMarkKey = "neurontrace_random_family";  // config.json: "<name> seed <seed>"
constexpr size_t kChunk = size_t{1} << 20;

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  float offset, stddev;
  size_t numel() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
};

struct Family {
  json config;
  std::vector<Tensor> tensors;
  DType dtype;
  std::string tokenizer_file;  // in ../shared/fixtures/tokenizers/
};

Family pythia_160m() {
  const int L = 12, C = 768, H = 12, M = 3072, V = 50304;
  Family f{{{"architectures", {"GPTNeoXForCausalLM"}}, {"model_type", "gpt_neox"}, {"num_hidden_layers", L},
            {"hidden_size", C}, {"num_attention_heads", H}, {"intermediate_size", M}, {"vocab_size", V},
            {"max_position_embeddings", 2048}, {"rotary_pct", 0.25}, {"rotary_emb_base", 10000},
            {"use_parallel_residual", true}, {"layer_norm_eps", 1e-5}, {"hidden_act", "gelu"},
            {"tie_word_embeddings", false}, {"bos_token_id", 0}, {"eos_token_id", 0}, {"torch_dtype", "float32"}},
           {},
           DType::F32,
           "gpt-neox/tokenizer.json"};
  auto& t = f.tensors;
  t.push_back({"gpt_neox.embed_in.weight", {V, C}, 0.0f, 0.02f});
  for (int l = 0; l < L; ++l) {
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    for (const char* ln : {"input_layernorm", "post_attention_layernorm"}) {
      t.push_back({p + ln + ".weight", {C}, 1.0f, 0.1f});
      t.push_back({p + ln + ".bias", {C}, 0.0f, 0.02f});
    }
    t.push_back({p + "attention.query_key_value.weight", {3 * C, C}, 0.0f, 0.02f});
    t.push_back({p + "attention.query_key_value.bias", {3 * C}, 0.0f, 0.02f});
    t.push_back({p + "attention.dense.weight", {C, C}, 0.0f, 0.02f});
    t.push_back({p + "attention.dense.bias", {C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.dense_h_to_4h.weight", {M, C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.dense_h_to_4h.bias", {M}, 0.0f, 0.02f});
    t.push_back({p + "mlp.dense_4h_to_h.weight", {C, M}, 0.0f, 0.02f});
    t.push_back({p + "mlp.dense_4h_to_h.bias", {C}, 0.0f, 0.02f});
  }
  t.push_back({"gpt_neox.final_layer_norm.weight", {C}, 1.0f, 0.1f});
  t.push_back({"gpt_neox.final_layer_norm.bias", {C}, 0.0f, 0.02f});
  t.push_back({"embed_out.weight", {V, C}, 0.0f, 0.02f});
  return f;
}

Family gemma2_2b() {
  const int L = 26, C = 2304, H = 8, KVH = 4, D = 256, M = 9216, V = 256000;
  Family f{{{"architectures", {"Gemma2ForCausalLM"}}, {"model_type", "gemma2"}, {"num_hidden_layers", L},
            {"hidden_size", C}, {"num_attention_heads", H}, {"num_key_value_heads", KVH}, {"head_dim", D},
            {"intermediate_size", M}, {"vocab_size", V}, {"max_position_embeddings", 8192},
            {"query_pre_attn_scalar", 256}, {"attn_logit_softcapping", 50.0}, {"final_logit_softcapping", 30.0},
            {"sliding_window", 4096}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
            {"hidden_activation", "gelu_pytorch_tanh"}, {"tie_word_embeddings", true}, {"bos_token_id", 2},
            {"eos_token_id", 1}, {"pad_token_id", 0}, {"torch_dtype", "bfloat16"}},
           {},
           DType::BF16,
           "llama-spm/tokenizer.model"};
  auto& t = f.tensors;
  t.push_back({"model.embed_tokens.weight", {V, C}, 0.0f, 0.02f});
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* ln : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                           "post_feedforward_layernorm"})
      t.push_back({p + ln + ".weight", {C}, 0.0f, 0.1f});
    t.push_back({p + "self_attn.q_proj.weight", {H * D, C}, 0.0f, 0.02f});
    t.push_back({p + "self_attn.k_proj.weight", {KVH * D, C}, 0.0f, 0.02f});
    t.push_back({p + "self_attn.v_proj.weight", {KVH * D, C}, 0.0f, 0.02f});
    t.push_back({p + "self_attn.o_proj.weight", {C, H * D}, 0.0f, 0.02f});
    t.push_back({p + "mlp.gate_proj.weight", {M, C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.up_proj.weight", {M, C}, 0.0f, 0.02f});
    t.push_back({p + "mlp.down_proj.weight", {C, M}, 0.0f, 0.02f});
  }
  t.push_back({"model.norm.weight", {C}, 0.0f, 0.1f});
  return f;
}

Family family(const std::string& name) {
  if (name == "pythia-160m") return pythia_160m();
  if (name == "gemma2-2b") return gemma2_2b();
  throw Error("unknown random model shape '" + name + "' (known: pythia-160m, gemma2-2b)");
}

// <repo>/../shared/fixtures/tokenizers, the repository found from the running program
// (<repo>/build/<program>).
std::string fixture_tokenizers_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find the running program (/proc/self/exe: " + ec.message() + ")");
  return (exe.parent_path().parent_path().parent_path() / "shared" / "fixtures" / "tokenizers").string();
}

std::string mark(const std::string& name, uint64_t seed) { return name + " seed " + std::to_string(seed); }

// Fills every tensor, chunk by chunk on all cores; values stored as `dtype` (F32 or BF16).
std::vector<uint8_t> generate(const Family& f, uint64_t seed, std::vector<size_t>& offsets) {
  const size_t es = f.dtype == DType::BF16 ? 2 : 4;
  size_t total = 0;
  for (const Tensor& t : f.tensors) {
    offsets.push_back(total);
    total += t.numel() * es;
  }
  std::vector<uint8_t> data(total);
  struct Item {
    size_t tensor, chunk;
  };
  std::vector<Item> items;
  for (size_t t = 0; t < f.tensors.size(); ++t)
    for (size_t c = 0; c * kChunk < f.tensors[t].numel(); ++c) items.push_back({t, c});
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < items.size();) {
      const Tensor& t = f.tensors[items[i].tensor];
      const size_t begin = items[i].chunk * kChunk, n = std::min(kChunk, t.numel() - begin);
      std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + items[i].tensor * 0x100000001B3ull + items[i].chunk);
      std::normal_distribution<float> normal(t.offset, t.stddev);
      uint8_t* out = data.data() + offsets[items[i].tensor] + begin * es;
      for (size_t k = 0; k < n; ++k) {
        const float v = normal(rng);
        if (es == 2) {
          const uint16_t h = f32_to_bf16(v);
          std::memcpy(out + 2 * k, &h, 2);
        } else {
          std::memcpy(out + 4 * k, &v, 4);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < std::max(1u, std::thread::hardware_concurrency()); ++i) threads.emplace_back(work);
  work();
  for (auto& th : threads) th.join();
  return data;
}

}  // namespace

std::vector<std::string> random_family_names() { return {"pythia-160m", "gemma2-2b"}; }

bool is_random_family(const std::string& name) {
  const auto names = random_family_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool random_family_is_current(const std::string& dir, const std::string& name, uint64_t seed) {
  std::error_code ec;
  if (!fs::is_regular_file(dir + "/config.json", ec) || !fs::is_regular_file(dir + "/model.safetensors", ec) ||
      !fs::is_regular_file(dir + "/" + fs::path(family(name).tokenizer_file).filename().string(), ec))
    return false;
  try {
    const json j = json::parse(read_file(dir + "/config.json"));
    return j.is_object() && j.value(kMarkKey, std::string()) == mark(name, seed);
  } catch (const std::exception&) {
    return false;
  }
}

void write_random_family(const std::string& dir, const std::string& name, uint64_t seed) {
  Family f = family(name);
  if (random_family_is_current(dir, name, seed)) return;
  std::error_code ec;
  const std::string cfg = dir + "/config.json";
  if (fs::exists(cfg, ec)) {
    bool ours = false;
    try {
      const json j = json::parse(read_file(cfg));
      ours = j.is_object() && j.contains(kMarkKey);
    } catch (const std::exception&) {
    }
    if (!ours) throw Error(dir + ": holds a model not written by make_random_model; refusing to overwrite it");
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create folder (" + ec.message() + ")");
  fs::remove(cfg, ec);  // an old config.json must not describe the new weights

  std::vector<size_t> offsets;
  const std::vector<uint8_t> data = generate(f, seed, offsets);
  const size_t es = f.dtype == DType::BF16 ? 2 : 4;
  std::vector<TensorToWrite> tensors;
  for (size_t t = 0; t < f.tensors.size(); ++t)
    tensors.push_back({f.tensors[t].name, f.dtype, f.tensors[t].shape,
                       std::span<const uint8_t>(data.data() + offsets[t], f.tensors[t].numel() * es)});
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  const fs::path tokenizers = fixture_tokenizers_dir();
  write_file_atomic(dir + "/" + fs::path(f.tokenizer_file).filename().string(),
                    read_file((tokenizers / f.tokenizer_file).string()));
  f.config[kMarkKey] = mark(name, seed);
  write_file_atomic(cfg, f.config.dump(2) + "\n");
}

}  // namespace nt
