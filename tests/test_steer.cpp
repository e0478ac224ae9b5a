// Steering: interventions reproduce the golden ablation, neutral interventions change nothing, the
// KV cache and full recomputation agree under steering, the random control is reproducible and
// disjoint from the steered neurons, and bad specs fail with clear messages.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/session.h"
#include "steer/intervention.h"
#include "steer/steering.h"
#include "test_support.h"
#include "util/error.h"

using namespace nt;
using nt::test::read_json;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::json;

namespace {

const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");

json goldens() { return read_json(kTiny + "/goldens/goldens.json"); }

TEST(Steer, ZeroOnLastBlockReproducesGoldenAblation) {
  auto g = goldens();
  auto r = run_cli({"steer", "-m", kTiny, "-p", g["prompts"][0]["text"], "--ablate", "L1N3,L1N17,L1N42", "-n", "20",
                    "--no-stop", "--controls", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["prompts"][0]["steered"]["ids"], g["ablation"]["greedy_ids"]);
  EXPECT_EQ(j["prompts"][0]["unsteered"]["ids"], g["ablation"]["unablated_greedy_ids"]);
  EXPECT_GE(j["prompts"][0]["first_divergence"].get<int>(), 0);
  EXPECT_GT(j["prompts"][0]["steered"]["measures"]["kl"].get<double>(), 0.0);
  EXPECT_EQ(j["summary"].size(), 3u);
}

// pythia-tiny and gemma2-tiny: their golden ablation zeroes MLP units 3, 17, 42 of layer 0
// (blocks.0.mlp.hook_post) at every position; the steered continuation must be the golden one.
class SteerOnFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(SteerOnFamily, ZeroOnMlpUnitsReproducesGoldenAblation) {
  const std::string dir = shared_path("fixtures/models/" + GetParam());
  std::ifstream in(dir + "/goldens/goldens.json");
  const json g = json::parse(in);
  ASSERT_EQ(g["ablation"]["hook"], "blocks.0.mlp.hook_post");
  auto r = run_cli({"steer", "-m", dir, "-p", g["prompts"][0]["text"], "--site", "mlp.hook_post", "--ablate",
                    "L0N3,L0N17,L0N42", "-n", "20", "--no-stop", "--controls", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(r.out);
  EXPECT_EQ(j["prompts"][0]["steered"]["ids"], g["ablation"]["greedy_ids"]);
  EXPECT_EQ(j["prompts"][0]["unsteered"]["ids"], g["ablation"]["unablated_greedy_ids"]);
  EXPECT_GT(j["prompts"][0]["steered"]["measures"]["kl"].get<double>(), 0.0);
  EXPECT_EQ(j["summary"].size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SteerOnFamily, ::testing::Values("pythia-tiny", "gemma2-tiny"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

TEST(Steer, ColonSpecAndTextOutput) {
  auto r = run_cli({"steer", "-m", kTiny, "-p", "Hello, my name is", "--ablate", "1:3,1:17,1:42", "-n", "5",
                    "--controls", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Intervention: zero hook_resid_post L1N3,L1N17,L1N42"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--- unsteered ---"), std::string::npos);
  EXPECT_NE(r.out.find("Percentile"), std::string::npos);
}

TEST(Steer, NeutralInterventionsChangeNothing) {
  for (const char* mode : {"scale:1", "add:0"}) {
    auto r = run_cli({"steer", "-m", kTiny, "-p", "Hello, my name is", "-p", "The quick brown fox", "--ablate",
                      "L0N5,L1N9", "--site", "mlp.hook_post", "--mode", mode, "-n", "12", "--temperature", "0.9",
                      "--seed", "4", "--controls", "2", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = json::parse(r.out);
    for (const auto& p : j["prompts"]) {
      EXPECT_EQ(p["steered"]["ids"], p["unsteered"]["ids"]) << mode;
      EXPECT_EQ(p["first_divergence"], -1) << mode;
      EXPECT_EQ(p["steered"]["measures"]["kl"].get<double>(), 0.0) << mode;
    }
  }
}

class SteerLibrary : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { session_ = new Session(open_session(kTiny)); }
  static void TearDownTestSuite() { delete session_; }
  static Session* session_;
};
Session* SteerLibrary::session_ = nullptr;

TEST_F(SteerLibrary, KvCacheEqualsRecomputeUnderEveryMode) {
  auto prompts = session_->encode_prompts({"Hello, my name is", "The quick brown fox jumps", "1 + 1 = 2"});
  const ModelConfig& c = session_->model->config();
  for (const char* mode : {"zero", "scale:3", "set:2.5", "add:-4"}) {
    for (auto where : {InterventionWhere::All, InterventionWhere::Prompt, InterventionWhere::Generated}) {
      Intervention iv;
      iv.site = HookSite::MlpPost;
      iv.neurons = parse_neurons("L0N1,L0N2,L0N3,L0N200,L1N7");
      parse_mode(mode, iv);
      iv.where = where;
      Hooks hooks(c);
      add_intervention(hooks, iv);
      GenerationConfig gen;
      gen.max_new_tokens = 10;
      gen.stop_at_eos = false;
      // Sampling among the 40 best tokens: with all 50257 nearly equally likely (random weights), the
      // 1e-7 float differences between a 1-row and a many-row matrix product could move a draw.
      gen.sampling.temperature = 1.0f;
      gen.sampling.top_k = 40;
      gen.sampling.seed = 11;
      Generator g(*session_->model, &hooks);
      auto cached = g.generate(prompts, gen);
      gen.recompute = true;
      auto full = g.generate(prompts, gen);
      for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(cached[i].generated_ids, full[i].generated_ids) << mode << " " << static_cast<int>(where);
    }
  }
}

TEST(SteerControls, ReproducibleAndDisjoint) {
  auto steered = parse_neurons("L1N3,L1N17,L1N42,L0N5");
  auto a = random_control_sets(steered, 64, 20, 7);
  auto b = random_control_sets(steered, 64, 20, 7);
  auto c = random_control_sets(steered, 64, 20, 8);
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::set<Neuron> excluded(steered.begin(), steered.end());
  for (const auto& set : a) {
    ASSERT_EQ(set.size(), 4u);
    int layer1 = 0;
    for (const auto& n : set) {
      EXPECT_FALSE(excluded.count(n)) << "L" << n.layer << "N" << n.index;
      EXPECT_LT(n.index, 64);
      layer1 += n.layer == 1;
    }
    EXPECT_EQ(layer1, 3);  // same number per layer as the steered set
    EXPECT_EQ(std::set<Neuron>(set.begin(), set.end()).size(), set.size());
  }
}

TEST(SteerControls, ConceptHits) {
  int words = 0;
  EXPECT_EQ(count_concept_hits("The War began; wars and a warm army.", {"war", "army"}, &words), 3);
  EXPECT_EQ(words, 8);
}

void expect_error(const test::CliResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(SteerErrors, BadSpecs) {
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L1N64"}), "neuron 64 of L1N64 is out of range");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L1N300", "--site", "mlp.hook_post"}),
               "mlp.hook_post has 256 neurons");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L2N1"}), "layer 2 of L2N1 is out of range");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L1N1", "--mode", "explode"}),
               "unknown intervention mode 'explode'");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L1N1", "--mode", "scale"}), "needs a value");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L1X3"}), "malformed neuron 'L1X3'");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "1:2,,3"}), "malformed neuron ''");
  expect_error(run_cli({"steer", "-m", kTiny, "-p", "Hi", "--ablate", "L1N1", "--mode", "mean"}),
               "--mode: mean needs the baseline mean of every neuron of hook_resid_post");
}

TEST(SteerErrors, TraceFromAnotherModel) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["War and battle", "The army"]})");
  write_text(tmp.file("b.json"), R"({"prompts": ["The weather today", "A recipe for bread"]})");
  auto t = run_cli({"trace", "-m", shared_path("models/gpt2-wiki"), "--prompts", tmp.file("p.json"), "--baseline",
                    tmp.file("b.json"), "--site", "mlp.hook_post", "-n", "4", "--out", tmp.path()});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto r = run_cli({"steer", "-m", kTiny, "-p", "Hi", "--from-trace", tmp.file("trace.json"), "--top", "3"});
  expect_error(r, "made with model gpt2 4x192");
  EXPECT_NE(r.err.find("not with gpt2 2x64"), std::string::npos) << r.err;
  // The same trace steers the model it was made with, in mode mean too (it has a baseline): each
  // steered neuron is set to the trace's baseline mean of that neuron, at the trace's site.
  r = run_cli({"steer", "-m", shared_path("models/gpt2-wiki"), "-p", "The war", "--from-trace", tmp.file("trace.json"),
               "--top", "3", "--mode", "mean", "-n", "4", "--controls", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json steer = json::parse(r.out);
  std::ifstream in(tmp.file("trace.json"));
  const json trace = json::parse(in);
  const json& iv = steer["intervention"];
  EXPECT_EQ(iv["site"], "mlp.hook_post");
  EXPECT_EQ(iv["description"].get<std::string>().rfind("mean mlp.hook_post", 0), 0u) << iv.dump();
  const json& table = trace["results"][0]["sites"][0]["table"];
  const json* base = nullptr;
  for (const auto& st : trace["neuron_stats"])
    if (st["group"] == "baseline" && st["site"] == "mlp.hook_post" && st["positions"] == "generated") base = &st;
  ASSERT_NE(base, nullptr);
  ASSERT_EQ(iv["neurons"].size(), 3u);
  ASSERT_EQ(iv["means"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const int layer = table[i]["layer"].get<int>(), index = table[i]["neuron"].get<int>();
    EXPECT_EQ(iv["neurons"][i]["layer"].get<int>(), layer);
    EXPECT_EQ(iv["neurons"][i]["neuron"].get<int>(), index);
    EXPECT_FLOAT_EQ(iv["means"][i].get<float>(), (*base)["mean"][static_cast<size_t>(layer)][static_cast<size_t>(index)].get<float>());
  }
  // Setting a neuron to its baseline mean is a different intervention from switching it off.
  auto zero = run_cli({"steer", "-m", shared_path("models/gpt2-wiki"), "-p", "The war", "--from-trace",
                       tmp.file("trace.json"), "--top", "3", "-n", "4", "--controls", "0", "--json"});
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_NE(json::parse(zero.out)["summary"][0]["effect"], steer["summary"][0]["effect"]);
}

}  // namespace
