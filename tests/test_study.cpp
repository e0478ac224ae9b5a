// `neurontrace study`: the seed study end to end on gpt2-tiny, overlaps recomputed independently
// from the JSON tables, resuming, and config errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "test_support.h"

using nt::test::read_text;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::small_seed_study;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");

TEST(Study, SeedStudyProducesEveryArtefact) {
  TempDir tmp;
  const std::string out = tmp.file("out");
  auto r = run_cli({"study", small_seed_study(tmp), "--model", kTiny, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Most consistent tulip neurons"), std::string::npos);
  EXPECT_NE(r.out.find("Most consistent violent neurons"), std::string::npos);
  for (const char* f : {"study.json", "consistency.md", "consistency.csv", "report.html", "steering.json",
                        "overlap_last_hook_resid_post.png", "overlap_generated_hook_resid_post.png",
                        "overlap_last_hook_resid_post.csv", "overlap_generated_hook_resid_post_jaccard.csv",
                        "groups/0-baseline.safetensors", "groups/4-violent.safetensors"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  EXPECT_FALSE(fs::is_empty(out + "/neurons"));
  const std::string png = read_text(out + "/overlap_last_hook_resid_post.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");

  std::ifstream in(out + "/study.json");
  json study = json::parse(in);
  EXPECT_EQ(study["prompts"].size(), 45u);
  // Independent recomputation of the overlaps from the tables.
  for (const auto& ov : study["overlap"]) {
    const int top_n = ov["top_n"];
    std::map<std::string, std::set<std::pair<int, int>>> sets;
    for (const auto& res : study["results"]) {
      if (res["positions"] != ov["positions"]) continue;
      for (const auto& site : res["sites"]) {
        if (site["site"] != ov["site"]) continue;
        auto& s = sets[res["concept"]];
        for (size_t i = 0; i < site["table"].size() && static_cast<int>(i) < top_n; ++i)
          s.insert({site["table"][i]["layer"].get<int>(), site["table"][i]["neuron"].get<int>()});
      }
    }
    const auto& names = ov["concepts"];
    ASSERT_EQ(names.size(), 4u);
    for (size_t i = 0; i < names.size(); ++i)
      for (size_t j = 0; j < names.size(); ++j) {
        int shared = 0;
        for (const auto& x : sets[names[i]]) shared += sets[names[j]].count(x);
        EXPECT_EQ(ov["shared"][i][j].get<int>(), shared) << names[i] << " vs " << names[j];
        const double uni = sets[names[i]].size() + sets[names[j]].size() - shared;
        EXPECT_NEAR(ov["jaccard"][i][j].get<double>(), shared / uni, 1e-12);
      }
  }
  // The steering experiment of the notes: the violent concept's top 3 neurons off.
  std::ifstream sin(out + "/steering.json");
  json steering = json::parse(sin);
  EXPECT_EQ(steering["intervention"]["neurons"].size(), 3u);
  EXPECT_EQ(steering["control_sets"].size(), 4u);
  const std::string html = read_text(out + "/report.html");
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("violent"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
}

// The same study on the GPT-NeoX (Pythia) and Gemma-2 fixtures: every stage runs on them unchanged.
class StudyOnFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(StudyOnFamily, SeedStudyRunsEndToEnd) {
  TempDir tmp;
  const std::string out = tmp.file("out");
  auto r = run_cli({"study", small_seed_study(tmp), "--model", shared_path("fixtures/models/" + GetParam()), "--out",
                    out, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* f : {"study.json", "consistency.md", "report.html", "steering.json",
                        "overlap_last_hook_resid_post.png", "groups/4-violent.safetensors"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  std::ifstream in(out + "/study.json");
  json study = json::parse(in);
  EXPECT_EQ(study["prompts"].size(), 45u);
  EXPECT_NE(study.dump().find(GetParam() == "pythia-tiny" ? "gpt_neox" : "gemma2"), std::string::npos);
  std::ifstream sin(out + "/steering.json");
  json steering = json::parse(sin);
  EXPECT_EQ(steering["intervention"]["neurons"].size(), 3u);
  EXPECT_EQ(steering["control_sets"].size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StudyOnFamily, ::testing::Values("pythia-tiny", "gemma2-tiny"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

TEST(Study, ResumeSkipsFinishedGroupsAndGivesTheSameReport) {
  TempDir tmp;
  const std::string cfg = small_seed_study(tmp);
  const std::string out = tmp.file("out");
  auto r = run_cli({"study", cfg, "--model", kTiny, "--out", out, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string report = read_text(out + "/report.html");
  const json study = json::parse(read_text(out + "/study.json"));
  // As if the run had been killed before the last two concepts finished.
  fs::remove(out + "/groups/3-hanoi.safetensors");
  fs::remove(out + "/groups/4-violent.safetensors");
  fs::remove(out + "/report.html");
  r = run_cli({"study", cfg, "--model", kTiny, "--out", out, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("3 of 5 prompt groups already done"), std::string::npos) << r.err;
  EXPECT_TRUE(read_text(out + "/report.html") == report) << "report.html differs after resuming";
  // Same tokens and the same tables; scores agree to float rounding (the regenerated groups ran in
  // smaller batches, and a matrix product over fewer rows may round differently in the last bit).
  const json again = json::parse(read_text(out + "/study.json"));
  EXPECT_TRUE(again["prompts"] == study["prompts"]);
  EXPECT_TRUE(again["overlap"] == study["overlap"]);
  ASSERT_EQ(again["results"].size(), study["results"].size());
  for (size_t i = 0; i < study["results"].size(); ++i)
    for (size_t s = 0; s < study["results"][i]["sites"].size(); ++s) {
      const auto& a = study["results"][i]["sites"][s]["table"];
      const auto& b = again["results"][i]["sites"][s]["table"];
      ASSERT_EQ(a.size(), b.size());
      for (size_t r = 0; r < a.size(); ++r) {
        EXPECT_EQ(a[r]["label"], b[r]["label"]);
        EXPECT_EQ(a[r]["occurrences"], b[r]["occurrences"]);
        EXPECT_NEAR(a[r]["mean_score"].get<double>(), b[r]["mean_score"].get<double>(), 1e-5);
      }
    }
}

TEST(Study, ConfigErrors) {
  TempDir tmp;
  write_text(tmp.file("a.json"), R"({"baseline": {"prompts": ["x"]}, "concepts": {"c": ["y"]}, "tracee": {}})");
  auto r = run_cli({"study", tmp.file("a.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("a.json: unknown field 'tracee'"), std::string::npos) << r.err;
  write_text(tmp.file("b.json"), R"({"baseline": {"prompts": ["x"]}, "concepts": {"c": ["y"]}, "steer": {"concept": "d", "prompt": "z"}})");
  r = run_cli({"study", tmp.file("b.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("steer.concept 'd' is not one of the concepts"), std::string::npos) << r.err;
  write_text(tmp.file("c.json"), R"({"concepts": {"c": ["y"]}})");
  r = run_cli({"study", tmp.file("c.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("missing 'baseline'"), std::string::npos) << r.err;
  write_text(tmp.file("d.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]}, "trace": {"positions": ["first"]}})");
  r = run_cli({"study", tmp.file("d.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("unknown positions 'first'"), std::string::npos) << r.err;
  r = run_cli({"study", tmp.file("missing.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("missing.json: study config not found"), std::string::npos) << r.err;
}

// max_new_tokens 0: the prompt positions are still traced and steered from; "generated" and
// "last" give the "no tokens recorded" result instead of an error about the baseline.
TEST(Study, ZeroNewTokensTracesThePromptOnly) {
  TempDir tmp;
  json cfg = json::parse(read_text(small_seed_study(tmp)));
  cfg["generation"] = {{"max_new_tokens", 0}};
  cfg["trace"] = {{"positions", {"prompt", "generated", "last"}}};
  cfg["steer"]["positions"] = "prompt";
  cfg["steer"]["controls"] = 2;
  cfg["steer"]["max_new_tokens"] = 4;
  write_text(tmp.file("zero.json"), cfg.dump(2));
  const std::string out = tmp.file("out");
  auto r = run_cli({"study", tmp.file("zero.json"), "--model", kTiny, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("generated: 10 of 10 'tulip' samples recorded no tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("no tokens recorded"), std::string::npos);
  const json study = json::parse(read_text(out + "/study.json"));
  ASSERT_EQ(study["results"].size(), 12u);  // 3 settings x 4 concepts
  for (const auto& res : study["results"]) {
    const bool prompt = res["positions"] == "prompt";
    EXPECT_EQ(res["no_tokens_recorded"].get<bool>(), !prompt) << res["positions"];
    EXPECT_EQ(res["sites"][0]["table"].empty(), !prompt) << res["positions"];
  }
  for (const auto& p : study["prompts"]) EXPECT_TRUE(p["generated_ids"].empty());
  const json steering = json::parse(read_text(out + "/steering.json"));
  EXPECT_EQ(steering["positions"], "prompt");
  EXPECT_TRUE(fs::exists(out + "/report.html"));

  // Steering from a setting that recorded nothing: one line that says why.
  cfg["steer"].erase("positions");
  write_text(tmp.file("zero2.json"), cfg.dump(2));
  r = run_cli({"study", tmp.file("zero2.json"), "--model", kTiny, "--out", tmp.file("out2")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("has only 0 ranked neurons at positions 'generated' (no tokens recorded there"),
            std::string::npos)
      << r.err;
}

// The report says what it summarises: the sampling settings in effect, and that the control
// summary under each steered prompt is a mean over all the steering prompts.
TEST(Study, ReportStatesSamplingAndWhatTheControlCovers) {
  TempDir tmp;
  json cfg = json::parse(read_text(small_seed_study(tmp)));
  cfg["generation"] = {{"max_new_tokens", 3}, {"temperature", 0.7}, {"top_k", 5}, {"seed", 2}};
  cfg["trace"] = {{"positions", {"generated"}}};
  cfg["steer"].erase("prompt");
  cfg["steer"]["prompts"] = {"The tulip fields", "War broke out"};
  cfg["steer"]["controls"] = 2;
  write_text(tmp.file("s.json"), cfg.dump(2));
  auto r = run_cli({"study", tmp.file("s.json"), "--model", kTiny, "--out", tmp.file("out"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = read_text(tmp.file("out") + "/report.html");
  EXPECT_NE(html.find("3 new tokens, temperature 0.7, top-k 5, seed 2"), std::string::npos);
  EXPECT_NE(html.find("Means over the 2 steering prompts, against 2 random sets of 3 neurons"), std::string::npos);
}

// The study config speaks the command line's vocabulary, and its option rules are the library's.
TEST(Study, ConfigOptionNames) {
  TempDir tmp;
  write_text(tmp.file("a.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]}, "trace": {"top_k": 5}})");
  auto r = run_cli({"study", tmp.file("a.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("a.json: trace.top_k is now trace.per_sample"), std::string::npos) << r.err;
  write_text(tmp.file("b.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]}, "trace": {"per_sample": 129}})");
  r = run_cli({"study", tmp.file("b.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("b.json: trace.per_sample: 129 is larger than the number of neurons at hook_resid_post (128)"),
            std::string::npos)
      << r.err;
  write_text(tmp.file("c.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]}, "trace": {"per_sample": 0}})");
  r = run_cli({"study", tmp.file("c.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("c.json: trace.per_sample: must be positive (got 0)"), std::string::npos) << r.err;
  write_text(tmp.file("d.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]}, "generation": {"top_k": -1}})");
  r = run_cli({"study", tmp.file("d.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("d.json: generation.top_k: must be >= 0 (got -1)"), std::string::npos) << r.err;
  write_text(tmp.file("e.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]},
                                     "steer": {"concept": "c", "prompt": "z", "mode": "explode"}})");
  r = run_cli({"study", tmp.file("e.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("e.json: unknown intervention mode 'explode'"), std::string::npos) << r.err;
  write_text(tmp.file("f.json"), R"({"baseline": ["x"], "concepts": {"c": ["y"]}, "trace": {"positions": ["last"]},
                                     "steer": {"concept": "c", "prompt": "z", "positions": "generated"}})");
  r = run_cli({"study", tmp.file("f.json"), "--model", kTiny, "--out", tmp.file("o")});
  EXPECT_NE(r.err.find("f.json: steer.positions 'generated' are not traced by this study (trace.positions)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("o/groups")));  // refused before generating
}

}  // namespace
