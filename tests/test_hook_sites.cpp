// Hook sites: the one hook-name parser and its messages, every way in refusing a point the model
// does not fire (Hooks::add, the recorder's layout, interventions, trace / steer / study), and
// Llama's mlp.hook_pre_linear really recorded (checked against the golden MLP activations) and
// really steered.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "hooks/hooks.h"
#include "io/safetensors.h"
#include "runtime/session.h"
#include "steer/intervention.h"
#include "test_support.h"
#include "trace/neuron_capture.h"
#include "trace/neuron_layout.h"
#include "util/error.h"

using namespace nt;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::json;

namespace {

const std::string kGpt2 = shared_path("fixtures/models/gpt2-tiny");
const std::string kLlama = shared_path("fixtures/models/llama-tiny");
const std::string kGpt2NoPreLinear =
    "model type 'gpt2' has no hook point 'mlp.hook_pre_linear' (its points: hook_embed, hook_pos_embed, "
    "hook_resid_pre, hook_attn_out, hook_resid_mid, mlp.hook_pre, mlp.hook_post, hook_mlp_out, hook_resid_post, "
    "ln_final.hook_normalized)";

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_refused(const test::CliResult& r, const std::string& message) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
}

ModelConfig config_of(const std::string& dir) { return open_session(dir).model->config(); }

TEST(HookNames, OneParserForEveryForm) {
  auto every = parse_hook_name("blocks.*.mlp.hook_post");
  EXPECT_EQ(every.site, HookSite::MlpPost);
  EXPECT_EQ(every.layer, -1);
  auto bare = parse_hook_name("resid_post");
  EXPECT_EQ(bare.site, HookSite::ResidPost);
  EXPECT_EQ(bare.layer, -1);
  auto one = parse_hook_name("blocks.3.mlp.hook_pre_linear");
  EXPECT_EQ(one.site, HookSite::MlpPreLinear);
  EXPECT_EQ(one.layer, 3);
  EXPECT_EQ(parse_hook_name("ln_final.hook_normalized").site, HookSite::LnFinal);
  EXPECT_EQ(parse_layer_site("blocks.*.hook_resid_pre", "trace site"), HookSite::ResidPre);
  EXPECT_EQ(parse_layer_site("mlp.hook_post", "steer site"), HookSite::MlpPost);
}

TEST(HookNames, Messages) {
  EXPECT_EQ(error_of([] { parse_hook_name("hook_nothing"); }).rfind("unknown hook site 'hook_nothing' (valid: hook_embed,", 0), 0u);
  EXPECT_NE(error_of([] { parse_hook_name("blocks.*.hook_nothing"); }).find("unknown hook site 'blocks.*.hook_nothing'"),
            std::string::npos);
  EXPECT_EQ(error_of([] { parse_hook_name("blocks.x.hook_resid_post"); }),
            "malformed layer 'x' in hook name 'blocks.x.hook_resid_post' (a number, or * for every layer)");
  EXPECT_EQ(error_of([] { parse_hook_name("blocks.3"); }), "malformed hook name 'blocks.3' (write blocks.*.NAME or blocks.L.NAME)");
  EXPECT_EQ(error_of([] { parse_hook_name("blocks.*.hook_embed"); }),
            "hook 'hook_embed' is not a per-layer point: write it without 'blocks.' ('blocks.*.hook_embed')");
  EXPECT_EQ(error_of([] { parse_layer_site("blocks.1.hook_resid_post", "trace site"); }),
            "trace site 'blocks.1.hook_resid_post' names one layer; a trace site covers every layer (write "
            "blocks.*.hook_resid_post or hook_resid_post)");
  EXPECT_EQ(error_of([] { parse_layer_site("ln_final.hook_normalized", "steer site"); }),
            "steer site 'ln_final.hook_normalized' is not a per-layer hook point (its neurons have no layer)");
}

TEST(HookSites, EveryArchitectureDeclaresWhatItFires) {
  const ModelConfig gpt2 = config_of(kGpt2), llama = config_of(kLlama);
  EXPECT_FALSE(model_fires(gpt2, HookSite::MlpPreLinear));
  EXPECT_TRUE(model_fires(gpt2, HookSite::PosEmbed));
  EXPECT_TRUE(model_fires(llama, HookSite::MlpPreLinear));
  EXPECT_FALSE(model_fires(llama, HookSite::PosEmbed));
}

TEST(HookSites, LibraryEntryPointsRefuseUnfiredPoints) {
  const ModelConfig gpt2 = config_of(kGpt2);
  Hooks hooks(gpt2);
  EXPECT_EQ(error_of([&] { hooks.add({HookSite::MlpPreLinear, 0}, [](const HookContext&, float*) {}); }),
            kGpt2NoPreLinear);
  EXPECT_FALSE(hooks.any({HookSite::MlpPreLinear, 0}));
  EXPECT_EQ(error_of([&] { hooks.add({HookSite::Embed, 0}, [](const HookContext&, float*) {}); }),
            "hook point hook_embed takes no layer");
  // The recorder's layout: a site the model does not fire, a global point counted per layer, twice.
  EXPECT_EQ(error_of([&] { NeuronLayout({HookSite::MlpPreLinear}, gpt2); }), kGpt2NoPreLinear);
  EXPECT_EQ(error_of([&] { NeuronLayout({HookSite::Embed}, gpt2); }),
            "'hook_embed' is not a per-layer hook point: traced sites cover every layer");
  EXPECT_EQ(error_of([&] { NeuronLayout({HookSite::ResidPost, HookSite::LnFinal}, gpt2); }),
            "'ln_final.hook_normalized' is not a per-layer hook point: traced sites cover every layer");
  EXPECT_EQ(error_of([&] { NeuronLayout({HookSite::MlpPost, HookSite::MlpPost}, gpt2); }),
            "site 'mlp.hook_post' is listed twice");
  // Interventions and neuron capture.
  Intervention iv;
  iv.site = HookSite::MlpPreLinear;
  iv.neurons = {{1, 5}};
  EXPECT_EQ(error_of([&] { validate(iv, gpt2); }), kGpt2NoPreLinear);
  Session session = open_session(kGpt2);
  EXPECT_EQ(error_of([&] { capture_neurons(*session.model, {{1, 2, 3}}, {{HookSite::MlpPreLinear, 0, 1}}); }),
            kGpt2NoPreLinear);
}

TEST(HookSites, CommandsRefuseUnfiredSiteBeforeGenerating) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello there", "The war"]})");
  expect_refused(run_cli({"trace", "-m", kGpt2, "--prompts", tmp.file("p.json"), "--normalize", "none", "--site",
                          "mlp.hook_pre_linear", "--out", tmp.file("t")}),
                 kGpt2NoPreLinear);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("t")));
  expect_refused(run_cli({"trace", "-m", kGpt2, "--prompts", tmp.file("p.json"), "--normalize", "none", "--site",
                          "blocks.*.mlp.hook_pre_linear"}),
                 kGpt2NoPreLinear);
  expect_refused(run_cli({"steer", "-m", kGpt2, "-p", "Hi", "--ablate", "1:5", "--site", "mlp.hook_pre_linear"}),
                 kGpt2NoPreLinear);
  write_text(tmp.file("s.json"), R"({"baseline": ["a b"], "concepts": {"c": ["war"]},
                                     "trace": {"sites": ["blocks.*.mlp.hook_pre_linear"]}})");
  expect_refused(run_cli({"study", tmp.file("s.json"), "--model", kGpt2, "--out", tmp.file("o")}),
                 "s.json: " + kGpt2NoPreLinear);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("o/report.html")));
}

TEST(HookSites, CommandsShareTheParsersMessages) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello"]})");
  expect_refused(run_cli({"trace", "-m", kGpt2, "--prompts", tmp.file("p.json"), "--normalize", "none", "--site",
                          "blocks.1.hook_resid_post"}),
                 "trace site 'blocks.1.hook_resid_post' names one layer");
  expect_refused(run_cli({"steer", "-m", kGpt2, "-p", "Hi", "--ablate", "1:5", "--site", "blocks.1.mlp.hook_post"}),
                 "steer site 'blocks.1.mlp.hook_post' names one layer");
  expect_refused(run_cli({"steer", "-m", kGpt2, "-p", "Hi", "--ablate", "1:5", "--site", "blocks.*.hook_nothing"}),
                 "unknown hook site 'blocks.*.hook_nothing'");
  write_text(tmp.file("s.json"), R"({"baseline": ["a"], "concepts": {"c": ["war"]},
                                     "trace": {"sites": ["blocks.0.hook_resid_post"]}})");
  expect_refused(run_cli({"study", tmp.file("s.json"), "--model", kGpt2, "--out", tmp.file("o")}),
                 "s.json: trace site 'blocks.0.hook_resid_post' names one layer");
  write_text(tmp.file("u.json"), R"({"baseline": ["a"], "concepts": {"c": ["war"]},
                                     "steer": {"concept": "c", "prompt": "x", "site": "mlp.hook_post"}})");
  expect_refused(run_cli({"study", tmp.file("u.json"), "--model", kGpt2, "--out", tmp.file("o")}),
                 "u.json: steer.site 'mlp.hook_post' is not traced by this study (trace.sites)");
}

// silu(gate) * up is the golden MLP activation (mlp_act, from an independent implementation): the
// values captured at mlp.hook_pre (gate) and mlp.hook_pre_linear (up) must reproduce it.
TEST(HookSites, LlamaPreLinearIsTheUpProjection) {
  Session session = open_session(kLlama);
  const ModelConfig& c = session.model->config();
  SafetensorsFile f(kLlama + "/goldens/prompt_0.safetensors");
  const auto ids64 = f.read_i64(f.get("input_ids"));
  const std::vector<int> ids(ids64.begin(), ids64.end());
  const auto mlp_act = f.read_f32(f.get("mlp_act"));  // [L, T, d_mlp]
  std::vector<CaptureNeuron> neurons;
  for (HookSite site : {HookSite::MlpPre, HookSite::MlpPreLinear})
    for (int l = 0; l < c.n_layer; ++l)
      for (int i = 0; i < c.d_mlp; ++i) neurons.push_back({site, l, i});
  const auto acts = capture_neurons(*session.model, {ids}, neurons);
  const size_t T = ids.size(), M = static_cast<size_t>(c.d_mlp), per_site = static_cast<size_t>(c.n_layer) * M;
  double max_err = 0, max_up = 0;
  for (size_t l = 0; l < static_cast<size_t>(c.n_layer); ++l)
    for (size_t t = 0; t < T; ++t)
      for (size_t i = 0; i < M; ++i) {
        const float gate = acts[0][t][l * M + i], up = acts[0][t][per_site + l * M + i];
        const double want = mlp_act[(l * T + t) * M + i];
        max_err = std::max(max_err, std::abs(gate / (1.0 + std::exp(-gate)) * up - want));
        max_up = std::max(max_up, static_cast<double>(std::abs(up)));
      }
  EXPECT_LT(max_err, 1e-5);
  EXPECT_GT(max_up, 0.1);
}

TEST(HookSites, LlamaPreLinearIsTracedAndSteered) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello there", "The war began", "Once upon a time"]})");
  auto r = run_cli({"trace", "-m", kLlama, "--prompts", tmp.file("p.json"), "--normalize", "none", "--site",
                    "blocks.*.mlp.hook_pre_linear", "--rank-by", "mean-abs", "-n", "4", "--out", tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(tmp.file("trace.json"));
  const json trace = json::parse(in);
  const json& site = trace["results"][0]["sites"][0];
  EXPECT_EQ(site["site"], "mlp.hook_pre_linear");
  ASSERT_FALSE(site["table"].empty());
  for (const auto& row : site["table"]) EXPECT_GT(row["concept_mean"].get<double>(), 0.0) << row.dump();

  r = run_cli({"steer", "-m", kLlama, "-p", "The war began", "--ablate", "1:5,1:17,0:3", "--site", "mlp.hook_pre_linear",
               "--mode", "set:40", "-n", "4", "--controls", "0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["intervention"]["site"], "mlp.hook_pre_linear");
  EXPECT_GT(j["summary"][0]["effect"].get<double>(), 1e-3) << j["summary"].dump();  // kl
}

}  // namespace
