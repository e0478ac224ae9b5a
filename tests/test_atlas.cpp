// neurontrace atlas on gpt2-tiny over the sample corpus: statistics and top contexts of neurons and
// of an SAE's latents against expectations computed here (the model run directly on windows cut
// here, the SAE library encoding its hook's rows, moments and top-K taken naively), shards merged
// against one process, mismatched parts (another setting, another SAE) refused, and a SIGKILLed
// scan resumed from its checkpoint to the same atlas.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "atlas/atlas_state.h"
#include "atlas/record_bytes.h"
#include "atlas_compare.h"
#include "io/model_config.h"
#include "io/random_model.h"
#include "util/error.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "sae/sae.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "trace/neuron_capture.h"

namespace {

namespace fs = std::filesystem;
using nt::test::expect_same_atlas;
using nt::test::run_cli;
using nt::test::tensor;

std::string model_dir() { return nt::test::shared_path("fixtures/models/gpt2-tiny"); }
std::string corpus() { return nt::test::shared_path("corpora/wiki-sample.jsonl"); }

constexpr int kContext = 32, kTop = 5, kSamples = 6;
constexpr int64_t kMaxTokens = 1200;

std::vector<std::string> scan_args(const std::string& out, const std::vector<std::string>& more = {},
                                   const std::string& corpus_path = corpus(), const std::string& model = model_dir()) {
  std::vector<std::string> a{"--threads", "2", "atlas", "-m", model, "--corpus", corpus_path,
                             "--site", "mlp.hook_post", "--site", "hook_resid_post", "--context", std::to_string(kContext),
                             "--top", std::to_string(kTop), "--samples", std::to_string(kSamples),
                             "--max-tokens", std::to_string(kMaxTokens), "--out", out};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// One counted token of the scan, as this test cuts the corpus.
struct Token {
  int64_t doc;
  int pos;
  size_t window;
  int index;
};

// The first documents of the corpus up to kMaxTokens tokens, cut into windows of kContext tokens,
// each after the first repeating the last kContext/4 tokens of the one before (GPT-2: no BOS).
struct Windows {
  std::vector<std::vector<int>> windows;
  std::vector<Token> counted;
};

Windows cut_windows(const nt::Tokenizer& tok) {
  Windows w;
  std::ifstream in(corpus());
  std::string line;
  int64_t budget = kMaxTokens;
  for (int64_t doc = 0; budget > 0 && std::getline(in, line); ++doc) {
    std::vector<int> ids = tok.encode(nlohmann::json::parse(line)["text"].get<std::string>());
    if (static_cast<int64_t>(ids.size()) > budget) ids.resize(static_cast<size_t>(budget));
    budget -= static_cast<int64_t>(ids.size());
    int next = 0;
    while (next < static_cast<int>(ids.size())) {
      const int start = next == 0 ? 0 : next - kContext / 4;
      const int end = std::min<int>(static_cast<int>(ids.size()), start + kContext);
      for (int p = next; p < end; ++p) w.counted.push_back({doc, p, w.windows.size(), p - start});
      w.windows.emplace_back(ids.begin() + start, ids.begin() + end);
      next = end;
    }
  }
  return w;
}

// Scans `model_path` (a GPT-2 model) and checks the atlas against the model run here.
void expect_atlas_matches_naive_scan(const std::string& model_path) {
  nt::test::TempDir dir;
  const auto r = run_cli(scan_args(dir.file("atlas"), {}, corpus(), model_path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nt::SafetensorsFile f(dir.file("atlas/atlas.safetensors"));

  auto model = nt::load_model(model_path);
  auto tok = nt::load_tokenizer(model_path);
  const Windows w = cut_windows(*tok);
  const nt::ModelConfig& c = model->config();
  std::vector<nt::CaptureNeuron> units;  // the atlas's unit order: site, layer, index
  for (nt::HookSite site : {nt::HookSite::MlpPost, nt::HookSite::ResidPost})
    for (int l = 0; l < c.n_layer; ++l)
      for (int i = 0; i < (site == nt::HookSite::MlpPost ? c.d_mlp : c.d_model); ++i) units.push_back({site, l, i});
  const auto acts = nt::capture_neurons(*model, w.windows, units);

  const auto counts = tensor<int64_t>(f, "counts");
  ASSERT_EQ(counts[0], static_cast<int64_t>(w.counted.size()));
  const auto mean = tensor<double>(f, "mean"), m2 = tensor<double>(f, "m2");
  const auto mn = tensor<float>(f, "min"), mx = tensor<float>(f, "max");
  const auto positive = tensor<int64_t>(f, "positive");
  const auto top_count = tensor<int32_t>(f, "top_count"), sample_count = tensor<int32_t>(f, "sample_count");
  const auto rec_value = tensor<float>(f, "record_value");
  const auto rec_doc = tensor<int64_t>(f, "record_doc");
  const auto rec_pos = tensor<int32_t>(f, "record_pos");
  ASSERT_EQ(mean.size(), units.size());
  size_t rec = 0;
  const double n = static_cast<double>(w.counted.size());
  for (size_t u = 0; u < units.size(); ++u) {
    std::vector<std::tuple<float, int64_t, int>> values;
    double sum = 0;
    for (const Token& t : w.counted) {
      const float x = acts[t.window][static_cast<size_t>(t.index)][u];
      values.emplace_back(x, t.doc, t.pos);
      sum += x;
    }
    const double mu = sum / n;
    double ss = 0;
    int64_t pos = 0;
    for (const auto& [x, d, p] : values) {
      ss += (x - mu) * (x - mu);
      pos += x > 0;
    }
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    ASSERT_NEAR(mean[u], mu, 1e-5 * (1 + std::abs(mu))) << "unit " << u;
    ASSERT_NEAR(m2[u] / n, ss / n, 1e-5 * (1 + ss / n)) << "unit " << u;
    ASSERT_NEAR(mn[u], std::get<0>(*lo), 1e-5) << "unit " << u;
    ASSERT_NEAR(mx[u], std::get<0>(*hi), 1e-5) << "unit " << u;
    ASSERT_NEAR(static_cast<double>(positive[u]), static_cast<double>(pos), 2) << "unit " << u;
    // Top contexts: value descending, then document, then position.
    std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
      return std::make_pair(std::get<1>(a), std::get<2>(a)) < std::make_pair(std::get<1>(b), std::get<2>(b));
    });
    ASSERT_EQ(top_count[u], kTop);
    ASSERT_EQ(sample_count[u], kSamples);
    for (int k = 0; k < kTop; ++k, ++rec) {
      ASSERT_NEAR(rec_value[rec], std::get<0>(values[static_cast<size_t>(k)]), 1e-5) << "unit " << u << " top " << k;
      if (k + 1 < kTop && std::get<0>(values[static_cast<size_t>(k)]) - std::get<0>(values[static_cast<size_t>(k) + 1]) < 1e-5)
        continue;  // a near tie may come out in either order from another batching
      ASSERT_EQ(rec_doc[rec], std::get<1>(values[static_cast<size_t>(k)])) << "unit " << u << " top " << k;
      ASSERT_EQ(rec_pos[rec], std::get<2>(values[static_cast<size_t>(k)])) << "unit " << u << " top " << k;
    }
    rec += static_cast<size_t>(kSamples);
  }

  // The JSON of one unit: a NeuronRecord whose records are whole windows.
  const std::string unit_file = dir.file("atlas/units/mlp.hook_post/L1N3.json");
  const nlohmann::json j = nlohmann::json::parse(nt::test::read_text(unit_file));
  EXPECT_EQ(j["dataclass_name"], "NeuronRecord");
  EXPECT_EQ(j["neuron_id"]["layer_index"], 1);
  EXPECT_EQ(j["neuron_id"]["neuron_index"], 3);
  const auto& top = j["most_positive_activation_records"];
  ASSERT_EQ(top.size(), static_cast<size_t>(kTop));
  for (const auto& record : top) {
    const size_t index = record["index"].get<size_t>();
    ASSERT_EQ(record["tokens"].size(), record["activations"].size());
    EXPECT_LE(record["tokens"].size(), static_cast<size_t>(kContext));
    EXPECT_EQ(record["activations"][index].get<float>(), top[0]["activations"][top[0]["index"].get<size_t>()].get<float>() >= 0
                                                             ? record["activations"][index].get<float>()
                                                             : 0.0f);
  }
  size_t sampled = 0;
  for (const auto& q : j["random_sample_by_quantile"]) sampled += q.size();
  EXPECT_EQ(sampled, static_cast<size_t>(kSamples));
  EXPECT_EQ(j["quantile_boundaries"].size(), 6u);
  for (const char* key : {"mean", "variance", "skewness", "kurtosis", "density", "histogram"}) EXPECT_TRUE(j.contains(key)) << key;

  // Logit effects of L1N3, computed here: (c_proj[3] * ln_f gain) . wte^T, top and bottom 10.
  nt::SafetensorsFile weights(model_path + "/model.safetensors");
  auto get = [&](const std::string& name) {
    const nt::TensorInfo* t = weights.find(name);
    if (!t) t = weights.find("transformer." + name);
    return weights.read_f32(*t);
  };
  const auto c_proj = get("h.1.mlp.c_proj.weight"), gain = get("ln_f.weight"), wte = get("wte.weight");
  const size_t C = static_cast<size_t>(c.d_model), V = static_cast<size_t>(c.vocab_size);
  std::vector<std::pair<double, int>> logits;
  for (size_t v = 0; v < V; ++v) {
    double acc = 0;
    for (size_t d = 0; d < C; ++d) acc += static_cast<double>(c_proj[3 * C + d]) * gain[d] * wte[v * C + d];
    logits.emplace_back(acc, static_cast<int>(v));
  }
  std::sort(logits.begin(), logits.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const auto& effects = j["logit_effects"];
  ASSERT_EQ(effects["top"].size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(effects["top"][i][1].get<double>(), logits[i].first, 1e-4);
    EXPECT_NEAR(effects["bottom"][i][1].get<double>(), logits[V - 1 - i].first, 1e-4);
  }
  EXPECT_EQ(effects["top"][0][0].get<std::string>(), tok->token_bytes(logits[0].second));
}

TEST(Atlas, StatisticsAndTopContextsMatchANaiveScan) { expect_atlas_matches_naive_scan(model_dir()); }

// Site widths that are not a multiple of the fold's 16-unit blocks (n_embd 40, n_inner 72): the
// last units of each site go through the one-unit path.
TEST(Atlas, SitesWiderThanWholeBlocksMatchANaiveScan) {
  nt::test::TempDir dir;
  nt::RandomModelSpec spec;
  spec.layers = 2;
  spec.width = 40;
  spec.heads = 4;
  spec.mlp = 72;
  spec.ctx = 64;
  spec.seed = 7;
  nt::write_random_model(dir.file("model"), spec, nt::default_random_model_tokenizer_dir("gpt2"));
  expect_atlas_matches_naive_scan(dir.file("model"));
}

TEST(Atlas, ThreeShardsMergeToTheSingleProcessAtlas) {
  nt::test::TempDir dir;
  // 16 documents of ~80 tokens: every shard scans five of those within the 1,200 tokens.
  const std::string short_corpus = nt::test::short_sample_documents(dir, 16, 60);
  auto r = run_cli(scan_args(dir.file("one"), {}, short_corpus));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 3; ++i) {
    r = run_cli(scan_args(dir.file("part-" + std::to_string(i)), {"--shard", std::to_string(i) + "/3"}, short_corpus));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("atlas: 0 documents"), std::string::npos) << r.out;  // every shard has a share
  }
  // Merged in another order than the shards' to show the order does not matter.
  r = run_cli({"atlas", "merge", dir.file("part-2"), dir.file("part-0"), dir.file("part-1"), "--out", dir.file("merged")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_atlas(dir.file("one/atlas.safetensors"), dir.file("merged/atlas.safetensors"));
  for (const std::string unit : {"hook_resid_post/L0N7.json", "mlp.hook_post/L1N3.json"})
    nt::test::expect_same_unit_json(dir.file("one/units/" + unit), dir.file("merged/units/" + unit));

  // Refused, with one line naming the problem: a missing shard, a duplicate, another setting.
  r = run_cli({"atlas", "merge", dir.file("part-0"), dir.file("part-1"), "--out", dir.file("bad")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing shard(s) 2 of 3"), std::string::npos) << r.err;
  r = run_cli({"atlas", "merge", dir.file("part-0"), dir.file("part-1"), dir.file("part-1"), "--out", dir.file("bad")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("given twice"), std::string::npos) << r.err;
  auto other = scan_args(dir.file("other-2"), {"--shard", "2/3"}, short_corpus);
  other[std::find(other.begin(), other.end(), "--top") - other.begin() + 1] = "4";
  r = run_cli(other);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"atlas", "merge", dir.file("part-0"), dir.file("part-1"), dir.file("other-2"), "--out", dir.file("bad")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("differ in settings"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("bad")));
}

// The records of a part as the MPI ranks send them (record_bytes.h): a range of units read back
// into an empty state gives the same records, and cut bytes are refused.
TEST(Atlas, RecordBytesCarryAPartsRecords) {
  nt::test::TempDir dir;
  auto r = run_cli(scan_args(dir.file("part-1"), {"--shard", "0/3"}));  // the slice is in document 0
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nt::ModelConfig config = nt::load_model_config(model_dir());
  const nt::AtlasState part = nt::load_atlas_state(dir.file("part-1/atlas.safetensors"), config).state;
  const size_t begin = 5, end = part.layout.total - 3;
  const std::string bytes = nt::records_to_bytes(part, begin, end);
  EXPECT_LE(bytes.size(), (end - begin) * nt::max_record_bytes_per_unit(part.settings));
  nt::AtlasState copy(part.settings, part.layout);
  nt::merge_records_bytes(copy, begin, end, bytes, "test");
  auto same = [](const std::vector<nt::ContextRecord>& a, const std::vector<nt::ContextRecord>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].value != b[i].value || a[i].doc != b[i].doc || a[i].pos != b[i].pos || a[i].index != b[i].index ||
          a[i].hash != b[i].hash || *a[i].tokens != *b[i].tokens || a[i].acts != b[i].acts)
        return false;
    return true;
  };
  size_t kept = 0;
  for (size_t u = 0; u < part.layout.total; ++u) {
    const bool in_range = u >= begin && u < end;
    EXPECT_TRUE(same(copy.top[u], in_range ? part.top[u] : std::vector<nt::ContextRecord>{})) << u;
    EXPECT_TRUE(same(copy.samples[u], in_range ? part.samples[u] : std::vector<nt::ContextRecord>{})) << u;
    kept += copy.top[u].size() + copy.samples[u].size();
  }
  EXPECT_GT(kept, (end - begin) * (kTop + kSamples) / 2);
  for (size_t cut : {size_t{1}, size_t{7}, bytes.size() / 2}) {
    nt::AtlasState target(part.settings, part.layout);
    try {
      nt::merge_records_bytes(target, begin, end, std::string_view(bytes).substr(0, bytes.size() - cut), "rank 1");
      ADD_FAILURE() << "cut by " << cut << " accepted";
    } catch (const nt::Error& e) {
      EXPECT_STREQ(e.what(), "rank 1: malformed atlas records");
    }
  }
}

pid_t spawn_cli(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (!out || ::dup2(::fileno(stdout), 2) < 0) ::_exit(126);
    std::string exe = NT_CLI_PATH;
    std::vector<std::string> copy = args;
    std::vector<char*> argv{exe.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

TEST(Atlas, AKilledScanResumesToTheSameAtlas) {
  nt::test::TempDir dir;
  const std::vector<std::string> more{"--checkpoint-every", "1", "--batch", "2"};
  auto r = run_cli(scan_args(dir.file("whole"), more));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const std::string out = dir.file("killed"), checkpoint = out + "/atlas.checkpoint.safetensors";
  const pid_t pid = spawn_cli(scan_args(out, more), dir.file("run1.log"));
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    if (fs::exists(checkpoint)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      killed = WIFSIGNALED(status);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!killed) GTEST_SKIP() << "the scan finished before a checkpoint could be killed";
  EXPECT_FALSE(fs::exists(out + "/atlas.safetensors"));
  r = run_cli(scan_args(out, more));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(checkpoint));
  EXPECT_EQ(nt::test::read_text(dir.file("whole/atlas.safetensors")), nt::test::read_text(out + "/atlas.safetensors"));
}

std::string sae_dir(const std::string& name) { return nt::test::shared_path("fixtures/saes/gpt2-tiny/" + name + "/blocks.0.hook_resid_post"); }

std::vector<std::string> sae_scan_args(const std::string& out, const std::string& sae, int64_t max_tokens = kMaxTokens,
                                       const std::vector<std::string>& more = {}) {
  std::vector<std::string> a{"--threads", "2", "atlas", "-m", model_dir(), "--corpus", corpus(), "--sae", sae,
                             "--context", std::to_string(kContext), "--top", std::to_string(kTop), "--samples",
                             std::to_string(kSamples), "--max-tokens", std::to_string(max_tokens), "--out", out};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

TEST(Atlas, SaeLatentsMatchTheSaeEncodingOfTheModelsRows) {
  nt::test::TempDir dir;
  const std::string sae_path = sae_dir("jumprelu-v6");
  const auto r = run_cli(sae_scan_args(dir.file("atlas"), sae_path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nt::SafetensorsFile f(dir.file("atlas/atlas.safetensors"));

  // Expected: hook_resid_post of layer 0 over the windows, encoded here by the SAE library.
  auto model = nt::load_model(model_dir());
  auto tok = nt::load_tokenizer(model_dir());
  const Windows w = cut_windows(*tok);
  const nt::ModelConfig& c = model->config();
  std::vector<nt::CaptureNeuron> dims;
  for (int i = 0; i < c.d_model; ++i) dims.push_back({nt::HookSite::ResidPost, 0, i});
  const auto resid = nt::capture_neurons(*model, w.windows, dims);
  const auto sae = nt::Sae::load(sae_path);
  const size_t F = static_cast<size_t>(sae->d_sae());
  std::vector<std::vector<float>> latents;  // [counted token][latent]
  for (const Token& t : w.counted) {
    nt::SaeEncoding enc;
    sae->encode(resid[t.window][static_cast<size_t>(t.index)].data(), 1, enc);
    latents.push_back(enc.acts);
  }

  const auto mean = tensor<double>(f, "mean"), m2 = tensor<double>(f, "m2");
  const auto mx = tensor<float>(f, "max");
  const auto positive = tensor<int64_t>(f, "positive");
  const auto rec_value = tensor<float>(f, "record_value");
  const auto rec_doc = tensor<int64_t>(f, "record_doc");
  const auto rec_pos = tensor<int32_t>(f, "record_pos");
  ASSERT_EQ(mean.size(), F);
  const double n = static_cast<double>(w.counted.size());
  size_t rec = 0, active_units = 0;
  for (size_t u = 0; u < F; ++u) {
    std::vector<std::tuple<float, int64_t, int>> values;
    double sum = 0;
    for (size_t k = 0; k < w.counted.size(); ++k) {
      values.emplace_back(latents[k][u], w.counted[k].doc, w.counted[k].pos);
      sum += latents[k][u];
    }
    const double mu = sum / n;
    double ss = 0;
    int64_t pos = 0;
    for (const auto& [x, d, p] : values) {
      ss += (x - mu) * (x - mu);
      pos += x > 0;
    }
    active_units += pos > 0;
    ASSERT_NEAR(mean[u], mu, 1e-5 * (1 + std::abs(mu))) << "latent " << u;
    ASSERT_NEAR(m2[u] / n, ss / n, 1e-5 * (1 + ss / n)) << "latent " << u;
    ASSERT_NEAR(static_cast<double>(positive[u]), static_cast<double>(pos), 2) << "latent " << u;
    std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
      return std::make_pair(std::get<1>(a), std::get<2>(a)) < std::make_pair(std::get<1>(b), std::get<2>(b));
    });
    ASSERT_NEAR(mx[u], std::get<0>(values[0]), 1e-5) << "latent " << u;
    for (int k = 0; k < kTop; ++k, ++rec) {
      ASSERT_NEAR(rec_value[rec], std::get<0>(values[static_cast<size_t>(k)]), 1e-4) << "latent " << u << " top " << k;
      if (k + 1 < kTop && std::get<0>(values[static_cast<size_t>(k)]) - std::get<0>(values[static_cast<size_t>(k) + 1]) < 1e-4)
        continue;  // a near tie may come out in either order
      ASSERT_EQ(rec_doc[rec], std::get<1>(values[static_cast<size_t>(k)])) << "latent " << u << " top " << k;
      ASSERT_EQ(rec_pos[rec], std::get<2>(values[static_cast<size_t>(k)])) << "latent " << u << " top " << k;
    }
    rec += static_cast<size_t>(kSamples);
  }
  EXPECT_GT(active_units, F / 4);  // the comparison is not vacuous

  // A latent's record and logit effects, computed here: (W_dec[f] * ln_f gain) . wte^T.
  const int latent = 5;
  const nlohmann::json j = nlohmann::json::parse(
      nt::test::read_text(dir.file("atlas/units/blocks.0.hook_resid_post.hook_sae_acts_post/F5.json")));
  EXPECT_EQ(j["site"], "blocks.0.hook_resid_post.hook_sae_acts_post");
  EXPECT_EQ(j["neuron_id"]["neuron_index"], latent);
  nt::SafetensorsFile weights(model_dir() + "/model.safetensors"), sae_weights(sae_path + "/sae_weights.safetensors");
  auto get = [&](const std::string& name) {
    const nt::TensorInfo* t = weights.find(name);
    if (!t) t = weights.find("transformer." + name);
    return weights.read_f32(*t);
  };
  const auto w_dec = sae_weights.read_f32(sae_weights.get("W_dec")), gain = get("ln_f.weight"), wte = get("wte.weight");
  const size_t C = static_cast<size_t>(c.d_model), V = static_cast<size_t>(c.vocab_size);
  std::vector<double> logits(V);
  for (size_t v = 0; v < V; ++v)
    for (size_t d = 0; d < C; ++d) logits[v] += static_cast<double>(w_dec[latent * C + d]) * gain[d] * wte[v * C + d];
  std::sort(logits.begin(), logits.end(), std::greater<>());
  ASSERT_EQ(j["logit_effects"]["top"].size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(j["logit_effects"]["top"][i][1].get<double>(), logits[i], 1e-4);
    EXPECT_NEAR(j["logit_effects"]["bottom"][i][1].get<double>(), logits[V - 1 - i], 1e-4);
  }
  EXPECT_NE(nt::test::read_text(dir.file("atlas/index-data.js")).find("\"F5\""), std::string::npos);
}

TEST(Atlas, PartsScannedWithAnotherSaeAreRefused) {
  nt::test::TempDir dir;
  auto r = run_cli(sae_scan_args(dir.file("part-0"), sae_dir("jumprelu-v6"), 200, {"--shard", "0/2"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli(sae_scan_args(dir.file("part-1"), nt::test::shared_path("fixtures/saes/gpt2-tiny/standard-pre6/blocks.1.hook_resid_pre"),
                            200, {"--shard", "1/2"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"atlas", "merge", dir.file("part-0"), dir.file("part-1"), "--out", dir.file("bad")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("differ in SAEs"), std::string::npos) << r.err;
}

}  // namespace
