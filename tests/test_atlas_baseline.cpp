// trace --baseline-atlas on gpt2-tiny: the scores and the consistency table against ones computed
// here from the atlas's mean and m2 arrays and the trace's raw per-token activations
// (--dump-activations); an atlas of another model, one without the traced site, a statistic the
// atlas does not hold and baseline prompts besides the atlas are refused with one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_support.h"

namespace {

using nt::test::run_cli;

std::string model_dir(const std::string& name = "gpt2-tiny") { return nt::test::shared_path("fixtures/models/" + name); }

std::vector<std::string> scan_args(const std::string& out, const std::string& model = "gpt2-tiny") {
  return {"--threads", "2", "atlas", "-m", model_dir(model), "--corpus", nt::test::shared_path("corpora/wiki-sample.jsonl"),
          "--site", "mlp.hook_post", "--context", "32", "--max-tokens", "600", "--out", out};
}

template <class T>
std::vector<T> tensor(const nt::SafetensorsFile& f, const std::string& name) {
  const nt::TensorInfo& info = f.get(name);
  std::vector<T> v(static_cast<size_t>(info.numel()));
  if (!v.empty()) std::memcpy(v.data(), f.data(info), v.size() * sizeof(T));
  return v;
}

struct AtlasBaseline {
  std::vector<double> mean, std, density;
};

// Mean, population standard deviation and density (share of tokens > 0) per unit, straight from
// the atlas's arrays.
AtlasBaseline read_atlas(const std::string& dir) {
  nt::SafetensorsFile f(dir + "/atlas.safetensors");
  AtlasBaseline a{tensor<double>(f, "mean"), tensor<double>(f, "m2"), {}};
  const double tokens = static_cast<double>(tensor<int64_t>(f, "counts")[0]);
  for (double& v : a.std) v = std::sqrt(v / tokens);
  for (int64_t n : tensor<int64_t>(f, "positive")) a.density.push_back(static_cast<double>(n) / tokens);
  return a;
}

// Per prompt, the mean over its recorded tokens of every unit (layer-major), from the dump.
std::map<int64_t, std::vector<double>> sample_means(const std::string& dump, size_t units) {
  nt::SafetensorsFile f(dump);
  const auto acts = tensor<float>(f, "mlp.hook_post");
  const auto prompt = tensor<int64_t>(f, "prompt_index");
  std::map<int64_t, std::vector<double>> sums;
  std::map<int64_t, int> counts;
  for (size_t t = 0; t < prompt.size(); ++t) {
    auto& s = sums[prompt[t]];
    s.resize(units, 0.0);
    for (size_t u = 0; u < units; ++u) s[u] += acts[t * units + u];
    ++counts[prompt[t]];
  }
  for (auto& [p, s] : sums)
    for (double& v : s) v /= counts[p];
  return sums;
}

std::vector<std::string> trace_args(const nt::test::TempDir& dir, const std::string& atlas, const std::string& normalize) {
  return {"trace", "-m", model_dir(), "--prompts", dir.file("prompts.json"), "--baseline-atlas", atlas, "--site",
          "mlp.hook_post", "--normalize", normalize, "--std-floor", "1e-12", "--per-sample", "4", "--rows", "6",
          "--max-new-tokens", "5", "--out", dir.file("trace-" + normalize), "--dump-activations",
          dir.file(normalize + ".safetensors")};
}

TEST(AtlasBaseline, ScoresAreTheSampleMeansNormalizedByTheAtlas) {
  nt::test::TempDir dir;
  nt::test::write_text(dir.file("prompts.json"),
                       R"({"prompts": ["The war began in", "Soldiers marched to the", "The army of the king"]})");
  ASSERT_EQ(run_cli(scan_args(dir.file("atlas"))).exit_code, 0);
  const AtlasBaseline atlas = read_atlas(dir.file("atlas"));
  for (const std::string normalize : {"subtract", "zscore"}) {
    const auto r = run_cli(trace_args(dir, dir.file("atlas"), normalize));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto means = sample_means(dir.file(normalize + ".safetensors"), atlas.mean.size());
    ASSERT_EQ(means.size(), 3u);
    auto score = [&](int64_t prompt, size_t u) {
      const double d = means.at(prompt)[u] - atlas.mean[u];
      return normalize == "zscore" ? d / std::max(atlas.std[u], 1e-12) : d;
    };
    const auto trace = nlohmann::json::parse(nt::test::read_text(dir.file("trace-" + normalize + "/trace.json")));
    const auto& site = trace["results"][0]["sites"][0];
    const size_t width = atlas.mean.size() / 2;  // gpt2-tiny: 2 layers
    for (const auto& s : site["samples"]) {
      const int64_t p = s["prompt_index"];
      std::vector<double> all;
      for (size_t u = 0; u < atlas.mean.size(); ++u) all.push_back(score(p, u));
      std::sort(all.rbegin(), all.rend());
      ASSERT_EQ(s["top"].size(), 4u);
      for (size_t k = 0; k < 4; ++k) {
        const auto& t = s["top"][k];
        const size_t u = t["layer"].get<size_t>() * width + t["neuron"].get<size_t>();
        EXPECT_NEAR(t["score"].get<double>(), score(p, u), 1e-4 * std::max(1.0, std::abs(score(p, u)))) << normalize;
        EXPECT_NEAR(t["score"].get<double>(), all[k], 1e-4 * std::max(1.0, std::abs(all[k]))) << normalize << " rank " << k;
      }
    }
    for (const auto& row : site["table"]) {
      const size_t u = row["layer"].get<size_t>() * width + row["neuron"].get<size_t>();
      double sum = 0;
      for (const auto& [p, m] : means) sum += score(p, u);
      EXPECT_NEAR(row["mean_score"].get<double>(), sum / 3, 1e-4 * std::max(1.0, std::abs(sum / 3))) << normalize;
      EXPECT_TRUE(row["cohens_d"].is_null()) << "an atlas has no baseline samples";
      EXPECT_NEAR(row["baseline_mean"].get<double>(), atlas.mean[u], 1e-9 * (1 + std::abs(atlas.mean[u])));
      EXPECT_NEAR(row["baseline_density"].get<double>(), atlas.density[u], 1e-12);
    }
    EXPECT_EQ(trace["config"]["baseline_atlas"], dir.file("atlas"));
  }
}

TEST(AtlasBaseline, RefusesAnotherModelAMissingSiteAndWhatTheAtlasCannotServe) {
  nt::test::TempDir dir;
  nt::test::write_text(dir.file("prompts.json"), R"({"prompts": ["The war began in"]})");
  nt::test::write_text(dir.file("baseline.json"), R"({"prompts": ["The weather is"]})");
  ASSERT_EQ(run_cli(scan_args(dir.file("pythia"), "pythia-tiny")).exit_code, 0);
  ASSERT_EQ(run_cli(scan_args(dir.file("atlas"))).exit_code, 0);
  auto refused = [&](std::vector<std::string> args, const std::string& says) {
    const auto r = run_cli(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  auto args = trace_args(dir, dir.file("pythia"), "zscore");
  refused(args, "another model");
  args = trace_args(dir, dir.file("atlas"), "zscore");
  args[8] = "hook_resid_post";
  refused(args, "has no site hook_resid_post");
  args = trace_args(dir, dir.file("atlas"), "zscore");
  args.insert(args.end(), {"--rank-by", "max"});
  refused(args, "--rank-by mean");
  args = trace_args(dir, dir.file("atlas"), "zscore");
  args.insert(args.end(), {"--baseline", dir.file("baseline.json")});
  refused(args, "not both");
}

}  // namespace
