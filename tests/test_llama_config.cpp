// Llama-family configuration and model loading: config.json errors, RoPE frequencies with llama3
// and linear scaling, and tiny random qwen2 / llama models (q/k/v biases, o_proj and MLP biases,
// head_dim != hidden/heads, tied and untied LM heads) checked against a plain double-precision
// reference forward pass written here.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/kernels.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_support.h"
#include "util/error.h"

namespace {

using nlohmann::json;
using nt::test::TempDir;
using nt::test::write_text;

template <class F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected nt::Error containing '" << needle << "'";
  } catch (const nt::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

json llama_config() {
  return {{"model_type", "llama"},     {"num_hidden_layers", 2},       {"hidden_size", 64},
          {"num_attention_heads", 4},  {"num_key_value_heads", 2},     {"intermediate_size", 176},
          {"rms_norm_eps", 1e-5},      {"rope_theta", 10000.0},        {"rope_scaling", nullptr},
          {"max_position_embeddings", 128}, {"vocab_size", 32000},     {"hidden_act", "silu"},
          {"attention_bias", false},   {"mlp_bias", false},            {"tie_word_embeddings", false},
          {"bos_token_id", 1},         {"eos_token_id", 2}};
}

nt::ModelConfig load_config(const TempDir& dir, const json& config) {
  write_text(dir.file("config.json"), config.dump());
  return nt::load_model_config(dir.path());
}

TEST(LlamaConfig, ParsesLlamaTiny) {
  nt::ModelConfig c = nt::load_model_config(nt::test::shared_path("fixtures/models/llama-tiny"));
  EXPECT_EQ(c.arch, nt::Arch::Llama);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.d_mlp, 176);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.n_ctx, 128);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_scaling.type, nt::RopeScalingType::None);
  EXPECT_EQ(c.activation, "silu");
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.o_proj_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_id, 2);
}

TEST(LlamaConfig, DefaultsAndModelTypes) {
  TempDir dir;
  json j = llama_config();
  j.erase("num_key_value_heads");  // default: one KV head per query head
  j.erase("tie_word_embeddings");  // default false
  j.erase("rope_scaling");
  j.erase("rope_theta");  // default 10000
  j["eos_token_id"] = {128001, 128009};
  nt::ModelConfig c = load_config(dir, j);
  EXPECT_EQ(c.n_kv_head, 4);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.eos_id, 128001);

  j = llama_config();
  j["head_dim"] = 32;  // given explicitly: q/o projections are 4 * 32 wide
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j["hidden_act"] = "swish";
  c = load_config(dir, j);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.o_proj_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(c.activation, "silu");

  j = llama_config();
  j["model_type"] = "qwen2";
  j.erase("attention_bias");
  j["rope_theta"] = 1000000.0;
  j["use_sliding_window"] = false;
  j["sliding_window"] = 64;
  c = load_config(dir, j);
  EXPECT_EQ(c.arch, nt::Arch::Llama);
  EXPECT_TRUE(c.attention_bias);  // qwen2: q/k/v always have biases ...
  EXPECT_FALSE(c.o_proj_bias);    // ... o_proj never
  EXPECT_FLOAT_EQ(c.rope_theta, 1e6f);
  EXPECT_EQ(c.n_ctx, 128);  // sliding window off

  j["use_sliding_window"] = true;
  EXPECT_EQ(load_config(dir, j).n_ctx, 64);  // = full attention while sequences fit the window

  j = llama_config();
  j["model_type"] = "mistral";
  j["sliding_window"] = 96;
  c = load_config(dir, j);
  EXPECT_EQ(c.n_ctx, 96);
  EXPECT_FALSE(c.attention_bias);
  j["sliding_window"] = nullptr;
  EXPECT_EQ(load_config(dir, j).n_ctx, 128);
}

TEST(LlamaConfig, Errors) {
  TempDir dir;
  const std::string path = dir.file("config.json");
  json j = llama_config();

  for (const char* type : {"yarn", "dynamic", "longrope"}) {
    j["rope_scaling"] = {{"rope_type", type}, {"factor", 4.0}};
    expect_error([&] { load_config(dir, j); }, path + ": unsupported rope_scaling type '" + type + "'");
  }
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};  // older key name
  expect_error([&] { load_config(dir, j); }, "unsupported rope_scaling type 'dynamic'");
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect_error([&] { load_config(dir, j); }, path + ": missing field 'rope_scaling.low_freq_factor'");
  j["rope_scaling"] = {{"rope_type", "linear"}};
  expect_error([&] { load_config(dir, j); }, "missing field 'rope_scaling.factor'");
  j["rope_scaling"] = "linear";
  expect_error([&] { load_config(dir, j); }, "'rope_scaling' must be an object or null");

  j = llama_config();
  j["num_key_value_heads"] = 3;
  expect_error([&] { load_config(dir, j); },
               path + ": num_attention_heads 4 is not divisible by num_key_value_heads 3");
  j["num_key_value_heads"] = 0;
  expect_error([&] { load_config(dir, j); }, "num_key_value_heads must be positive");

  j = llama_config();
  j["hidden_act"] = "gelu";
  expect_error([&] { load_config(dir, j); }, path + ": unsupported hidden_act 'gelu' (supported: silu)");
  j = llama_config();
  j.erase("intermediate_size");
  expect_error([&] { load_config(dir, j); }, path + ": missing field 'intermediate_size'");
  j = llama_config();
  j["hidden_size"] = 66;  // not divisible by 4 heads, and no head_dim given
  expect_error([&] { load_config(dir, j); }, "hidden_size 66 is not divisible by num_attention_heads 4");
  j = llama_config();
  j["head_dim"] = 15;
  expect_error([&] { load_config(dir, j); }, "head_dim must be even");
  // Numbers that do not fit float32, and sizes beyond any real model (before they become
  // buffer sizes).
  j = llama_config();
  j["rope_theta"] = 1e39;
  expect_error([&] { load_config(dir, j); }, path + ": field 'rope_theta' must be a finite float32 number");
  j = llama_config();
  j["rms_norm_eps"] = -1e39;
  expect_error([&] { load_config(dir, j); }, path + ": field 'rms_norm_eps' must be a finite float32 number");
  j = llama_config();
  j["max_position_embeddings"] = 0;
  expect_error([&] { load_config(dir, j); }, path + ": max_position_embeddings 0 is out of range [1, 16777216]");
  j = llama_config();
  j["head_dim"] = 1 << 20;
  expect_error([&] { load_config(dir, j); }, "num_attention_heads x head_dim 4194304 is out of range");
  j = llama_config();
  j["num_hidden_layers"] = 5000;
  expect_error([&] { load_config(dir, j); }, "num_hidden_layers 5000 is out of range [1, 1024]");
  json g = {{"model_type", "gpt2"}, {"n_layer", 2}, {"n_embd", 64}, {"n_head", 4}, {"n_positions", 128},
            {"vocab_size", 1000}, {"layer_norm_epsilon", 1e39}};
  expect_error([&] { load_config(dir, g); }, path + ": field 'layer_norm_epsilon' must be a finite float32 number");
  g["layer_norm_epsilon"] = 1e-5;
  g["vocab_size"] = 1 << 25;
  expect_error([&] { load_config(dir, g); }, "vocab_size 33554432 is out of range");
  // A huge n_embd: 4 * n_embd (the default n_inner) would overflow int; with n_inner given it
  // must not even be computed (the fuzzer's find, caught by UBSan in the sanitizer pass).
  g["vocab_size"] = 1000;
  g["n_embd"] = 1 << 30;
  expect_error([&] { load_config(dir, g); }, path + ": field 'n_embd' is too large");
  g["n_inner"] = 64;
  expect_error([&] { load_config(dir, g); }, "is out of range");

  j = llama_config();
  j["model_type"] = "gemma";
  expect_error([&] { load_config(dir, j); },
               path + ": unknown model_type 'gemma' (supported: gpt2, llama, mistral, qwen2, gpt_neox, gemma2)");
}

// inv_freq with Llama-3.1's rope_scaling, against transformers' _compute_llama3_parameters done
// by hand in double precision.
TEST(LlamaConfig, Llama3RopeScalingInvFreq) {
  TempDir dir;
  json j = llama_config();
  j["hidden_size"] = 512;
  j["num_attention_heads"] = 4;  // head_dim 128, as in Llama-3.1-8B
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  nt::ModelConfig c = load_config(dir, j);
  ASSERT_EQ(c.rope_scaling.type, nt::RopeScalingType::Llama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  const std::vector<float> inv = nt::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  ASSERT_EQ(inv.size(), 64u);

  const double factor = 8, low = 1, high = 4, old_ctx = 8192;
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  int n_high = 0, n_low = 0, n_mid = 0;
  for (int i = 0; i < 64; ++i) {
    const double f = 1.0 / std::pow(500000.0, 2.0 * i / 128.0);
    const double wavelen = 2 * M_PI / f;
    double expected;
    if (wavelen < high_wavelen) {
      expected = f;
      ++n_high;
    } else if (wavelen > low_wavelen) {
      expected = f / factor;
      ++n_low;
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      expected = (1 - smooth) * f / factor + smooth * f;
      ++n_mid;
    }
    EXPECT_NEAR(inv[static_cast<size_t>(i)], expected, 2e-6 * expected) << "j=" << i;
  }
  EXPECT_GT(n_high, 0);  // every branch of the formula is exercised
  EXPECT_GT(n_low, 0);
  EXPECT_GT(n_mid, 0);
  EXPECT_FLOAT_EQ(inv[0], 1.0f);

  // Linear scaling divides every frequency; no scaling leaves them alone.
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  c = load_config(dir, j);
  const std::vector<float> lin = nt::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  j["rope_scaling"] = {{"rope_type", "default"}};
  c = load_config(dir, j);
  EXPECT_EQ(c.rope_scaling.type, nt::RopeScalingType::None);
  const std::vector<float> plain = nt::rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_NEAR(plain[i], 1.0 / std::pow(500000.0, 2.0 * static_cast<double>(i) / 128.0), 1e-6 * plain[i]);
    EXPECT_FLOAT_EQ(lin[i], plain[i] / 4.0f);
  }
}

// ---- tiny random models ------------------------------------------------------------------------

struct TinyModel {
  json config;
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;

  void add(const std::string& name, std::vector<int64_t> shape, std::mt19937& rng, float mean, float std) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::normal_distribution<float> dist(mean, std);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng);
    tensors[name] = std::move(v);
    shapes[name] = std::move(shape);
  }
  void write(const TempDir& dir) const {
    write_text(dir.file("config.json"), config.dump(2));
    std::vector<nt::TensorToWrite> out;
    for (const auto& [name, v] : tensors) {
      std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
      out.push_back({name, nt::DType::F32, shapes.at(name), bytes});
    }
    nt::write_safetensors(dir.file("model.safetensors"), out, {{"format", "pt"}});
  }
  const std::vector<float>& t(const std::string& name) const { return tensors.at(name); }
};

// Builds a random model for `config` (HF tensor names; biases as the config asks).
TinyModel make_tiny(const json& config, unsigned seed) {
  TinyModel m;
  m.config = config;
  const int64_t C = config["hidden_size"], M = config["intermediate_size"], V = config["vocab_size"];
  const int64_t H = config["num_attention_heads"], KVH = config["num_key_value_heads"];
  const int64_t hd = config.contains("head_dim") ? config["head_dim"].get<int64_t>() : C / H;
  const bool qwen2 = config["model_type"] == "qwen2";
  const bool qkv_bias = qwen2 || config.value("attention_bias", false);
  const bool o_bias = !qwen2 && config.value("attention_bias", false);
  const bool mlp_bias = !qwen2 && config.value("mlp_bias", false);
  std::mt19937 rng(seed);
  m.add("model.embed_tokens.weight", {V, C}, rng, 0, 0.5f);
  for (int l = 0; l < config["num_hidden_layers"].get<int>(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    m.add(p + "input_layernorm.weight", {C}, rng, 1, 0.1f);
    m.add(p + "post_attention_layernorm.weight", {C}, rng, 1, 0.1f);
    for (const char* name : {"q_proj", "k_proj", "v_proj"}) {
      const int64_t out = std::string(name) == "q_proj" ? H * hd : KVH * hd;
      m.add(p + "self_attn." + name + ".weight", {out, C}, rng, 0, 0.2f);
      if (qkv_bias) m.add(p + "self_attn." + name + ".bias", {out}, rng, 0, 0.5f);
    }
    m.add(p + "self_attn.o_proj.weight", {C, H * hd}, rng, 0, 0.2f);
    if (o_bias) m.add(p + "self_attn.o_proj.bias", {C}, rng, 0, 0.2f);
    m.add(p + "mlp.gate_proj.weight", {M, C}, rng, 0, 0.2f);
    m.add(p + "mlp.up_proj.weight", {M, C}, rng, 0, 0.2f);
    m.add(p + "mlp.down_proj.weight", {C, M}, rng, 0, 0.2f);
    if (mlp_bias) {
      m.add(p + "mlp.gate_proj.bias", {M}, rng, 0, 0.2f);
      m.add(p + "mlp.up_proj.bias", {M}, rng, 0, 0.2f);
      m.add(p + "mlp.down_proj.bias", {C}, rng, 0, 0.2f);
    }
  }
  m.add("model.norm.weight", {C}, rng, 1, 0.1f);
  if (!config.value("tie_word_embeddings", false)) m.add("lm_head.weight", {V, C}, rng, 0, 0.2f);
  return m;
}

// Straightforward double-precision forward pass over a whole sequence: logits [T, V].
// (Plain int indices: -Wall -Wextra does not warn on their conversion to size_t.)
std::vector<double> reference_logits(const TinyModel& m, const nt::ModelConfig& c, const std::vector<int>& ids) {
  const int C = c.d_model, M = c.d_mlp, H = c.n_head, KVH = c.n_kv_head, hd = c.head_dim, V = c.vocab_size;
  const int T = static_cast<int>(ids.size());
  auto has = [&](const std::string& n) { return m.tensors.count(n) > 0; };
  // y[out] = W[out, in] x (+ b)
  auto linear = [&](const std::vector<double>& x, const std::string& w, int out, const std::string& b) {
    const auto& W = m.t(w);
    const int in = static_cast<int>(x.size());
    std::vector<double> y(out);
    for (int o = 0; o < out; ++o) {
      double s = has(b) ? m.t(b)[o] : 0.0;
      for (int i = 0; i < in; ++i) s += W[o * in + i] * x[i];
      y[o] = s;
    }
    return y;
  };
  auto rms = [&](const std::vector<double>& x, const std::string& w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / x.size() + c.norm_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = m.t(w)[i] * x[i] * inv;
    return y;
  };
  const std::vector<float> inv_freq = nt::rope_inv_freq(hd, c.rope_theta, c.rope_scaling);
  auto rope = [&](std::vector<double>& x, int heads, int pos) {  // rotate_half pairs (j, j + hd/2)
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd / 2; ++j) {
        const double a = pos * static_cast<double>(inv_freq[j]);
        double& u0 = x[h * hd + j];
        double& u1 = x[h * hd + j + hd / 2];
        const double r0 = u0 * std::cos(a) - u1 * std::sin(a), r1 = u1 * std::cos(a) + u0 * std::sin(a);
        u0 = r0;
        u1 = r1;
      }
  };
  const auto& embed = m.t("model.embed_tokens.weight");
  std::vector<std::vector<double>> h(T);
  for (int t = 0; t < T; ++t) h[t].assign(embed.begin() + ids[t] * C, embed.begin() + (ids[t] + 1) * C);
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", a = p + "self_attn.", mp = p + "mlp.";
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      const auto x = rms(h[t], p + "input_layernorm.weight");
      q[t] = linear(x, a + "q_proj.weight", H * hd, a + "q_proj.bias");
      k[t] = linear(x, a + "k_proj.weight", KVH * hd, a + "k_proj.bias");
      v[t] = linear(x, a + "v_proj.weight", KVH * hd, a + "v_proj.bias");
      rope(q[t], H, t);
      rope(k[t], KVH, t);
    }
    for (int t = 0; t < T; ++t) {
      std::vector<double> att(H * hd, 0.0);
      for (int hh = 0; hh < H; ++hh) {
        const int kv = hh / (H / KVH);
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += q[t][hh * hd + i] * k[u][kv * hd + i];
          s[u] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[u]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int u = 0; u <= t; ++u)
          for (int i = 0; i < hd; ++i) att[hh * hd + i] += s[u] / sum * v[u][kv * hd + i];
      }
      const auto o = linear(att, a + "o_proj.weight", C, a + "o_proj.bias");
      for (int i = 0; i < C; ++i) h[t][i] += o[i];
      const auto x = rms(h[t], p + "post_attention_layernorm.weight");
      auto g = linear(x, mp + "gate_proj.weight", M, mp + "gate_proj.bias");
      const auto up = linear(x, mp + "up_proj.weight", M, mp + "up_proj.bias");
      for (int i = 0; i < M; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * up[i];
      const auto d = linear(g, mp + "down_proj.weight", C, mp + "down_proj.bias");
      for (int i = 0; i < C; ++i) h[t][i] += d[i];
    }
  }
  const std::string head = has("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
  std::vector<double> logits;
  for (int t = 0; t < T; ++t) {
    const auto y = linear(rms(h[t], "model.norm.weight"), head, V, "");
    logits.insert(logits.end(), y.begin(), y.end());
  }
  return logits;
}

// Prefill of the whole sequence in one step, then the same sequence again one token at a time:
// returns both [T, V] logits.
std::pair<std::vector<float>, std::vector<float>> run_model(nt::Model& model, const std::vector<int>& ids) {
  const nt::ModelConfig& c = model.config();
  const size_t T = ids.size(), V = static_cast<size_t>(c.vocab_size);
  std::vector<float> full(T * V), inc(T * V);
  nt::KVCache cache(c);
  cache.open(0, static_cast<int>(T));
  nt::StepBatch b;
  b.tokens = ids;
  for (int p = 0; p < static_cast<int>(T); ++p) {
    b.rows.push_back({0, p, false});
    b.logit_rows.push_back(p);
  }
  model.forward(b, cache, nullptr, full.data());
  nt::KVCache cache2(c);
  cache2.open(0, static_cast<int>(T));
  for (int p = 0; p < static_cast<int>(T); ++p) {
    nt::StepBatch s;
    s.tokens = {ids[static_cast<size_t>(p)]};
    s.rows = {{0, p, p > 0}};
    s.logit_rows = {0};
    model.forward(s, cache2, nullptr, inc.data() + static_cast<size_t>(p) * V);
  }
  return {full, inc};
}

double max_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

json qwen2_config() {
  return {{"model_type", "qwen2"},        {"architectures", {"Qwen2ForCausalLM"}},
          {"num_hidden_layers", 2},       {"hidden_size", 32},
          {"num_attention_heads", 4},     {"num_key_value_heads", 2},
          {"intermediate_size", 48},      {"vocab_size", 64},
          {"max_position_embeddings", 32}, {"rms_norm_eps", 1e-6},
          {"rope_theta", 1000000.0},      {"hidden_act", "silu"},
          {"tie_word_embeddings", true},  {"use_sliding_window", false},
          {"sliding_window", 32},         {"bos_token_id", 60},
          {"eos_token_id", 61}};
}

const std::vector<int> kIds = {3, 17, 42, 5, 63, 0, 9, 9, 28, 11, 50, 7};

TEST(LlamaTinyModels, Qwen2BiasesAreLoadedAndUsed) {
  TempDir dir;
  TinyModel m = make_tiny(qwen2_config(), 7);
  ASSERT_TRUE(m.tensors.count("model.layers.0.self_attn.q_proj.bias"));
  ASSERT_FALSE(m.tensors.count("model.layers.0.self_attn.o_proj.bias"));
  ASSERT_FALSE(m.tensors.count("lm_head.weight"));  // tied
  m.write(dir);
  auto model = nt::load_model(dir.path());
  const nt::ModelConfig& c = model->config();
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.tie_embeddings);
  auto [full, inc] = run_model(*model, kIds);
  const auto ref = reference_logits(m, c, kIds);
  EXPECT_LT(max_diff(full, ref), 2e-5);
  EXPECT_LT(max_diff(inc, ref), 2e-5);

  // The same weights with the q/k/v biases zeroed give other logits (and still match the reference).
  TempDir zero_dir;
  TinyModel z = m;
  for (auto& [name, v] : z.tensors)
    if (name.ends_with("_proj.bias")) std::fill(v.begin(), v.end(), 0.0f);
  z.write(zero_dir);
  auto zmodel = nt::load_model(zero_dir.path());
  auto [zfull, zinc] = run_model(*zmodel, kIds);
  EXPECT_LT(max_diff(zfull, reference_logits(z, c, kIds)), 2e-5);
  double change = 0;
  for (size_t i = 0; i < full.size(); ++i) change = std::max(change, std::fabs(double{full[i]} - zfull[i]));
  EXPECT_GT(change, 1e-2);

  // A missing bias is an error naming the tensor.
  TempDir missing_dir;
  TinyModel mm = m;
  mm.tensors.erase("model.layers.1.self_attn.k_proj.bias");
  mm.shapes.erase("model.layers.1.self_attn.k_proj.bias");
  mm.write(missing_dir);
  expect_error([&] { nt::load_model(missing_dir.path()); }, "model.layers.1.self_attn.k_proj.bias");
}

// attention_bias (q/k/v and o_proj), mlp_bias, head_dim != hidden/heads, an untied LM head,
// GQA with 3 query heads per KV head and llama3 RoPE scaling, all in one model.
TEST(LlamaTinyModels, LlamaWithAllOptionsMatchesReference) {
  TempDir dir;
  json cfg = {{"model_type", "llama"},       {"num_hidden_layers", 2},  {"hidden_size", 24},
              {"num_attention_heads", 6},    {"num_key_value_heads", 2}, {"head_dim", 8},
              {"intermediate_size", 40},     {"vocab_size", 64},        {"max_position_embeddings", 32},
              {"rms_norm_eps", 1e-5},        {"rope_theta", 500.0},     {"hidden_act", "silu"},
              {"attention_bias", true},      {"mlp_bias", true},        {"tie_word_embeddings", false},
              {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 4.0}, {"low_freq_factor", 1.0},
                                {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}}}};
  TinyModel m = make_tiny(cfg, 11);
  ASSERT_TRUE(m.tensors.count("model.layers.0.self_attn.o_proj.bias"));
  ASSERT_TRUE(m.tensors.count("model.layers.0.mlp.down_proj.bias"));
  m.write(dir);
  auto model = nt::load_model(dir.path());
  const nt::ModelConfig& c = model->config();
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.rope_scaling.type, nt::RopeScalingType::Llama3);
  auto [full, inc] = run_model(*model, kIds);
  const auto ref = reference_logits(m, c, kIds);
  EXPECT_LT(max_diff(full, ref), 2e-5);
  EXPECT_LT(max_diff(inc, ref), 2e-5);

  // Untied: without lm_head.weight the model does not load.
  TempDir no_head;
  TinyModel nh = m;
  nh.tensors.erase("lm_head.weight");
  nh.shapes.erase("lm_head.weight");
  nh.write(no_head);
  expect_error([&] { nt::load_model(no_head.path()); }, "lm_head.weight");
}

TEST(LlamaTinyModels, MissingTokenizerFiles) {
  TempDir dir;
  make_tiny(qwen2_config(), 3).write(dir);
  EXPECT_NO_THROW(nt::load_model(dir.path()));
  expect_error([&] { nt::open_session(dir.path()); },
               dir.path() + ": no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, "
                            "tokenizer.model)");
}

}  // namespace
