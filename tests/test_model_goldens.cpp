// The forward pass and greedy generation against goldens from an independent implementation
// (../shared/fixtures/models/*/goldens): activations, logits and every greedy step's chosen logit
// within the fixtures' tolerance (1e-5; gemma2-tiny 1e-4, fixtures README 4.1), token ids exactly.
// gpt2-tiny, llama-tiny, pythia-tiny (GPT-NeoX) and gemma2-tiny; the last two also have the
// attention and MLP outputs (hook_attn_out, hook_mlp_out; Gemma-2's after its post-norms).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/random_model.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "runtime/generator.h"
#include "runtime/session.h"
#include "test_support.h"

using namespace nt;
using nt::test::read_json;
using nt::test::shared_path;

namespace {

// The fixtures README's recommended tolerance for each model.
float tolerance(const std::string& model) { return model == "gemma2-tiny" ? 1e-4f : 1e-5f; }

nlohmann::json load_goldens(const std::string& model) {
  return read_json(shared_path("fixtures/models/" + model + "/goldens/goldens.json"));
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Captures the activations of a hook site for every layer, rows in the order the step gave them.
struct Capture {
  std::vector<std::vector<float>> per_layer;
  void attach(Hooks& hooks, HookSite site, int n_layer) {
    per_layer.assign(static_cast<size_t>(n_layer), {});
    for (int l = 0; l < n_layer; ++l)
      hooks.add({site, l}, [this, l](const HookContext& ctx, float* acts) {
        per_layer[static_cast<size_t>(l)].assign(acts, acts + ctx.rows.size() * ctx.width);
      });
  }
};

// Runs the whole prompt as one step and returns logits for every position.
std::vector<float> prefill(Model& model, const std::vector<int>& ids, const Hooks* hooks) {
  const ModelConfig& c = model.config();
  KVCache cache(c);
  cache.open(0, static_cast<int>(ids.size()));
  StepBatch batch;
  batch.tokens = ids;
  for (int p = 0; p < static_cast<int>(ids.size()); ++p) {
    batch.rows.push_back({0, p, false});
    batch.logit_rows.push_back(p);
  }
  std::vector<float> logits(ids.size() * static_cast<size_t>(c.vocab_size));
  model.forward(batch, cache, hooks, logits.data());
  return logits;
}

class ModelGoldens : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = shared_path("fixtures/models/" + GetParam());
    session_ = open_session(dir_);
    goldens_ = load_goldens(GetParam());
    kTol = tolerance(GetParam());
  }
  float kTol = 1e-5f;
  std::string dir_;
  Session session_;
  nlohmann::json goldens_;
};

TEST_P(ModelGoldens, PromptIdsMatchExactly) {
  for (const auto& p : goldens_["prompts"]) {
    const std::string text = p["text"];
    if (text.empty()) continue;  // the empty Llama prompt is BOS only
    EXPECT_EQ(session_.encode_prompt(text, 0), p["input_ids"].get<std::vector<int>>()) << text;
  }
}

TEST_P(ModelGoldens, ActivationsAndLogitsWithin1e5) {
  Model& model = *session_.model;
  const ModelConfig& c = model.config();
  for (const auto& p : goldens_["prompts"]) {
    SafetensorsFile golden(dir_ + "/goldens/" + p["file"].get<std::string>());
    std::vector<int> ids;
    for (int64_t id : golden.read_i64(golden.get("input_ids"))) ids.push_back(static_cast<int>(id));
    const size_t T = ids.size();
    Hooks hooks(c);
    Capture resid_post, mlp_post, resid_pre, attn_out, mlp_out;
    resid_post.attach(hooks, HookSite::ResidPost, c.n_layer);
    mlp_post.attach(hooks, HookSite::MlpPost, c.n_layer);
    resid_pre.attach(hooks, HookSite::ResidPre, c.n_layer);
    const bool has_outs = golden.find("attn_out") != nullptr;  // pythia-tiny, gemma2-tiny
    if (has_outs) {
      attn_out.attach(hooks, HookSite::AttnOut, c.n_layer);
      mlp_out.attach(hooks, HookSite::MlpOut, c.n_layer);
    }
    auto logits = prefill(model, ids, &hooks);

    auto emb = golden.read_f32(golden.get("embeddings"));
    ASSERT_EQ(resid_pre.per_layer[0].size(), emb.size());
    EXPECT_LT(max_abs_diff(resid_pre.per_layer[0].data(), emb.data(), emb.size()), kTol) << p["file"];

    auto block_out = golden.read_f32(golden.get("block_out"));
    auto mlp_act = golden.read_f32(golden.get("mlp_act"));
    for (int l = 0; l < c.n_layer; ++l) {
      const size_t nd = T * c.d_model, nm = T * c.d_mlp;
      ASSERT_EQ(resid_post.per_layer[l].size(), nd);
      EXPECT_LT(max_abs_diff(resid_post.per_layer[l].data(), block_out.data() + l * nd, nd), kTol)
          << p["file"] << " layer " << l << " hook_resid_post";
      ASSERT_EQ(mlp_post.per_layer[l].size(), nm);
      EXPECT_LT(max_abs_diff(mlp_post.per_layer[l].data(), mlp_act.data() + l * nm, nm), kTol)
          << p["file"] << " layer " << l << " mlp.hook_post";
    }
    if (has_outs) {
      auto golden_attn = golden.read_f32(golden.get("attn_out"));
      auto golden_mlp = golden.read_f32(golden.get("mlp_out"));
      for (int l = 0; l < c.n_layer; ++l) {
        const size_t nd = T * c.d_model;
        ASSERT_EQ(attn_out.per_layer[l].size(), nd);
        EXPECT_LT(max_abs_diff(attn_out.per_layer[l].data(), golden_attn.data() + l * nd, nd), kTol)
            << p["file"] << " layer " << l << " hook_attn_out";
        ASSERT_EQ(mlp_out.per_layer[l].size(), nd);
        EXPECT_LT(max_abs_diff(mlp_out.per_layer[l].data(), golden_mlp.data() + l * nd, nd), kTol)
            << p["file"] << " layer " << l << " hook_mlp_out";
      }
    }
    auto golden_logits = golden.read_f32(golden.get("logits"));
    ASSERT_EQ(logits.size(), golden_logits.size());
    EXPECT_LT(max_abs_diff(logits.data(), golden_logits.data(), logits.size()), kTol) << p["file"];
  }
}

// Decodes one token at a time with the KV cache and checks the chosen token's logit at every step.
TEST_P(ModelGoldens, GreedyStepsWithKvCacheMatchTopLogits) {
  Model& model = *session_.model;
  const ModelConfig& c = model.config();
  for (const auto& p : goldens_["prompts"]) {
    std::vector<int> ids = p["input_ids"];
    auto expected_ids = p["greedy_ids"].get<std::vector<int>>();
    auto expected_top = p["greedy_top_logits"].get<std::vector<float>>();
    KVCache cache(c);
    cache.open(0, static_cast<int>(ids.size() + expected_ids.size()));
    StepBatch batch;
    batch.tokens = ids;
    for (int i = 0; i < static_cast<int>(ids.size()); ++i) batch.rows.push_back({0, i, false});
    batch.logit_rows = {static_cast<int>(ids.size()) - 1};
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    for (size_t step = 0; step < expected_ids.size(); ++step) {
      model.forward(batch, cache, nullptr, logits.data());
      const int tok = argmax(logits.data(), c.vocab_size);
      ASSERT_EQ(tok, expected_ids[step]) << p["text"] << " step " << step;
      EXPECT_NEAR(logits[static_cast<size_t>(tok)], expected_top[step], kTol) << p["text"] << " step " << step;
      const int pos = static_cast<int>(ids.size() + step);
      batch.tokens = {tok};
      batch.rows = {{0, pos, true}};
      batch.logit_rows = {0};
    }
  }
}

TEST_P(ModelGoldens, GeneratorGreedyContinuations) {
  std::vector<std::vector<int>> prompts;
  for (const auto& p : goldens_["prompts"]) prompts.push_back(p["input_ids"]);
  GenerationConfig gen;
  gen.max_new_tokens = goldens_["n_greedy"];
  gen.stop_at_eos = false;
  Generator generator(*session_.model, nullptr);
  auto results = generator.generate(prompts, gen);  // all four prompts in one batch
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(results[i].generated_ids, goldens_["prompts"][i]["greedy_ids"].get<std::vector<int>>()) << i;
}

// gpt2-tiny, llama-tiny: residual dims of the last block's output; pythia-tiny, gemma2-tiny: MLP
// hidden units of layer 0 (goldens.json "hook"), which later layers and the KV cache see.
TEST_P(ModelGoldens, Ablation) {
  const auto& a = goldens_["ablation"];
  Model& model = *session_.model;
  const ModelConfig& c = model.config();
  const int layer = a["layer"];
  const std::vector<int> dims = a["dims"];
  HookPoint point{HookSite::ResidPost, layer};
  if (a.contains("hook")) {
    const HookName name = parse_hook_name(a["hook"].get<std::string>());
    point = {name.site, name.layer};
  }
  ASSERT_EQ(point.layer, layer);
  Hooks hooks(c);
  hooks.add(point, [&](const HookContext& ctx, float* acts) {
    for (size_t r = 0; r < ctx.rows.size(); ++r)
      for (int d : dims) acts[r * ctx.width + d] = 0.0f;
  });
  Capture resid_post;
  resid_post.attach(hooks, HookSite::ResidPost, c.n_layer);
  SafetensorsFile golden(dir_ + "/goldens/" + a["file"].get<std::string>());
  std::vector<int> ids = a["input_ids"];
  auto logits = prefill(model, ids, &hooks);
  auto golden_logits = golden.read_f32(golden.get("logits"));
  ASSERT_EQ(logits.size(), golden_logits.size());
  EXPECT_LT(max_abs_diff(logits.data(), golden_logits.data(), logits.size()), kTol);
  auto block_out = golden.read_f32(golden.get("block_out"));
  const size_t nd = ids.size() * c.d_model;
  for (int l = 0; l < c.n_layer; ++l)
    EXPECT_LT(max_abs_diff(resid_post.per_layer[l].data(), block_out.data() + l * nd, nd), kTol) << "layer " << l;

  GenerationConfig gen;
  gen.max_new_tokens = goldens_["n_greedy"];
  gen.stop_at_eos = false;
  Generator generator(model, &hooks);
  auto results = generator.generate({ids}, gen);
  EXPECT_EQ(results[0].generated_ids, a["greedy_ids"].get<std::vector<int>>());
  EXPECT_NE(results[0].generated_ids, a["unablated_greedy_ids"].get<std::vector<int>>());
}

// Resident kB of this process's mappings of `path` (/proc/self/smaps), -1 where unavailable.
long resident_kib_of_mapping(const std::string& path) {
  std::ifstream in("/proc/self/smaps");
  if (!in) return -1;
  long total = 0;
  bool ours = false;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
        line.find(' ') != std::string::npos)
      ours = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    else if (ours && line.rfind("Rss:", 0) == 0)
      total += std::stol(line.substr(4));
  }
  return total;
}

// After loading, a step reads nothing through the weights' memory map: matrices have their own
// copies, norms and biases are copied, embedding rows are read with pread. (Read through the map,
// a few hundred token lookups made most of GPT-2 small's embedding resident: peak RSS 1.5x.)
TEST_P(ModelGoldens, StepsLeaveNoWeightPagesResident) {
  const long before = resident_kib_of_mapping("/model.safetensors");
  if (before < 0) GTEST_SKIP() << "no /proc/self/smaps";
  std::vector<int> ids;
  for (int i = 0; i < 40; ++i) ids.push_back((i * 7919) % session_.model->config().vocab_size);
  prefill(*session_.model, ids, nullptr);
  EXPECT_EQ(resident_kib_of_mapping("/model.safetensors"), 0);
}

// The same for a model stored as BF16 (converted at load: the conversion read the whole file
// through the map), written by the random-model writer in the Llama shape the bench uses (grouped
// key/value heads, untied LM head), small.
TEST(ModelMemory, Bf16LlamaLeavesNoWeightPagesResident) {
  nt::test::TempDir tmp;
  RandomModelSpec spec = tinyllama_shape();
  spec.layers = 2;
  spec.width = 256;
  spec.heads = 8;
  spec.kv_heads = 2;
  spec.mlp = 688;
  spec.ctx = 64;
  const std::string dir = tmp.path() + "/llama";
  write_random_model(dir, spec, default_random_model_tokenizer_dir("llama"));
  ASSERT_TRUE(random_model_is_current(dir, spec));
  auto model = load_model(dir, WeightFormat::F32);
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_FALSE(c.tie_embeddings);
  if (resident_kib_of_mapping("/llama/model.safetensors") < 0) GTEST_SKIP() << "no /proc/self/smaps";
  std::vector<int> ids;
  for (int i = 0; i < 40; ++i) ids.push_back((i * 7919) % c.vocab_size);
  const auto logits = prefill(*model, ids, nullptr);
  EXPECT_TRUE(std::isfinite(logits.back()));
  EXPECT_EQ(resident_kib_of_mapping("/llama/model.safetensors"), 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelGoldens,
                         ::testing::Values("gpt2-tiny", "llama-tiny", "pythia-tiny", "gemma2-tiny"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

}  // namespace
