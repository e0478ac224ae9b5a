// Steering SAE latents (steer --sae) and opening SAEs by name (open_sae): the fixture's steering
// goldens token for token through the CLI (latent clamp with the error term kept, additive
// direction), the KV cache against recomputation, random-latent controls, latent means from
// baseline prompts against the SAE goldens, Hub ids from a Hugging Face cache with the release
// table's facts, centred and layer_norm input against computations done here, one-line refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "io/model_resolver.h"
#include "io/safetensors.h"
#include "runtime/generator.h"
#include "runtime/session.h"
#include "sae/sae_open.h"
#include "sae/sae_steering.h"
#include "test_support.h"
#include "util/error.h"

using namespace nt;
using nt::test::read_json;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");
const std::string kSaes = shared_path("fixtures/saes/gpt2-tiny");
const std::string kStandard = kSaes + "/standard-pre6/blocks.1.hook_resid_pre";
const std::string kJumpRelu = kSaes + "/jumprelu-v6/blocks.0.hook_resid_post";

json steering_goldens() { return read_json(kSaes + "/goldens/goldens.json")["steering"]; }

std::string prompt0() { return read_json(kTiny + "/goldens/goldens.json")["prompts"][0]["text"]; }

// steer --sae SAE on prompt 0, greedy, 20 tokens, as the goldens; returns the JSON.
json steer(const std::string& sae, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"steer", "-m", kTiny, "--sae", sae, "-p", prompt0(), "-n", "20", "--no-stop", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? json::parse(r.out) : json();
}

// The CLI's one-line refusal (non-zero exit, nothing on stdout).
std::string refusal(const std::vector<std::string>& args) {
  auto r = run_cli(args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  return r.err;
}

TEST(SaeSteerCli, ClampWithErrorTermMatchesGoldens) {
  const json g = steering_goldens()["clamp"];
  ASSERT_EQ(g["latent"], 476);
  const json j = steer(kStandard, {"--latents", "476", "--mode", "set:1.8", "--controls", "3"});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["prompts"][0]["prompt_ids"], g["input_ids"]);
  EXPECT_EQ(j["prompts"][0]["unsteered"]["ids"], g["unsteered_greedy_ids"]);
  EXPECT_EQ(j["prompts"][0]["steered"]["ids"], g["greedy_ids"]);
  EXPECT_EQ(j["intervention"]["latents"], json::array({476}));
  EXPECT_EQ(j["intervention"]["kind"], "latent_edit");
  EXPECT_EQ(j["summary"].size(), 3u);
}

TEST(SaeSteerCli, AdditiveDirectionMatchesGoldens) {
  const json g = steering_goldens()["add"];
  ASSERT_EQ(g["latent"], 300);
  const json j = steer(kStandard, {"--latents", "300", "--direction", "add:0.25", "--controls", "2"});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["prompts"][0]["steered"]["ids"], g["greedy_ids"]);
  EXPECT_EQ(j["intervention"]["kind"], "direction");
}

// A latent edit that leaves the latent as it is (scale:1, add:0) leaves the activations exactly as
// they were: same continuation, zero KL.
TEST(SaeSteerCli, UnchangedLatentLeavesTheModelAlone) {
  for (const char* mode : {"scale:1", "add:0"}) {
    const json j = steer(kStandard, {"--latents", "476,300", "--mode", mode, "--controls", "0"});
    ASSERT_FALSE(j.is_null());
    EXPECT_EQ(j["prompts"][0]["steered"]["ids"], j["prompts"][0]["unsteered"]["ids"]) << mode;
    EXPECT_EQ(j["prompts"][0]["steered"]["measures"]["kl"].get<double>(), 0.0) << mode;
  }
}

TEST(SaeSteerCli, ControlsAreOtherLatentsAndReproducible) {
  const std::vector<std::string> args = {"--latents", "476,300,12", "--mode", "zero", "--controls", "6", "--control-seed", "5"};
  const json a = steer(kStandard, args), b = steer(kStandard, args);
  ASSERT_FALSE(a.is_null());
  EXPECT_EQ(a["control_sets"], b["control_sets"]);
  EXPECT_EQ(a["summary"], b["summary"]);
  ASSERT_EQ(a["control_sets"].size(), 6u);
  for (const auto& set : a["control_sets"]) {
    ASSERT_EQ(set.size(), 3u);
    for (const auto& latent : set) {
      EXPECT_TRUE(latent != 476 && latent != 300 && latent != 12) << set.dump();
      EXPECT_TRUE(latent.get<int>() >= 0 && latent.get<int>() < 512) << set.dump();
    }
    EXPECT_EQ(std::set<int>(set.begin(), set.end()).size(), 3u) << set.dump();
  }
}

// --mode mean with --baseline: each latent's mean over the baseline prompts' tokens, checked
// against the SAE goldens' latents on the four golden prompts.
TEST(SaeSteerCli, MeanModeTakesLatentMeansFromBaselinePrompts) {
  TempDir tmp;
  const json model_goldens = read_json(kTiny + "/goldens/goldens.json");
  json prompts = json::array();
  for (const auto& p : model_goldens["prompts"]) prompts.push_back(p["text"]);
  write_text(tmp.file("baseline.json"), json{{"prompts", prompts}}.dump());
  const std::vector<int> latents = {476, 300, 12};
  std::vector<double> sums(latents.size(), 0.0);
  int tokens = 0;
  for (int k = 0; k < 4; ++k) {
    SafetensorsFile f(kSaes + "/goldens/standard.prompt_" + std::to_string(k) + ".safetensors");
    const TensorInfo& t = f.get("feature_acts");
    const std::vector<float> acts = f.read_f32(t);
    for (int64_t r = 0; r < t.shape[0]; ++r)
      for (size_t j = 0; j < latents.size(); ++j) sums[j] += acts[static_cast<size_t>(r * t.shape[1] + latents[j])];
    tokens += static_cast<int>(t.shape[0]);
  }
  const json j = steer(kStandard, {"--latents", "476,300,12", "--mode", "mean", "--baseline", tmp.file("baseline.json"),
                                   "--controls", "2"});
  ASSERT_FALSE(j.is_null());
  ASSERT_EQ(j["intervention"]["means"].size(), 3u);
  for (size_t i = 0; i < latents.size(); ++i)
    EXPECT_NEAR(j["intervention"]["means"][i].get<double>(), sums[i] / tokens, 1e-5) << latents[i];
}

TEST(SaeSteerCli, BadInputsRefusedWithOneLine) {
  const std::string p = prompt0();
  std::string e = refusal({"steer", "-m", kTiny, "--sae", kStandard, "--latents", "512", "-p", p});
  EXPECT_NE(e.find("latent 512 out of range"), std::string::npos) << e;
  EXPECT_NE(e.find("512 latents"), std::string::npos) << e;
  e = refusal({"steer", "-m", kTiny, "--sae", kStandard, "--latents", "7,3,7", "-p", p});
  EXPECT_NE(e.find("latent 7 given twice"), std::string::npos) << e;
  e = refusal({"steer", "-m", kTiny, "--sae", kStandard, "-p", p});
  EXPECT_NE(e.find("--latents"), std::string::npos) << e;
  for (const char* mode : {"scale:2", "zero"}) {
    e = refusal({"steer", "-m", kTiny, "--sae", kStandard, "--latents", "3", "--mode", mode, "--direction", "add:1", "-p", p});
    EXPECT_NE(e.find("not both"), std::string::npos) << e;
  }
  e = refusal({"steer", "-m", kTiny, "--sae", kStandard, "--latents", "3", "--direction", "set:1", "-p", p});
  EXPECT_NE(e.find("add:S"), std::string::npos) << e;
  e = refusal({"steer", "-m", kTiny, "--sae", kSaes + "/topk-v6/blocks.1.mlp.hook_post", "--sae-center", "--latents", "3",
               "-p", p});
  EXPECT_NE(e.find("centred input is for d_model-wide hooks"), std::string::npos) << e;
  e = refusal({"steer", "-m", kTiny, "--sae", "./no/such/sae", "--latents", "3", "-p", p});
  EXPECT_NE(e.find("no such SAE"), std::string::npos) << e;

  TempDir tmp;
  // expected_average_only_in without a scaling factor: refused naming the fact and the flag.
  json cfg = read_json(kStandard + "/cfg.json");
  cfg["normalize_activations"] = true;
  fs::create_directories(tmp.file("scaled"));
  write_text(tmp.file("scaled/cfg.json"), cfg.dump());
  fs::create_symlink(kStandard + "/sae_weights.safetensors", tmp.file("scaled/sae_weights.safetensors"));
  e = refusal({"steer", "-m", kTiny, "--sae", tmp.file("scaled"), "--latents", "3", "-p", p});
  EXPECT_NE(e.find("--sae-scale"), std::string::npos) << e;
  EXPECT_NE(e.find("norm scaling factor"), std::string::npos) << e;
  auto ok = run_cli({"steer", "-m", kTiny, "--sae", tmp.file("scaled"), "--sae-scale", "1", "--latents", "476", "--mode",
                     "set:1.8", "-p", p, "-n", "20", "--no-stop", "--controls", "0", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(json::parse(ok.out)["prompts"][0]["steered"]["ids"], steering_goldens()["clamp"]["greedy_ids"]);

  // d_in mismatch: the SAE's d_in (64) against the hook's width (d_mlp 256), both named.
  cfg = read_json(kJumpRelu + "/cfg.json");
  cfg["metadata"]["hook_name"] = "blocks.0.mlp.hook_post";
  fs::create_directories(tmp.file("wide"));
  write_text(tmp.file("wide/cfg.json"), cfg.dump());
  fs::create_symlink(kJumpRelu + "/sae_weights.safetensors", tmp.file("wide/sae_weights.safetensors"));
  e = refusal({"steer", "-m", kTiny, "--sae", tmp.file("wide"), "--latents", "3", "-p", p});
  EXPECT_NE(e.find("d_in = 64"), std::string::npos) << e;
  EXPECT_NE(e.find("256"), std::string::npos) << e;
  EXPECT_NE(e.find("blocks.0.mlp.hook_post"), std::string::npos) << e;
}

TEST(SaeSteerLibrary, KvCacheEqualsRecompute) {
  Session s = open_session(kTiny);
  const ModelConfig& c = s.model->config();
  auto sae = Sae::load(kStandard);
  auto prompts = s.encode_prompts({"Hello, my name is", "The quick brown fox jumps", "1 + 1 = 2"});
  for (int variant = 0; variant < 3; ++variant) {
    Hooks hooks(c);
    if (variant == 0) add_sae_latent_edit(hooks, c, sae, {{476, 12}, InterventionMode::Set, 1.8f, {}, InterventionWhere::All, {}});
    if (variant == 1) add_sae_latent_edit(hooks, c, sae, {{300}, InterventionMode::Scale, 4.0f, {}, InterventionWhere::Generated, {}});
    if (variant == 2) add_sae_direction_add(hooks, c, sae, {{300, 7}, 0.5f, InterventionWhere::Prompt, {}});
    GenerationConfig gen;
    gen.max_new_tokens = 10;
    gen.stop_at_eos = false;
    gen.sampling.temperature = 1.0f;  // among the 40 best: see test_steer's KV cache test
    gen.sampling.top_k = 40;
    gen.sampling.seed = 3;
    Generator g(*s.model, &hooks);
    auto cached = g.generate(prompts, gen);
    gen.recompute = true;
    auto full = g.generate(prompts, gen);
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(cached[i].generated_ids, full[i].generated_ids) << variant;
  }
}

// A fake Hugging Face cache holding the standard fixture SAE under a repository id.
class SaeHubCache : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("HF_HUB_CACHE", tmp_.path().c_str(), 1);
    for (const char* v : {"HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_TOKEN_PATH"}) ::unsetenv(v);
    ::setenv("HF_HUB_OFFLINE", "1", 1);
  }
  void TearDown() override {
    for (const char* v : {"HF_HUB_CACHE", "HF_HUB_OFFLINE"}) ::unsetenv(v);
  }
  void cache(const std::string& repo, const std::string& folder, const std::string& from) {
    const std::string dir = hf_repo_dir(repo) + "/snapshots/abc123/" + folder;
    fs::create_directories(dir);
    fs::create_directories(hf_repo_dir(repo) + "/refs");
    write_text(hf_repo_dir(repo) + "/refs/main", "abc123");
    for (const auto& e : fs::directory_iterator(from)) fs::create_symlink(e.path(), dir + "/" + e.path().filename().string());
  }
  TempDir tmp_;
};

TEST_F(SaeHubCache, HubIdResolvesInTheCache) {
  cache("someone/tiny-saes", "blocks.1.hook_resid_pre", kStandard);
  const json j = steer("someone/tiny-saes/blocks.1.hook_resid_pre", {"--latents", "476", "--mode", "set:1.8", "--controls", "0"});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["prompts"][0]["steered"]["ids"], steering_goldens()["clamp"]["greedy_ids"]);
  EXPECT_EQ(j["intervention"]["sae"]["center_input"], false);
}

TEST_F(SaeHubCache, NotInCacheWhileOfflineIsRefused) {
  const std::string e = refusal({"steer", "-m", kTiny, "--sae", "someone/absent-saes/blocks.1.hook_resid_pre", "--latents",
                                 "3", "-p", "Hello"});
  EXPECT_NE(e.find("not in the Hugging Face cache"), std::string::npos) << e;
  EXPECT_NE(e.find("HF_HUB_OFFLINE"), std::string::npos) << e;
  cache("someone/tiny-saes", "blocks.1.hook_resid_pre", kStandard);
  const std::string folder = refusal({"steer", "-m", kTiny, "--sae", "someone/tiny-saes/blocks.9.hook_resid_pre",
                                      "--latents", "3", "-p", "Hello"});
  EXPECT_NE(folder.find("not in the Hugging Face cache"), std::string::npos) << folder;
}

// gpt2-small-res-jb's repository: the release table centres the input (trained on TransformerLens'
// center_writing_weights GPT-2), which equals encoding x minus its mean without centring.
TEST_F(SaeHubCache, KnownReleaseCentresTheInput) {
  cache("jbloom/GPT2-Small-SAEs-Reformatted", "blocks.1.hook_resid_pre", kStandard);
  const ModelConfig c = load_model_config(kTiny);
  auto centred = open_sae("jbloom/GPT2-Small-SAEs-Reformatted/blocks.1.hook_resid_pre", {}, c);
  EXPECT_TRUE(centred->config().center_input);
  auto plain = open_sae(kStandard, {}, c);
  EXPECT_FALSE(plain->config().center_input);
  SaeOpenOptions forced;
  forced.center_input = true;
  EXPECT_TRUE(open_sae(kStandard, forced, c)->config().center_input);

  SafetensorsFile f(kSaes + "/goldens/standard.prompt_1.safetensors");
  const TensorInfo& t = f.get("sae_in");
  std::vector<float> x = f.read_f32(t), x_centred = x;
  const int rows = static_cast<int>(t.shape[0]), d = static_cast<int>(t.shape[1]);
  for (int r = 0; r < rows; ++r) {
    double mean = 0.0;
    for (int j = 0; j < d; ++j) mean += x[static_cast<size_t>(r * d + j)];
    mean /= d;
    for (int j = 0; j < d; ++j) x_centred[static_cast<size_t>(r * d + j)] -= static_cast<float>(mean);
  }
  SaeEncoding a, b;
  centred->encode(x.data(), rows, a);
  plain->encode(x_centred.data(), rows, b);
  for (size_t i = 0; i < a.acts.size(); ++i) ASSERT_NEAR(a.acts[i], b.acts[i], 1e-4) << i;
  // The reconstruction is mapped back: x - recons is the error in either space.
  std::vector<float> ra(x.size()), rb(x.size());
  centred->decode(a.acts.data(), rows, a.norm_coeff.data(), ra.data(), a.norm_shift.data());
  plain->decode(b.acts.data(), rows, nullptr, rb.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i] - ra[i], x_centred[i] - rb[i], 1e-4) << i;
}

// layer_norm input (OpenAI's TopK SAEs), SAELens' formula computed here: (x - mu) / (std + 1e-5)
// with torch.std's n - 1, reconstruction * std + mu.
TEST(SaeLayerNorm, EncodesTheNormalisedInputAndMapsBack) {
  TempDir tmp;
  json cfg = read_json(kJumpRelu + "/cfg.json");
  cfg["normalize_activations"] = "layer_norm";
  fs::create_directories(tmp.file("ln"));
  write_text(tmp.file("ln/cfg.json"), cfg.dump());
  fs::create_symlink(kJumpRelu + "/sae_weights.safetensors", tmp.file("ln/sae_weights.safetensors"));
  auto ln = Sae::load(tmp.file("ln"));
  auto plain = Sae::load(kJumpRelu);
  SafetensorsFile f(kSaes + "/goldens/jumprelu.prompt_1.safetensors");
  const TensorInfo& t = f.get("sae_in");
  std::vector<float> x = f.read_f32(t), normed = x;
  const int rows = static_cast<int>(t.shape[0]), d = static_cast<int>(t.shape[1]);
  std::vector<double> mu(rows), sd(rows);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < d; ++j) mu[r] += x[static_cast<size_t>(r * d + j)];
    mu[r] /= d;
    for (int j = 0; j < d; ++j) sd[r] += std::pow(x[static_cast<size_t>(r * d + j)] - mu[r], 2);
    sd[r] = std::sqrt(sd[r] / (d - 1));
    for (int j = 0; j < d; ++j)
      normed[static_cast<size_t>(r * d + j)] = static_cast<float>((x[static_cast<size_t>(r * d + j)] - mu[r]) / (sd[r] + 1e-5));
  }
  SaeEncoding a, b;
  ln->encode(x.data(), rows, a);
  plain->encode(normed.data(), rows, b);
  for (size_t i = 0; i < a.acts.size(); ++i) ASSERT_NEAR(a.acts[i], b.acts[i], 1e-4) << i;
  std::vector<float> ra(x.size()), rb(x.size());
  ln->decode(a.acts.data(), rows, a.norm_coeff.data(), ra.data(), a.norm_shift.data());
  plain->decode(b.acts.data(), rows, nullptr, rb.data());
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < d; ++j) {
      const size_t i = static_cast<size_t>(r * d + j);
      ASSERT_NEAR(ra[i], rb[i] * sd[r] + mu[r], 1e-3 * (1 + std::abs(ra[i]))) << i;
    }
}

}  // namespace
