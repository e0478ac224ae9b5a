// Tracing: recorded statistics checked against the fixture goldens (computed independently of the
// recorder), the notes' baseline finding reproduced with planted neurons, token selection, dumps,
// and the CLI's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/consistency.h"
#include "io/safetensors.h"
#include "runtime/session.h"
#include "test_support.h"
#include "trace/neuron_capture.h"
#include "trace/trace_run.h"
#include "util/error.h"
#include "util/option_error.h"

using namespace nt;
using nt::test::read_json;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::json;

namespace {

const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");

struct Golden {
  std::vector<float> block_out, mlp_act;  // [L, T, d], [L, T, m]
  size_t T;
};
Golden golden_prompt(int k) {
  SafetensorsFile f(kTiny + "/goldens/prompt_" + std::to_string(k) + ".safetensors");
  Golden g;
  g.block_out = f.read_f32(f.get("block_out"));
  g.mlp_act = f.read_f32(f.get("mlp_act"));
  g.T = static_cast<size_t>(f.get("input_ids").shape[0]);
  return g;
}

const json& stats_for(const json& trace, const std::string& positions, const std::string& group, const std::string& site) {
  for (const auto& s : trace["neuron_stats"])
    if (s["positions"] == positions && s["group"] == group && s["site"] == site) return s;
  throw std::runtime_error("no stats for " + site);
}

// Per-neuron means over the prompt tokens of golden prompt 0 equal what the trace recorded.
TEST(Trace, PromptMeansMatchGoldenActivations) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello, my name is"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--positions", "prompt", "--normalize", "none",
                    "--site", "hook_resid_post", "--site", "mlp.hook_post", "-n", "1", "--out", tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json trace = read_json(tmp.file("trace.json"));
  Golden g = golden_prompt(0);
  const int L = 2, d = 64, m = 256;
  const json& resid = stats_for(trace, "prompt", "concept", "hook_resid_post");
  const json& mlp = stats_for(trace, "prompt", "concept", "mlp.hook_post");
  EXPECT_EQ(resid["tokens"], 5);
  std::vector<std::pair<double, int>> golden_means;  // (mean, flat l*d+i) for the top-K check
  for (int l = 0; l < L; ++l) {
    for (int i = 0; i < d; ++i) {
      double sum = 0, mx = -1e30;
      for (size_t t = 0; t < g.T; ++t) {
        const double v = g.block_out[(l * g.T + t) * d + i];
        sum += v;
        mx = std::max(mx, v);
      }
      EXPECT_NEAR(resid["mean"][l][i].get<double>(), sum / g.T, 1e-5) << "L" << l << "N" << i;
      EXPECT_NEAR(resid["max"][l][i].get<double>(), mx, 1e-5);
      golden_means.push_back({sum / g.T, l * d + i});
    }
    for (int i = 0; i < m; ++i) {
      double sum = 0;
      for (size_t t = 0; t < g.T; ++t) sum += g.mlp_act[(l * g.T + t) * m + i];
      EXPECT_NEAR(mlp["mean"][l][i].get<double>(), sum / g.T, 1e-5);
    }
  }
  // With one sample and no normalization, the table is that sample's top 10 by mean.
  std::sort(golden_means.begin(), golden_means.end(), [](auto& a, auto& b) { return a.first > b.first; });
  const json& table = trace["results"][0]["sites"][0]["table"];
  ASSERT_EQ(table.size(), 10u);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(table[k]["layer"].get<int>() * d + table[k]["neuron"].get<int>(), golden_means[k].second) << k;
    EXPECT_EQ(table[k]["occurrences"], 1);
  }
  // The terminal table has the notes' layout.
  EXPECT_NE(r.out.find("Most consistent concept neurons\n====================\nMax possible occurrences: 1\n"
                       "Rank  Layer  Neuron  Occurrences  %\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  100.00%\n"), std::string::npos);
}

// Token selection on prompt tokens: only the token " name" (position 3) is recorded.
TEST(Trace, TokenSelectionRecordsOnlyMatchingTokens) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello, my name is"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--positions", "prompt", "--normalize", "none",
                    "--select-words", "name", "-n", "1", "--out", tmp.path(), "--dump-activations", tmp.file("d.safetensors")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json trace = read_json(tmp.file("trace.json"));
  const json& resid = stats_for(trace, "prompt", "concept", "hook_resid_post");
  EXPECT_EQ(resid["tokens"], 1);
  Golden g = golden_prompt(0);
  for (int l = 0; l < 2; ++l)
    for (int i = 0; i < 64; ++i)
      EXPECT_NEAR(resid["mean"][l][i].get<double>(), g.block_out[(l * g.T + 3) * 64 + i], 1e-5);
  SafetensorsFile dump(tmp.file("d.safetensors"));
  EXPECT_EQ(dump.read_i64(dump.get("positions")), std::vector<int64_t>{3});
  EXPECT_EQ(dump.read_i64(dump.get("token_ids")), std::vector<int64_t>{1438});
  EXPECT_EQ(dump.get("hook_resid_post").shape, (std::vector<int64_t>{1, 2, 64}));
  auto acts = dump.read_f32(dump.get("hook_resid_post"));
  for (int l = 0; l < 2; ++l)
    for (int i = 0; i < 64; ++i) EXPECT_NEAR(acts[l * 64 + i], g.block_out[(l * g.T + 3) * 64 + i], 1e-5);
}

TEST(Trace, DumpHoldsEveryGeneratedToken) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello", "The quick brown fox"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "-n", "6",
                    "--no-stop", "--dump-activations", tmp.file("d.safetensors")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  SafetensorsFile dump(tmp.file("d.safetensors"));
  auto seq = dump.read_i64(dump.get("prompt_index"));
  auto pos = dump.read_i64(dump.get("positions"));
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 0), 6);
  EXPECT_EQ(std::count(seq.begin(), seq.end(), 1), 6);
  for (size_t i = 0; i < seq.size(); ++i) EXPECT_GE(pos[i], seq[i] == 0 ? 1 : 4);
}

// Traces both sites of every row (setting 0 keeps the raw rows), greedy, `new_tokens` each.
TraceRun trace_keeping_rows(Session& session, const std::vector<PromptGroup>& groups,
                            std::vector<Positions> settings, int new_tokens) {
  RecorderOptions ro;
  ro.sites = {HookSite::ResidPost, HookSite::MlpPost};
  ro.settings = std::move(settings);
  ro.keep_rows = true;
  GenerationConfig gen;
  gen.max_new_tokens = new_tokens;
  gen.stop_at_eos = false;
  return run_trace(session, groups, ro, gen);
}

// Every position setting's per-sample statistics and group sums against the raw rows of the same
// run (setting 0 = all positions keeps every row): generated tokens only, the last generated
// token only, every token.
TEST(Trace, PositionSettingsMatchTheRecordedRows) {
  Session session = open_session(kTiny);
  std::vector<PromptGroup> groups = {{"a", {"Hello there", "The quick brown fox jumps"}}, {"b", {"Tulips are"}}};
  TraceRun tr = trace_keeping_rows(session, groups, {Positions::All, Positions::Generated, Positions::Last}, 5);
  const Recorder& rec = *tr.recorder;
  const RecordedRows& rows = rec.rows();
  const size_t total = rec.layout().total;
  for (size_t set = 0; set < 3; ++set) {
    std::vector<double> group_sum(total * 2, 0.0);  // sum, then sum of squares
    std::vector<float> group_min(total, INFINITY);
    for (int seq = 0; seq < 3; ++seq) {
      const int plen = static_cast<int>(tr.generations[static_cast<size_t>(seq)].prompt_ids.size());
      int last_pos = -1;
      for (size_t r = 0; r < rows.seq.size(); ++r)
        if (rows.seq[r] == seq) last_pos = std::max(last_pos, rows.pos[r]);
      std::vector<double> sum(total, 0.0), sumsq(total, 0.0);
      std::vector<float> mx(total, -INFINITY), mn(total, INFINITY);
      int n = 0;
      for (size_t r = 0; r < rows.seq.size(); ++r) {
        if (rows.seq[r] != seq) continue;
        const bool take = set == 0 || (set == 1 && rows.pos[r] >= plen) || (set == 2 && rows.pos[r] == last_pos);
        if (!take) continue;
        ++n;
        for (size_t i = 0; i < total; ++i) {
          const float v = rows.acts[r * total + i];
          sum[i] += v;
          sumsq[i] += static_cast<double>(v) * v;
          mx[i] = std::max(mx[i], v);
          mn[i] = std::min(mn[i], v);
        }
      }
      ASSERT_GT(n, 0);
      EXPECT_EQ(rec.n_tokens(set, seq), n) << "setting " << set << " seq " << seq;
      const SampleSummary s = rec.sample(set, seq);
      for (size_t i = 0; i < total; ++i) {
        ASSERT_NEAR(s.mean[i], sum[i] / n, 1e-6 * (1 + std::fabs(sum[i] / n))) << set << " " << seq << " " << i;
        ASSERT_EQ(s.max[i], mx[i]) << set << " " << seq << " " << i;
      }
      if (tr.group_of_seq[static_cast<size_t>(seq)] == 0)
        for (size_t i = 0; i < total; ++i) {
          group_sum[i] += sum[i];
          group_sum[total + i] += sumsq[i];
          group_min[i] = std::min(group_min[i], mn[i]);
        }
    }
    const TokenStats& g = rec.group(set, 0);
    for (size_t i = 0; i < total; ++i) {
      ASSERT_NEAR(g.sum[i], group_sum[i], 1e-9 * (1 + std::fabs(group_sum[i]))) << set << " " << i;
      ASSERT_NEAR(g.sumsq[i], group_sum[total + i], 1e-9 * (1 + group_sum[total + i])) << set << " " << i;
      ASSERT_EQ(g.min[i], group_min[i]) << set << " " << i;
    }
  }
}

// Capturing a few neurons over whole texts (what the neuron pages show) gives the activations the
// trace recorded for the same tokens, whichever blocks the capture stops after.
TEST(Trace, CaptureMatchesRecordedRows) {
  Session session = open_session(kTiny);
  std::vector<PromptGroup> groups = {{"a", {"Hello there", "The quick brown fox jumps"}}};
  TraceRun tr = trace_keeping_rows(session, groups, {Positions::All}, 4);
  const Recorder& rec = *tr.recorder;
  const int L = session.model->config().n_layer;
  std::vector<std::vector<int>> texts;
  for (const auto& g : tr.generations) {
    std::vector<int> t = g.prompt_ids;
    t.insert(t.end(), g.generated_ids.begin(), g.generated_ids.end());
    texts.push_back(t);
  }
  for (const std::vector<CaptureNeuron>& neurons :
       {std::vector<CaptureNeuron>{{HookSite::ResidPost, 0, 3}},
        std::vector<CaptureNeuron>{{HookSite::MlpPost, 1, 5}, {HookSite::ResidPost, L - 1, 2}}}) {
    const auto acts = capture_neurons(*session.model, texts, neurons);
    for (size_t r = 0; r < rec.rows().seq.size(); ++r) {
      const size_t seq = static_cast<size_t>(rec.rows().seq[r]), pos = static_cast<size_t>(rec.rows().pos[r]);
      if (pos >= texts[seq].size()) continue;  // the last generated token is fed but not part of the text
      for (size_t k = 0; k < neurons.size(); ++k) {
        const int site = neurons[k].site == HookSite::ResidPost ? 0 : 1;
        const float want = rec.rows().acts[r * rec.layout().total + rec.layout().flat({site, neurons[k].layer, neurons[k].index})];
        ASSERT_NEAR(acts[seq][pos][k], want, 1e-5f) << "seq " << seq << " pos " << pos << " neuron " << k;
      }
    }
  }
}

// The notes' finding on purpose. Neuron 5 of the last block is pushed up for concept prompts only;
// neuron 7 is pushed up even more for every prompt. Raw means rank neuron 7 first; subtracting the
// baseline (or z-scoring) ranks neuron 5 first in every sample, and neuron 7 disappears.
class PlantedNeurons : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { session_ = new Session(open_session(kTiny)); }
  static void TearDownTestSuite() { delete session_; }
  static Session* session_;

  std::vector<ConceptAnalysis> run(const std::vector<Normalization>& norms) {
    std::vector<PromptGroup> groups = {
        {"concept", {"Tulips are spring flowers that", "The tulip fields of the Netherlands", "A bouquet of red tulips",
                     "Tulip petals open in the morning", "Gardeners say the best soil"}},
        {"baseline", {"The quick brown fox jumps over the lazy dog.", "She opened the window.",
                      "He walked to the store.", "They studied quietly in the library."}}};
    const int n_concept = 5;
    const int L = session_->model->config().n_layer;
    Hooks hooks(session_->model->config());
    hooks.add({HookSite::ResidPost, L - 1}, [&](const HookContext& ctx, float* acts) {
      for (size_t r = 0; r < ctx.rows.size(); ++r) {
        if (ctx.rows[r].seq < n_concept) acts[r * ctx.width + 5] += 40.0f;
        acts[r * ctx.width + 7] += 100.0f;
      }
    });
    RecorderOptions rec;
    GenerationConfig gen;
    gen.max_new_tokens = 8;
    TraceRun tr = run_trace(*session_, groups, rec, gen, &hooks);
    BaselineStats base = compute_baseline(*tr.recorder, 0, 1, tr.seqs_of(1), RankBy::Mean);
    std::vector<ConceptAnalysis> out;
    for (auto n : norms) {
      AnalysisOptions opt;
      opt.normalization = n;
      out.push_back(analyze_concept(*tr.recorder, 0, "concept", tr.seqs_of(0), base, opt));
    }
    return out;
  }
  static bool in_table(const SiteConsistency& sc, int layer, int index) {
    for (const auto& r : sc.rows)
      if (r.neuron.layer == layer && r.neuron.index == index) return true;
    return false;
  }
};
Session* PlantedNeurons::session_ = nullptr;

TEST_F(PlantedNeurons, BaselineSubtractionFindsTheConceptNeuron) {
  auto a = run({Normalization::None, Normalization::Subtract, Normalization::ZScore});
  const int last = 1;
  const auto& raw = a[0].sites[0];
  EXPECT_EQ(raw.rows[0].neuron.layer, last);
  EXPECT_EQ(raw.rows[0].neuron.index, 7);
  EXPECT_EQ(raw.rows[0].occurrences, 5);
  for (int k : {1, 2}) {
    const auto& sc = a[static_cast<size_t>(k)].sites[0];
    EXPECT_EQ(sc.rows[0].neuron.layer, last) << k;
    EXPECT_EQ(sc.rows[0].neuron.index, 5) << k;
    EXPECT_EQ(sc.rows[0].occurrences, 5) << k;
    EXPECT_DOUBLE_EQ(sc.rows[0].percent, 100.0) << k;
    EXPECT_FALSE(in_table(sc, last, 7)) << k;
    EXPECT_GT(sc.rows[0].cohens_d.value_or(0.0), 5.0);
    EXPECT_DOUBLE_EQ(sc.rows[0].frac_above_p95.value_or(0.0), 1.0);
  }
}

TEST(TraceErrors, EmptyPromptList) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": []})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("p.json: the prompt list is empty"), std::string::npos) << r.err;
}

TEST(TraceErrors, MissingAndInvalidJson) {
  TempDir tmp;
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("none.json"), "--normalize", "none"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("none.json: prompts file not found"), std::string::npos) << r.err;
  write_text(tmp.file("bad.json"), "{\"prompts\": [\"a\",");
  r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("bad.json"), "--normalize", "none"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.json: malformed JSON"), std::string::npos) << r.err;
}

TEST(TraceErrors, UnknownSite) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--site", "hook_nothing"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown hook site 'hook_nothing'"), std::string::npos) << r.err;
}

// Rules of the analysis options live in the library (check_analysis_options); the command names
// its flags in the library's message.
TEST(TraceErrors, PerSampleLargerThanNeurons) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--per-sample", "129"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--per-sample: 129 is larger than the number of neurons at hook_resid_post (128)"),
            std::string::npos)
      << r.err;
  r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--per-sample", "0"});
  EXPECT_NE(r.err.find("--per-sample: must be positive (got 0)"), std::string::npos) << r.err;
  r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--select-words", "a",
               "--select-window", "-1"});
  EXPECT_NE(r.err.find("--select-window: must be >= 0 (got -1)"), std::string::npos) << r.err;
  // Sampling is --top-k, as in generate and steer.
  r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--top-k", "-2"});
  EXPECT_NE(r.err.find("--top-k: must be >= 0 (got -2)"), std::string::npos) << r.err;
  r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--sample-top-k", "2"});
  EXPECT_NE(r.exit_code, 0);
}

TEST(TraceLibrary, AnalysisOptionsCheckedOnce) {
  Session session = open_session(kTiny);
  const NeuronLayout layout({HookSite::ResidPost, HookSite::MlpPost}, session.model->config());
  AnalysisOptions opt;
  opt.normalization = Normalization::None;
  opt.top_k = 129;  // hook_resid_post has 2 x 64 neurons
  try {
    check_analysis_options(opt, layout, false);
    ADD_FAILURE() << "no error";
  } catch (const OptionError& e) {
    EXPECT_EQ(e.option, "trace.per_sample");
    EXPECT_STREQ(e.what(), "trace.per_sample: 129 is larger than the number of neurons at hook_resid_post (128)");
  }
  opt.top_k = 10;
  EXPECT_NO_THROW(check_analysis_options(opt, layout, false));
  opt.normalization = Normalization::ZScore;
  try {
    check_analysis_options(opt, layout, false);
    ADD_FAILURE() << "no error";
  } catch (const OptionError& e) {
    EXPECT_EQ(e.option, "trace.normalize");
  }
  EXPECT_NO_THROW(check_analysis_options(opt, layout, true));
}

TEST(TraceErrors, NormalizationWithoutBaseline) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--normalize: subtract needs a baseline"), std::string::npos) << r.err;
}

TEST(TraceErrors, SelectionThatNeverMatches) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello", "The quick brown fox"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "--select-regex",
                    "^zzzqqq$", "-n", "4", "--out", tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: no tokens recorded"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("no tokens recorded"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("inf"), std::string::npos) << r.out;
  json trace = read_json(tmp.file("trace.json"));
  EXPECT_TRUE(trace["results"][0]["no_tokens_recorded"].get<bool>());
  EXPECT_TRUE(trace["results"][0]["sites"][0]["table"].empty());
  EXPECT_EQ(test::read_text(tmp.file("trace.json")).find("NaN"), std::string::npos);
}

// Without --baseline nothing was measured against a baseline: its columns say so ("–", an empty
// CSV field, null in JSON) instead of printing zeros that read as measurements.
TEST(Trace, NoBaselineColumnsAreMarkedNotMeasured) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello", "The quick brown fox"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--normalize", "none", "-n", "4",
                    "--per-sample", "3", "--out", tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string sel = r.out.substr(r.out.find("Selectivity"));
  const std::string row = sel.substr(sel.find("\n   1  ") + 1, sel.find('\n', sel.find("\n   1  ") + 1) - sel.find("\n   1  ") - 1);
  EXPECT_EQ(row.find("0.0000"), std::string::npos) << row;
  // The last column, the density, is measured on the concept's own tokens; the three before it
  // are the baseline's.
  const std::string before = row.substr(0, row.rfind(' '));
  EXPECT_EQ(before.find('%'), std::string::npos) << row;
  EXPECT_EQ(before.substr(before.find_last_not_of(' ') - 2, 3), "–") << row;
  const json trace = read_json(tmp.file("trace.json"));
  for (const auto& t : trace["results"][0]["sites"][0]["table"]) {
    EXPECT_TRUE(t["baseline_mean"].is_null());
    EXPECT_TRUE(t["cohens_d"].is_null());
    EXPECT_TRUE(t["frac_above_baseline_p95"].is_null());
    EXPECT_TRUE(t["baseline_density"].is_null());
    EXPECT_TRUE(t["concept_mean"].is_number());
    EXPECT_TRUE(t["density"].is_number());
  }
  const std::string csv = test::read_text(tmp.file("consistency.csv"));
  const std::string first = csv.substr(csv.find('\n') + 1, csv.find('\n', csv.find('\n') + 1) - csv.find('\n') - 1);
  EXPECT_NE(first.find(",,,"), std::string::npos) << first;  // baseline mean, Cohen's d, > p95
  EXPECT_EQ(first.back(), ',') << first;                      // baseline density
  const std::string md = test::read_text(tmp.file("consistency.md"));
  EXPECT_NE(md.find(" | – | – | – | "), std::string::npos) << md;
}

// With a baseline, the same columns hold numbers in every format.
TEST(Trace, BaselineColumnsHoldMeasurements) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello", "The quick brown fox"]})");
  write_text(tmp.file("b.json"), R"({"prompts": ["She opened the window.", "He walked to the store."]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--baseline", tmp.file("b.json"), "-n",
                    "4", "--per-sample", "3", "--out", tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("–"), std::string::npos) << r.out;
  const json trace = read_json(tmp.file("trace.json"));
  for (const auto& t : trace["results"][0]["sites"][0]["table"]) {
    EXPECT_TRUE(t["baseline_mean"].is_number());
    EXPECT_TRUE(t["cohens_d"].is_number());
    EXPECT_TRUE(t["frac_above_baseline_p95"].is_number());
  }
  EXPECT_EQ(test::read_text(tmp.file("consistency.csv")).find(",,"), std::string::npos);
}

// -n 0: prompt positions are still traced; "generated" and "last" record nothing and give the
// "no tokens recorded" result, even with a baseline normalization (nothing to normalize).
TEST(Trace, ZeroNewTokensTracesThePromptOnly) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello", "The quick brown fox"]})");
  write_text(tmp.file("b.json"), R"({"prompts": ["She opened the window.", "He walked to the store."]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", tmp.file("p.json"), "--baseline", tmp.file("b.json"), "-n",
                    "0", "--positions", "prompt", "--positions", "generated", "--positions", "last", "--out",
                    tmp.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no tokens recorded for 'concept' at positions 'generated'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no tokens recorded for 'concept' at positions 'last'"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("nan"), std::string::npos) << r.out;
  const json trace = read_json(tmp.file("trace.json"));
  ASSERT_EQ(trace["results"].size(), 3u);
  EXPECT_FALSE(trace["results"][0]["no_tokens_recorded"].get<bool>());
  EXPECT_EQ(trace["results"][0]["sites"][0]["table"].size(), 10u);
  EXPECT_EQ(trace["results"][0]["sites"][0]["max_occurrences"], 2);
  for (int s : {1, 2}) {
    EXPECT_TRUE(trace["results"][s]["no_tokens_recorded"].get<bool>()) << s;
    EXPECT_TRUE(trace["results"][s]["sites"][0]["table"].empty()) << s;
  }
  for (const auto& p : trace["prompts"]) EXPECT_TRUE(p["generated_ids"].empty());
}

}  // namespace
