// GPT-NeoX (Pythia) and Gemma-2 configuration: the fixtures' config.json read as the fixtures README
// says, bad configs refused by name, the hook sites each family fires (no hook_resid_mid with
// GPT-NeoX's parallel residual), and the residual wiring of both GPT-NeoX variants on pythia-tiny's
// weights (the parallel one is checked numerically by test_model_goldens).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hooks/hook_point.h"
#include "io/model_config.h"
#include "model/model.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace {

using nlohmann::json;
using nt::test::shared_path;
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

json fixture_config(const std::string& model) {
  return json::parse(nt::read_file(shared_path("fixtures/models/" + model + "/config.json")));
}

nt::ModelConfig load_config(const TempDir& dir, const json& config) {
  write_text(dir.file("config.json"), config.dump());
  return nt::load_model_config(dir.path());
}

TEST(NeoxGemmaConfig, ParsesPythiaTiny) {
  const nt::ModelConfig c = nt::load_model_config(shared_path("fixtures/models/pythia-tiny"));
  EXPECT_EQ(c.arch, nt::Arch::GptNeox);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.d_model, 48);
  EXPECT_EQ(c.n_head, 3);
  EXPECT_EQ(c.n_kv_head, 3);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rotary_dims, 4);
  EXPECT_EQ(c.d_mlp, 192);
  EXPECT_EQ(c.vocab_size, 8064);
  EXPECT_TRUE(c.parallel_residual);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(c.activation, "gelu");
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
}

TEST(NeoxGemmaConfig, ParsesGemma2Tiny) {
  const nt::ModelConfig c = nt::load_model_config(shared_path("fixtures/models/gemma2-tiny"));
  EXPECT_EQ(c.arch, nt::Arch::Gemma2);
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.d_mlp, 128);
  EXPECT_FLOAT_EQ(c.attn_scale, 1.0f / std::sqrt(8.0f));
  EXPECT_FLOAT_EQ(c.attn_softcap, 5.0f);
  EXPECT_FLOAT_EQ(c.final_softcap, 10.0f);
  EXPECT_EQ(c.sliding_window, 5);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.activation, "gelu_pytorch_tanh");
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-6f);
}

// Real Pythia configs (transformers 4.24) have only rotary_pct / rotary_emb_base; newer files only
// their copies partial_rotary_factor / rope_theta are read when the originals are absent.
TEST(NeoxGemmaConfig, PythiaRotaryKeys) {
  TempDir dir;
  json j = fixture_config("pythia-tiny");
  j.erase("partial_rotary_factor");
  j.erase("rope_theta");
  j["rotary_pct"] = 0.5;
  j["rotary_emb_base"] = 500;
  nt::ModelConfig c = load_config(dir, j);
  EXPECT_EQ(c.rotary_dims, 8);
  EXPECT_FLOAT_EQ(c.rope_theta, 500.0f);
  j = fixture_config("pythia-tiny");
  j.erase("rotary_pct");
  j.erase("rotary_emb_base");
  j["partial_rotary_factor"] = 1.0;
  c = load_config(dir, j);
  EXPECT_EQ(c.rotary_dims, 16);
  j["use_parallel_residual"] = false;
  EXPECT_FALSE(load_config(dir, j).parallel_residual);
}

TEST(NeoxGemmaConfig, BadPythiaConfigsRefusedByName) {
  TempDir dir;
  const std::string path = dir.file("config.json");
  json j = fixture_config("pythia-tiny");
  j.erase("rotary_pct");
  j.erase("partial_rotary_factor");
  expect_error([&] { load_config(dir, j); }, path + ": missing field 'rotary_pct'");
  j = fixture_config("pythia-tiny");
  j["rotary_pct"] = 0;
  expect_error([&] { load_config(dir, j); }, path + ": field 'rotary_pct' must be a number in (0, 1]");
  j["rotary_pct"] = 1.5;
  expect_error([&] { load_config(dir, j); }, "field 'rotary_pct' must be a number in (0, 1]");
  j["rotary_pct"] = 0.1;  // int(16 * 0.1) = 1 rotary dim
  expect_error([&] { load_config(dir, j); }, "rotary_pct gives 1 rotary dims per head");
  j = fixture_config("pythia-tiny");
  j["hidden_act"] = "relu";
  expect_error([&] { load_config(dir, j); }, path + ": unsupported hidden_act 'relu'");
  j = fixture_config("pythia-tiny");
  j["layer_norm_eps"] = 1e39;
  expect_error([&] { load_config(dir, j); }, "field 'layer_norm_eps' must be a finite float32 number");
  j = fixture_config("pythia-tiny");
  j["rotary_emb_base"] = -1;
  expect_error([&] { load_config(dir, j); }, "field 'rotary_emb_base' must be positive");
  j = fixture_config("pythia-tiny");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  expect_error([&] { load_config(dir, j); }, "rope_scaling is not supported for gpt_neox");
  j = fixture_config("pythia-tiny");
  j["attention_bias"] = false;
  expect_error([&] { load_config(dir, j); }, "attention_bias=false is not supported");
  j = fixture_config("pythia-tiny");
  j["hidden_size"] = 50;
  expect_error([&] { load_config(dir, j); }, "hidden_size 50 is not divisible by num_attention_heads 3");
}

TEST(NeoxGemmaConfig, BadGemma2ConfigsRefusedByName) {
  TempDir dir;
  const std::string path = dir.file("config.json");
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"}) {
    json j = fixture_config("gemma2-tiny");
    j[key] = 1e39;  // not finite in float32 (JSON has no literal infinity)
    expect_error([&] { load_config(dir, j); }, path + ": field '" + key + "' must be a finite float32 number");
    j[key] = 0;
    expect_error([&] { load_config(dir, j); }, path + ": field '" + key + "' must be a positive number or null");
    j[key] = "5";
    expect_error([&] { load_config(dir, j); }, path + ": field '" + key + "' must be a number");
    j[key] = nullptr;  // null: no cap
    EXPECT_EQ(key[0] == 'a' ? load_config(dir, j).attn_softcap : load_config(dir, j).final_softcap, 0.0f);
  }
  json j = fixture_config("gemma2-tiny");
  j["hidden_activation"] = "gelu_fast";
  expect_error([&] { load_config(dir, j); }, path + ": unsupported hidden_activation 'gelu_fast'");
  j = fixture_config("gemma2-tiny");
  j.erase("hidden_activation");
  j["hidden_act"] = "silu";
  expect_error([&] { load_config(dir, j); }, path + ": unsupported hidden_act 'silu'");
  for (const char* key : {"head_dim", "query_pre_attn_scalar"}) {
    j = fixture_config("gemma2-tiny");
    j.erase(key);
    expect_error([&] { load_config(dir, j); }, path + ": missing field '" + key + "'");
  }
  j = fixture_config("gemma2-tiny");
  j["query_pre_attn_scalar"] = 0;
  expect_error([&] { load_config(dir, j); }, "field 'query_pre_attn_scalar' must be positive");
  j = fixture_config("gemma2-tiny");
  j["sliding_window"] = 0;
  expect_error([&] { load_config(dir, j); }, "field 'sliding_window' must be positive or null");
  j = fixture_config("gemma2-tiny");
  j["num_key_value_heads"] = 3;
  expect_error([&] { load_config(dir, j); }, "num_attention_heads 4 is not divisible by num_key_value_heads 3");
  j = fixture_config("gemma2-tiny");
  j["head_dim"] = 15;
  expect_error([&] { load_config(dir, j); }, "head_dim must be positive and even");
  j = fixture_config("gemma2-tiny");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  expect_error([&] { load_config(dir, j); }, "rope_scaling is not supported for gemma2");
}

std::vector<nt::HookSite> sites_of(const std::string& model, bool parallel = true) {
  nt::ModelConfig c = nt::load_model_config(shared_path("fixtures/models/" + model));
  c.parallel_residual = parallel;
  return nt::model_hook_sites(c);
}

TEST(NeoxGemmaConfig, HookSitesPerFamily) {
  using S = nt::HookSite;
  EXPECT_EQ(sites_of("pythia-tiny"), (std::vector<S>{S::Embed, S::ResidPre, S::AttnOut, S::MlpPre, S::MlpPost,
                                                      S::MlpOut, S::ResidPost, S::LnFinal}));
  EXPECT_EQ(sites_of("pythia-tiny", false),
            (std::vector<S>{S::Embed, S::ResidPre, S::AttnOut, S::ResidMid, S::MlpPre, S::MlpPost, S::MlpOut,
                            S::ResidPost, S::LnFinal}));
  EXPECT_EQ(sites_of("gemma2-tiny"),
            (std::vector<S>{S::Embed, S::ResidPre, S::AttnOut, S::ResidMid, S::MlpPre, S::MlpPreLinear, S::MlpPost,
                            S::MlpOut, S::ResidPost, S::LnFinal}));
  const nt::ModelConfig pythia = nt::load_model_config(shared_path("fixtures/models/pythia-tiny"));
  expect_error([&] { nt::check_hook_point(pythia, {S::ResidMid, 0}); }, "gpt_neox");
  expect_error([&] { nt::check_hook_point(pythia, {S::MlpPreLinear, 0}); }, "gpt_neox");
  expect_error([&] { nt::check_hook_point(pythia, {S::PosEmbed, -1}); }, "gpt_neox");
}

// Activations of every layer at one site, from one prefill of `ids`.
struct Captured {
  std::vector<std::vector<float>> layers;
};

std::map<nt::HookSite, Captured> run_prefill(nt::Model& model, const std::vector<int>& ids,
                                             const std::vector<nt::HookSite>& sites) {
  const nt::ModelConfig& c = model.config();
  std::map<nt::HookSite, Captured> out;
  nt::Hooks hooks(c);
  for (nt::HookSite site : sites) {
    out[site].layers.assign(static_cast<size_t>(c.n_layer), {});
    for (int l = 0; l < c.n_layer; ++l)
      hooks.add({site, l}, [&out, site, l](const nt::HookContext& ctx, float* acts) {
        out[site].layers[static_cast<size_t>(l)].assign(acts, acts + ctx.rows.size() * ctx.width);
      });
  }
  nt::KVCache cache(c);
  cache.open(0, static_cast<int>(ids.size()));
  nt::StepBatch batch;
  batch.tokens = ids;
  for (int p = 0; p < static_cast<int>(ids.size()); ++p) batch.rows.push_back({0, p, false});
  batch.logit_rows = {static_cast<int>(ids.size()) - 1};
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  model.forward(batch, cache, &hooks, logits.data());
  return out;
}

// The sequential variant (use_parallel_residual false) on pythia-tiny's weights:
// resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out, and its MLP reads a
// different stream than the parallel one's (so its MLP activations differ from layer 0 on).
TEST(NeoxGemmaConfig, PythiaSequentialResidualWiring) {
  using S = nt::HookSite;
  const std::string fixture = shared_path("fixtures/models/pythia-tiny");
  TempDir dir;
  json j = fixture_config("pythia-tiny");
  j["use_parallel_residual"] = false;
  write_text(dir.file("config.json"), j.dump());
  std::filesystem::create_symlink(fixture + "/model.safetensors", dir.file("model.safetensors"));
  auto sequential = nt::load_model(dir.path());
  auto parallel = nt::load_model(fixture);
  const std::vector<int> ids = {41, 6646, 13, 619, 1416, 310};
  auto seq = run_prefill(*sequential, ids, {S::ResidPre, S::AttnOut, S::ResidMid, S::MlpPre, S::MlpOut, S::ResidPost});
  auto par = run_prefill(*parallel, ids, {S::ResidPre, S::AttnOut, S::MlpPre, S::MlpOut, S::ResidPost});
  for (int l = 0; l < 2; ++l) {
    const auto& pre = seq[S::ResidPre].layers[l];
    const auto& attn = seq[S::AttnOut].layers[l];
    const auto& mid = seq[S::ResidMid].layers[l];
    const auto& mlp = seq[S::MlpOut].layers[l];
    const auto& post = seq[S::ResidPost].layers[l];
    for (size_t i = 0; i < pre.size(); ++i) {
      EXPECT_EQ(mid[i], pre[i] + attn[i]);
      EXPECT_EQ(post[i], mid[i] + mlp[i]);
    }
    const auto& ppre = par[S::ResidPre].layers[l];
    const auto& pattn = par[S::AttnOut].layers[l];
    const auto& pmlp = par[S::MlpOut].layers[l];
    const auto& ppost = par[S::ResidPost].layers[l];
    for (size_t i = 0; i < ppre.size(); ++i) EXPECT_EQ(ppost[i], ppre[i] + (pmlp[i] + pattn[i]));
  }
  EXPECT_EQ(seq[S::AttnOut].layers[0], par[S::AttnOut].layers[0]);  // the same attention on the same input
  EXPECT_NE(seq[S::MlpPre].layers[0], par[S::MlpPre].layers[0]);    // the MLP reads x + attn, not x
}

}  // namespace
