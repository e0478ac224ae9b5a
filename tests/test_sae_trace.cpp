// SAE latents as trace sites (src/trace/trace_site.h): every fixture SAE traced on the fixtures'
// prompts gives the independent goldens' latents, reconstructions and errors (fixtures README
// section 6), and the recorder's statistics (mean, density, max, min over tokens) equal the same
// figures computed here from the goldens; the CLI's trace (--sae, --dump-activations, tables),
// generate --json --sae, a study with "saes", and the one-line refusals of an SAE that does not fit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "analysis/sae_fit.h"
#include "io/safetensors.h"
#include "runtime/session.h"
#include "sae/sae.h"
#include "test_support.h"
#include "trace/trace_run.h"
#include "util/error.h"

using namespace nt;
using nt::test::read_text;
using nt::test::read_json;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kSaes = shared_path("fixtures/saes/gpt2-tiny");
const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");
constexpr float kTol = 1e-5f;
constexpr int kPrompts = 4;
constexpr int kCopies = 3;  // the golden prompts traced this many times over

std::vector<std::string> golden_prompt_texts() {
  std::vector<std::string> out;
  const json goldens = read_json(kTiny + "/goldens/goldens.json");
  for (const auto& p : goldens["prompts"]) out.push_back(p["text"].get<std::string>());
  return out;
}

// One golden tensor of an SAE and prompt: [tokens, width] row-major.
struct GoldenRows {
  int rows = 0, width = 0;
  std::vector<float> values;
};
GoldenRows golden(const std::string& id, int prompt, const std::string& tensor) {
  SafetensorsFile f(kSaes + "/goldens/" + id + ".prompt_" + std::to_string(prompt) + ".safetensors");
  const TensorInfo& t = f.get(tensor);
  return {static_cast<int>(t.shape[0]), static_cast<int>(t.shape[1]), f.read_f32(t)};
}

// The figures the recorder keeps, computed from the goldens: over all tokens of all prompts.
struct Figures {
  std::vector<double> sum, max, min;
  std::vector<int> active;
  int tokens = 0;
};
Figures golden_figures(const std::string& id) {
  Figures f;
  for (int k = 0; k < kPrompts; ++k) {
    const GoldenRows g = golden(id, k, "feature_acts");
    if (f.sum.empty()) {
      f.sum.assign(static_cast<size_t>(g.width), 0.0);
      f.max.assign(static_cast<size_t>(g.width), -1e30);
      f.min.assign(static_cast<size_t>(g.width), 1e30);
      f.active.assign(static_cast<size_t>(g.width), 0);
    }
    for (int r = 0; r < g.rows; ++r)
      for (int i = 0; i < g.width; ++i) {
        const double v = g.values[static_cast<size_t>(r) * g.width + i];
        f.sum[static_cast<size_t>(i)] += v;
        f.max[static_cast<size_t>(i)] = std::max(f.max[static_cast<size_t>(i)], v);
        f.min[static_cast<size_t>(i)] = std::min(f.min[static_cast<size_t>(i)], v);
        f.active[static_cast<size_t>(i)] += v > 0;
      }
    f.tokens += g.rows;
  }
  return f;
}

class SaeTrace : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { session_ = new Session(open_session(kTiny)); }
  static void TearDownTestSuite() {
    delete session_;
    session_ = nullptr;
  }
  static Session* session_;
};
Session* SaeTrace::session_ = nullptr;

// Traces the golden prompts' tokens (no generation) at the SAE's latents, reconstruction and error.
TEST_F(SaeTrace, EveryFixtureSaeMatchesTheGoldens) {
  const json goldens = read_json(kSaes + "/goldens/goldens.json");
  for (const auto& [id, spec] : goldens["saes"].items()) {
    SCOPED_TRACE(id);
    const std::string hook = spec["hook_name"].get<std::string>();
    auto sae = Sae::load(kSaes + "/" + spec["path"].get<std::string>());
    RecorderOptions opt;
    opt.sites = resolve_trace_sites({hook + ".hook_sae_recons", hook + ".hook_sae_error"}, {sae},
                                    session_->model->config());
    ASSERT_EQ(opt.sites.size(), 3u);
    EXPECT_EQ(opt.sites[2].name(), hook + ".hook_sae_acts_post");
    opt.settings = {Positions::Prompt};
    opt.keep_rows = true;
    GenerationConfig gen;
    gen.max_new_tokens = 0;
    // The prompts three times: 96 rows in the prefill step, more than the recorder encodes at once.
    std::vector<std::string> texts;
    for (int copy = 0; copy < kCopies; ++copy)
      for (const auto& t : golden_prompt_texts()) texts.push_back(t);
    TraceRun run = run_trace(*session_, {{"prompts", texts}}, opt, gen);
    const Recorder& rec = *run.recorder;
    const NeuronLayout& layout = rec.layout();
    const size_t d_sae = static_cast<size_t>(sae->d_sae()), d_in = static_cast<size_t>(sae->d_in());
    ASSERT_EQ(static_cast<size_t>(layout.widths[2]), d_sae);
    ASSERT_EQ(layout.total, 2 * d_in + d_sae);

    // Every recorded row against the goldens of its prompt and position.
    const RecordedRows& rows = rec.rows();
    size_t checked = 0;
    float worst = 0.0f;
    for (int k = 0; k < kPrompts; ++k) {
      const GoldenRows f = golden(id, k, "feature_acts"), x = golden(id, k, "sae_in"), rc = golden(id, k, "sae_recons");
      for (size_t r = 0; r < rows.seq.size(); ++r) {
        if (rows.seq[r] % kPrompts != k) continue;
        const size_t p = static_cast<size_t>(rows.pos[r]);
        const float* got = rows.acts.data() + r * layout.total;
        for (size_t i = 0; i < d_sae; ++i) {
          const float want = f.values[p * d_sae + i], have = got[layout.offsets[2] + i];
          EXPECT_EQ(have > 0, want > 0) << "prompt " << k << " token " << p << " latent " << i;
          worst = std::max(worst, std::fabs(have - want));
        }
        for (size_t i = 0; i < d_in; ++i) {
          worst = std::max(worst, std::fabs(got[layout.offsets[0] + i] - rc.values[p * d_in + i]));
          worst = std::max(worst, std::fabs(got[layout.offsets[1] + i] - (x.values[p * d_in + i] - rc.values[p * d_in + i])));
        }
        ++checked;
      }
    }
    EXPECT_EQ(checked, rows.seq.size());
    EXPECT_LE(worst, kTol);

    // The group's statistics over all tokens: mean, density, max and min of each latent.
    const Figures want = golden_figures(id);
    const TokenStats& g = rec.group(0, 0);
    ASSERT_EQ(g.count, kCopies * want.tokens);
    for (size_t i = 0; i < d_sae; ++i) {
      const size_t fl = layout.offsets[2] + i;
      EXPECT_NEAR(g.mean(fl), want.sum[i] / want.tokens, kTol) << "latent " << i;
      EXPECT_DOUBLE_EQ(g.density(fl), static_cast<double>(want.active[i]) / want.tokens) << "latent " << i;
      EXPECT_NEAR(g.max[fl], want.max[i], kTol) << "latent " << i;
      EXPECT_NEAR(g.min[fl], want.min[i], kTol) << "latent " << i;
    }
    // Each prompt's sample: its mean over tokens against the golden's top-5 mean latents.
    for (int k = 0; k < kPrompts; ++k) {
      const SampleSummary s = rec.sample(0, k);
      const json& top5 = spec["prompts"][k]["mean_acts_top5"];
      for (size_t j = 0; j < top5["latents"].size(); ++j)
        EXPECT_NEAR(s.mean[layout.offsets[2] + top5["latents"][j].get<size_t>()], top5["values"][j].get<float>(), kTol);
    }
  }
}

// The fit report on the golden prompts: FVU and mean L0 from the goldens' activations and
// reconstructions, the clean cross-entropy from the model goldens' logits.
TEST_F(SaeTrace, FitOnTheGoldenPrompts) {
  const json goldens = read_json(kSaes + "/goldens/goldens.json");
  const json& spec = goldens["saes"]["standard"];
  auto sae = Sae::load(kSaes + "/" + spec["path"].get<std::string>());
  std::vector<std::vector<int>> sequences;
  double sum_err2 = 0, sum_x2 = 0, l0 = 0, ce = 0;
  std::vector<double> sum_x(64, 0.0);
  int tokens = 0, predictions = 0;
  for (int k = 0; k < kPrompts; ++k) {
    sequences.push_back(spec["prompts"][k]["input_ids"].get<std::vector<int>>());
    const GoldenRows x = golden("standard", k, "sae_in"), rc = golden("standard", k, "sae_recons");
    for (size_t i = 0; i < x.values.size(); ++i) {
      const double v = x.values[i], e = v - rc.values[i];
      sum_x[i % 64] += v;
      sum_x2 += v * v;
      sum_err2 += e * e;
    }
    for (const auto& n : spec["prompts"][k]["l0"]) l0 += n.get<int>();
    tokens += x.rows;
    SafetensorsFile m(kTiny + "/goldens/prompt_" + std::to_string(k) + ".safetensors");
    const TensorInfo& lt = m.get("logits");
    const std::vector<float> logits = m.read_f32(lt);
    const size_t V = static_cast<size_t>(lt.shape[1]);
    for (size_t p = 0; p + 1 < sequences.back().size(); ++p) {
      double mx = -1e30, sum = 0;
      for (size_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(logits[p * V + v]));
      for (size_t v = 0; v < V; ++v) sum += std::exp(logits[p * V + v] - mx);
      ce += mx + std::log(sum) - logits[p * V + static_cast<size_t>(sequences.back()[p + 1])];
      ++predictions;
    }
  }
  double mean2 = 0;
  for (double v : sum_x) mean2 += (v / tokens) * (v / tokens);
  const SaeFit fit = measure_sae_fit(*session_->model, *sae, sae->hook_point(session_->model->config()), sequences);
  EXPECT_EQ(fit.tokens, tokens);
  EXPECT_EQ(fit.predictions, predictions);
  EXPECT_NEAR(fit.fvu, sum_err2 / (sum_x2 - tokens * mean2), 1e-5);
  EXPECT_NEAR(fit.mean_l0, l0 / tokens, 1e-12);
  EXPECT_NEAR(fit.ce_clean, ce / predictions, 1e-4);
  EXPECT_GT(fit.kl, 0.0);
  EXPECT_TRUE(std::isfinite(fit.ce_spliced));
}

std::string prompts_file(const TempDir& dir, const std::string& name, const std::vector<std::string>& prompts) {
  write_text(dir.file(name), json{{"prompts", prompts}}.dump());
  return dir.file(name);
}

// The CLI: tables name features, the dump holds the golden latents, trace.json the density.
TEST(SaeTraceCli, TraceDumpsTheGoldenLatents) {
  TempDir dir;
  const auto texts = golden_prompt_texts();
  const std::string sae = kSaes + "/standard-pre6/blocks.1.hook_resid_pre";
  const auto r = run_cli({"trace", "-m", kTiny, "--concept", "greeting", "--prompts",
                          prompts_file(dir, "c.json", {texts[0], texts[1]}), "--baseline",
                          prompts_file(dir, "b.json", {texts[2], texts[3]}), "--sae", sae, "--positions", "prompt",
                          "-n", "0", "--per-sample", "3", "--out", dir.path(), "--dump-activations", dir.file("a.safetensors")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Most consistent greeting features"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blocks.1.hook_resid_pre.hook_sae_acts_post (SAE "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("neurontrace: SAE fit, blocks.1.hook_resid_pre (SAE "), std::string::npos) << r.err;

  SafetensorsFile dump(dir.file("a.safetensors"));
  const TensorInfo& t = dump.get("blocks.1.hook_resid_pre.hook_sae_acts_post");
  ASSERT_EQ(t.shape.size(), 2u);
  EXPECT_EQ(t.shape[1], 512);
  const std::vector<float> acts = dump.read_f32(t);
  // Each row against the golden of its prompt and position (the baseline's prompts are 2 and 3).
  const TensorInfo& pi = dump.get("prompt_index");
  const TensorInfo& ps = dump.get("positions");
  std::vector<int64_t> pidx(static_cast<size_t>(pi.shape[0])), ppos(static_cast<size_t>(ps.shape[0]));
  std::memcpy(pidx.data(), dump.data(pi), pidx.size() * sizeof(int64_t));
  std::memcpy(ppos.data(), dump.data(ps), ppos.size() * sizeof(int64_t));
  ASSERT_EQ(static_cast<int64_t>(pidx.size()), t.shape[0]);
  float worst = 0.0f;
  for (size_t r = 0; r < pidx.size(); ++r) {
    const GoldenRows g = golden("standard", static_cast<int>(pidx[r]), "feature_acts");
    for (size_t i = 0; i < 512; ++i)
      worst = std::max(worst, std::fabs(acts[r * 512 + i] - g.values[static_cast<size_t>(ppos[r]) * 512 + i]));
  }
  EXPECT_LE(worst, kTol);

  // trace.json: feature labels, and each row's density over the concept's tokens, from the goldens.
  const json trace = json::parse(read_text(dir.file("trace.json")));
  const json& site = trace["results"][0]["sites"][0];
  EXPECT_EQ(site["site"], "blocks.1.hook_resid_pre.hook_sae_acts_post");
  EXPECT_EQ(site["sae"], sae);
  ASSERT_FALSE(site["table"].empty());
  for (const auto& row : site["table"]) {
    const int latent = row["neuron"].get<int>();
    std::string label = "F";
    label += std::to_string(latent);
    EXPECT_EQ(row["label"], label);
    EXPECT_EQ(row["layer"], 1);
    int active = 0, tokens = 0, active_b = 0, tokens_b = 0;
    for (int k = 0; k < kPrompts; ++k) {
      const GoldenRows g = golden("standard", k, "feature_acts");
      for (int p = 0; p < g.rows; ++p) {
        const bool on = g.values[static_cast<size_t>(p) * 512 + static_cast<size_t>(latent)] > 0;
        (k < 2 ? active : active_b) += on;
        (k < 2 ? tokens : tokens_b) += 1;
      }
    }
    EXPECT_DOUBLE_EQ(row["density"].get<double>(), static_cast<double>(active) / tokens) << "F" << latent;
    EXPECT_DOUBLE_EQ(row["baseline_density"].get<double>(), static_cast<double>(active_b) / tokens_b) << "F" << latent;
  }
  EXPECT_NE(read_text(dir.file("consistency.csv")).find(",density,baseline_density"), std::string::npos);
  ASSERT_EQ(trace["sae_fit"].size(), 1u);
  EXPECT_EQ(trace["sae_fit"][0]["tokens"], 5 + 10 + 1 + 16);  // the golden prompts' tokens
}

TEST(SaeTraceCli, GenerateJsonListsTopLatentsPerToken) {
  const auto r = run_cli({"generate", "-m", kTiny, "-p", "Hello, my name is", "-n", "3", "--json", "--sae",
                          kSaes + "/topk-v6/blocks.1.mlp.hook_post", "--top-latents", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  const json& l = out[0]["sae_latents"][0];
  EXPECT_EQ(l["site"], "blocks.1.mlp.hook_post.hook_sae_acts_post");
  ASSERT_EQ(l["tokens"].size(), 3u);  // every generated token, the last one included
  for (size_t t = 0; t < 3; ++t) {
    const json& tok = l["tokens"][t];
    EXPECT_EQ(tok["token"], out[0]["generated_ids"][t]);
    EXPECT_EQ(tok["position"].get<int>(), 5 + static_cast<int>(t));
    ASSERT_LE(tok["top"].size(), 4u);
    for (size_t j = 1; j < tok["top"].size(); ++j) EXPECT_GE(tok["top"][j - 1][1].get<float>(), tok["top"][j][1].get<float>());
  }
  const auto bad = run_cli({"generate", "-m", kTiny, "-p", "Hi", "--sae", kSaes + "/topk-v6/blocks.1.mlp.hook_post"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("add --json"), std::string::npos) << bad.err;
}

TEST(SaeTraceCli, StudyWithSaes) {
  TempDir dir;
  const auto texts = golden_prompt_texts();
  const json cfg = {{"model", kTiny},
                    {"saes", {kSaes + "/jumprelu-v6/blocks.0.hook_resid_post"}},
                    {"generation", {{"max_new_tokens", 4}}},
                    {"trace", {{"sites", {"hook_resid_post"}}, {"positions", {"generated"}}, {"per_sample", 3}}},
                    {"neuron_pages", {{"per_concept", 1}, {"records", 2}}},
                    {"baseline", {{"prompts", {texts[2], texts[3]}}}},
                    {"concepts", {{"a", {texts[0], texts[1]}}, {"b", {texts[1], texts[3]}}}}};
  write_text(dir.file("study.json"), cfg.dump());
  const auto r = run_cli({"study", dir.file("study.json"), "--out", dir.file("out"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = read_text(dir.file("out/consistency.md"));
  EXPECT_NE(md.find("Most consistent a features — `blocks.0.hook_resid_post.hook_sae_acts_post (SAE "), std::string::npos) << md;
  EXPECT_TRUE(fs::exists(dir.file("out/overlap_generated_blocks_0_hook_resid_post_hook_sae_acts_post.csv")));
  bool feature_page = false;
  for (const auto& e : fs::directory_iterator(dir.file("out/neurons")))
    feature_page |= e.path().filename().string().find("hook_sae_acts_post_F") != std::string::npos;
  EXPECT_TRUE(feature_page);
  const std::string html = read_text(dir.file("out/report.html"));
  EXPECT_NE(html.find("Density"), std::string::npos);
  EXPECT_NE(html.find("SAE fit"), std::string::npos);
  const json study = json::parse(read_text(dir.file("out/study.json")));
  ASSERT_EQ(study["sae_fit"].size(), 1u);
  EXPECT_GT(study["sae_fit"][0]["mean_l0"].get<double>(), 0.0);
}

// An SAE whose hook the model lacks, or whose d_in is not the hook's width: one line, exit 1.
TEST(SaeTraceCli, SaeThatDoesNotFitIsRefused) {
  TempDir dir;
  const std::string src = kSaes + "/standard-pre6/blocks.1.hook_resid_pre";
  write_text(dir.file("p.json"), R"({"prompts": ["Hello"]})");
  for (const auto& [hook, message] : std::vector<std::pair<std::string, std::string>>{
           {"blocks.1.mlp.hook_post", "SAE d_in = 64 but model type 'gpt2' has width 256 at 'blocks.1.mlp.hook_post'"},
           {"blocks.7.hook_resid_pre", "does not fit model type 'gpt2'"}}) {
    const std::string folder = dir.file(hook);
    fs::create_directories(folder);
    fs::copy_file(src + "/sae_weights.safetensors", folder + "/sae_weights.safetensors");
    std::string cfg = read_text(src + "/cfg.json");
    cfg.replace(cfg.find("blocks.1.hook_resid_pre"), std::string("blocks.1.hook_resid_pre").size(), hook);
    write_text(folder + "/cfg.json", cfg);
    const auto r = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("p.json"), "--sae", folder, "--normalize", "none"});
    EXPECT_EQ(r.exit_code, 1) << hook;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const auto missing = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("p.json"), "--normalize", "none", "--site",
                                "blocks.0.hook_resid_post.hook_sae_recons"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no SAE given (--sae) reads"), std::string::npos) << missing.err;
}

}  // namespace
