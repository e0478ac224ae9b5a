// Atlas concept shares on gpt2-tiny: `atlas query`, `trace --atlas` and `study` ("atlas", a
// concept's "words") against shares counted here from the atlas's unit JSON records (the tokens'
// texts split into whole words); whole-word matching ("arm" is not "army"); `study`'s
// "baseline": {"atlas"} against trace --baseline-atlas; an atlas of another model, one without the
// traced site and words without an atlas are refused with one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_support.h"

namespace {

using nlohmann::json;
using nt::test::read_text;
using nt::test::run_cli;
using nt::test::write_text;

constexpr int kWindow = 5;  // atlas query's default --window, the one trace and study use

std::string model_dir(const std::string& name = "gpt2-tiny") { return nt::test::shared_path("fixtures/models/" + name); }

std::vector<std::string> scan_args(const std::string& out, const std::string& corpus, const std::string& model = "gpt2-tiny") {
  return {"--threads", "2", "atlas", "-m", model_dir(model), "--corpus", corpus, "--site", "mlp.hook_post",
          "--context", "32", "--max-tokens", "600", "--out", out};
}

std::string wiki_sample() { return nt::test::shared_path("corpora/wiki-sample.jsonl"); }

struct Record {
  std::vector<std::string> tokens;
  int index = 0;
};

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80; }

// Whether one of `words` is a whole word of the record's text touching the tokens within kWindow
// of its token: the lower-cased text is split into maximal runs of word characters.
bool near_word(const Record& r, const std::set<std::string>& words) {
  const int n = static_cast<int>(r.tokens.size());
  const int lo = std::max(0, r.index - kWindow), hi = std::min(n - 1, r.index + kWindow);
  std::string text;
  size_t from = 0, to = 0;
  for (int i = 0; i < n; ++i) {
    if (i == lo) from = text.size();
    for (char c : r.tokens[static_cast<size_t>(i)]) text += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (i == hi) to = text.size();
  }
  for (size_t i = 0; i < text.size();) {
    if (!word_char(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && word_char(text[j])) ++j;
    if (words.count(text.substr(i, j - i)) && i < to && j > from) return true;
    i = j;
  }
  return false;
}

Record record(const json& j) { return {j["tokens"].get<std::vector<std::string>>(), j["index"].get<int>()}; }

// Every unit's top-context share ("L0N3" -> share) and the base rate over all units' samples,
// from DIR/units/mlp.hook_post/*.json.
struct Expected {
  std::map<std::string, double> share;
  double base_rate = 0;
};

Expected expected_shares(const std::string& atlas, const std::set<std::string>& words) {
  Expected e;
  int64_t sampled = 0, hits = 0;
  for (const auto& f : std::filesystem::directory_iterator(atlas + "/units/mlp.hook_post")) {
    if (f.path().extension() != ".json") continue;
    const json u = json::parse(read_text(f.path().string()));
    const auto& top = u["most_positive_activation_records"];
    int near = 0;
    for (const auto& r : top) near += near_word(record(r), words);
    e.share[f.path().stem().string()] = top.empty() ? 0.0 : static_cast<double>(near) / static_cast<double>(top.size());
    for (const auto& quantile : u["random_sample_by_quantile"])
      for (const auto& r : quantile) {
        ++sampled;
        hits += near_word(record(r), words);
      }
  }
  e.base_rate = sampled ? static_cast<double>(hits) / static_cast<double>(sampled) : 0.0;
  return e;
}

std::string label(const json& row) {
  return "L" + std::to_string(row["layer"].get<int>()) + "N" + std::to_string(row["neuron"].get<int>());
}

// CSV rows as field lists (no quoted commas in the fields read here: the first ten of atlas query's).
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::istringstream l(line);
    std::string f;
    while (std::getline(l, f, ',')) fields.push_back(f);
    rows.push_back(fields);
  }
  return rows;
}

class AtlasShare : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new nt::test::TempDir;
    const auto r = run_cli(scan_args(dir_->file("atlas"), wiki_sample()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string atlas() { return dir_->file("atlas"); }
  static nt::test::TempDir* dir_;
};

nt::test::TempDir* AtlasShare::dir_ = nullptr;

TEST_F(AtlasShare, QuerySharesAreTheTopContextsWithAWholeConceptWord) {
  const std::string csv = dir_->file("query.csv");
  const auto r = run_cli({"atlas", "query", atlas(), "--words", "The, of,War", "--csv", csv});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Expected e = expected_shares(atlas(), {"the", "of", "war"});
  ASSERT_GT(e.base_rate, 0.0);
  const auto rows = csv_rows(read_text(csv));
  ASSERT_EQ(rows.size(), e.share.size() + 1);
  int some = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::string unit = "L" + rows[i][2] + "N" + rows[i][3];
    EXPECT_NEAR(std::stod(rows[i][4]), e.share.at(unit), 1e-5) << unit;
    EXPECT_NEAR(std::stod(rows[i][5]), e.base_rate, 1e-5);
    some += e.share.at(unit) > 0;
  }
  EXPECT_GT(some, 0);
}

TEST_F(AtlasShare, AWordMatchesWholeWordsOnlyAnyCase) {
  const std::string corpus = dir_->file("army.txt");
  std::string text;
  for (int i = 0; i < 6; ++i)
    text += "The Army marched past the farm. ARMY trucks and army tents filled the armory yard.\n\n";
  write_text(corpus, text);
  auto args = scan_args(dir_->file("army"), corpus);
  ASSERT_EQ(run_cli(args).exit_code, 0);
  for (const std::string word : {"arm", "army"}) {
    const std::string csv = dir_->file(word + ".csv");
    const auto r = run_cli({"atlas", "query", dir_->file("army"), "--words", word, "--csv", csv});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto rows = csv_rows(read_text(csv));
    double most = 0;
    for (size_t i = 1; i < rows.size(); ++i) most = std::max(most, std::stod(rows[i][4]));
    if (word == "arm") {
      EXPECT_EQ(most, 0.0) << "\"arm\" is no word of the corpus (army, farm, armory are others)";
      EXPECT_EQ(std::stod(rows[1][5]), 0.0);
    } else {
      EXPECT_GT(most, 0.0);
      EXPECT_GT(std::stod(rows[1][5]), 0.0);
    }
  }
}

std::vector<std::string> trace_args(const std::string& out, const std::string& prompts) {
  return {"trace", "-m", model_dir(), "--prompts", prompts, "--site", "mlp.hook_post", "--normalize", "none",
          "--per-sample", "4", "--rows", "8", "--max-new-tokens", "5", "--out", out};
}

TEST_F(AtlasShare, TraceShowsEachReportedNeuronsShare) {
  write_text(dir_->file("war.json"), R"({"prompts": ["The war began in", "Soldiers marched to the", "The army of the king"]})");
  auto args = trace_args(dir_->file("trace"), dir_->file("war.json"));
  args.insert(args.end(), {"--atlas", atlas(), "--words", "war,army,the"});
  const auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Atlas share"), std::string::npos) << r.out;
  const Expected e = expected_shares(atlas(), {"war", "army", "the"});
  const json trace = json::parse(read_text(dir_->file("trace/trace.json")));
  const auto& result = trace["results"][0];
  EXPECT_NEAR(result["atlas_base_rate"].get<double>(), e.base_rate, 1e-9);
  const auto& table = result["sites"][0]["table"];
  ASSERT_EQ(table.size(), 8u);
  for (const auto& row : table) EXPECT_NEAR(row["atlas_share"].get<double>(), e.share.at(label(row)), 1e-9) << label(row);
  EXPECT_EQ(trace["config"]["atlas"], atlas());
  const auto csv = csv_rows(read_text(dir_->file("trace/consistency.csv")));
  ASSERT_EQ(csv[0][15], "atlas_share");
  ASSERT_EQ(csv.size(), 9u);
  for (size_t i = 1; i < csv.size(); ++i) EXPECT_NEAR(std::stod(csv[i][15]), e.share.at("L" + csv[i][4] + "N" + csv[i][5]), 1e-5);
}

TEST_F(AtlasShare, RefusesAnotherModelAMissingSiteAndWordsWithoutAnAtlas) {
  write_text(dir_->file("one.json"), R"({"prompts": ["The war began in"]})");
  ASSERT_EQ(run_cli(scan_args(dir_->file("pythia"), wiki_sample(), "pythia-tiny")).exit_code, 0);
  auto refused = [&](std::vector<std::string> extra, const std::string& says, const std::string& site = "mlp.hook_post") {
    auto args = trace_args(dir_->file("refused"), dir_->file("one.json"));
    args[6] = site;
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_cli(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  refused({"--atlas", dir_->file("pythia"), "--words", "war"}, "another model");
  refused({"--atlas", atlas(), "--words", "war"}, "has no site hook_resid_post", "hook_resid_post");
  refused({"--atlas", atlas()}, "--words: needs at least one word");
  refused({"--atlas", atlas(), "--words", "war, ,army"}, "--words: has an empty word");
  refused({"--words", "war"}, "--words: concept words need an atlas");
}

json study_config(const std::string& baseline_atlas) {
  json baseline = {{"prompts", {"The weather today is", "A recipe for bread"}}};
  if (!baseline_atlas.empty()) baseline["atlas"] = baseline_atlas;
  return {{"model", model_dir()},
          {"generation", {{"max_new_tokens", 5}}},
          {"trace", {{"sites", {"mlp.hook_post"}}, {"positions", {"generated"}}, {"normalize", "none"}, {"per_sample", 4}, {"rows", 8}}},
          {"baseline", baseline},
          {"concepts",
           {{"war", {{"prompts", {"The war began in", "The army of the king"}}, {"words", {"war", "Army"}}}},
            {"the", {"The best of the", "In the middle of the"}}}}};
}

TEST_F(AtlasShare, StudyTablesShowEachConceptsShare) {
  json cfg = study_config("");
  cfg["atlas"] = atlas();
  write_text(dir_->file("study.json"), cfg.dump());
  const auto r = run_cli({"study", dir_->file("study.json"), "--out", dir_->file("study")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::map<std::string, Expected> expected = {{"war", expected_shares(atlas(), {"war", "army"})},
                                                    {"the", expected_shares(atlas(), {"the"})}};
  const auto csv = csv_rows(read_text(dir_->file("study/consistency.csv")));
  ASSERT_EQ(csv.size(), 17u);  // two concepts x eight rows
  for (size_t i = 1; i < csv.size(); ++i) {
    const Expected& e = expected.at(csv[i][0].substr(1, csv[i][0].size() - 2));
    EXPECT_NEAR(std::stod(csv[i][15]), e.share.at("L" + csv[i][4] + "N" + csv[i][5]), 1e-5) << csv[i][0];
    EXPECT_NEAR(std::stod(csv[i][16]), e.base_rate, 1e-5) << csv[i][0];
  }
  EXPECT_NE(read_text(dir_->file("study/report.html")).find("Atlas share"), std::string::npos);
  EXPECT_NE(read_text(dir_->file("study/consistency.md")).find("| Atlas share |"), std::string::npos);
}

TEST_F(AtlasShare, StudyBaselineAtlasNormalizesAsTraceDoes) {
  json cfg = study_config(atlas());
  cfg["trace"]["normalize"] = "zscore";
  cfg["concepts"].erase("the");
  write_text(dir_->file("study-base.json"), cfg.dump());
  const auto r = run_cli({"study", "-q", dir_->file("study-base.json"), "--out", dir_->file("study-base")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  write_text(dir_->file("war2.json"), R"({"prompts": ["The war began in", "The army of the king"]})");
  auto args = trace_args(dir_->file("trace-base"), dir_->file("war2.json"));
  args[8] = "zscore";
  args.insert(args.end(), {"--baseline-atlas", atlas()});
  const auto t = run_cli(args);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const json traced = json::parse(read_text(dir_->file("trace-base/trace.json")))["results"][0]["sites"][0]["table"];
  const auto csv = csv_rows(read_text(dir_->file("study-base/consistency.csv")));
  ASSERT_EQ(csv.size(), traced.size() + 1);
  for (size_t i = 1; i < csv.size(); ++i) {
    const json& row = traced[i - 1];
    EXPECT_EQ("L" + csv[i][4] + "N" + csv[i][5], label(row)) << "rank " << i;
    const double score = row["mean_score"].get<double>();
    EXPECT_NEAR(std::stod(csv[i][8]), score, 1e-3 * std::max(1.0, std::abs(score))) << "rank " << i;
  }
  // The flag is the config key.
  cfg["baseline"].erase("atlas");
  write_text(dir_->file("study-flag.json"), cfg.dump());
  const auto f = run_cli({"study", "-q", dir_->file("study-flag.json"), "--baseline-atlas", atlas(), "--out",
                          dir_->file("study-flag")});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(read_text(dir_->file("study-flag/consistency.csv")), read_text(dir_->file("study-base/consistency.csv")));
  // An atlas holds means only.
  cfg["trace"]["rank_by"] = "max";
  write_text(dir_->file("study-max.json"), cfg.dump());
  const auto m = run_cli({"study", "-q", dir_->file("study-max.json"), "--baseline-atlas", atlas(), "--out",
                          dir_->file("study-max")});
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE(m.err.find("--rank-by mean"), std::string::npos) << m.err;
}

// "baseline": {"atlas": DIR} alone, no prompts: the same tables as with prompts beside it, and
// mean-ablation steering takes each neuron's atlas mean.
TEST_F(AtlasShare, StudyWithAnAtlasBaselineAloneSteersWithTheAtlasMeans) {
  json cfg = study_config(atlas());
  cfg["trace"]["normalize"] = "zscore";
  cfg["concepts"].erase("the");
  cfg["steer"] = {{"concept", "war"}, {"prompt", "The soldiers marched"}, {"top_n", 2}, {"mode", "mean"},
                  {"controls", 2}, {"max_new_tokens", 4}};
  write_text(dir_->file("study-both.json"), cfg.dump());
  cfg["baseline"].erase("prompts");
  write_text(dir_->file("study-atlas.json"), cfg.dump());
  for (const char* name : {"study-both", "study-atlas"}) {
    const auto r = run_cli({"study", "-q", dir_->file(std::string(name) + ".json"), "--out", dir_->file(name)});
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
  }
  EXPECT_EQ(read_text(dir_->file("study-atlas/consistency.csv")), read_text(dir_->file("study-both/consistency.csv")));
  const json iv = json::parse(read_text(dir_->file("study-atlas/steering.json")))["intervention"];
  ASSERT_EQ(iv["neurons"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const json& n = iv["neurons"][i];
    const std::string unit = "L" + std::to_string(n["layer"].get<int>()) + "N" + std::to_string(n["neuron"].get<int>());
    const double mean = json::parse(read_text(atlas() + "/units/mlp.hook_post/" + unit + ".json"))["mean"].get<double>();
    EXPECT_NEAR(iv["means"][i].get<double>(), mean, 1e-6 * (1 + std::abs(mean))) << unit;
  }
  EXPECT_EQ(iv, json::parse(read_text(dir_->file("study-both/steering.json")))["intervention"]);
  // Neither prompts nor an atlas: refused.
  cfg["baseline"] = json::object();
  write_text(dir_->file("study-none.json"), cfg.dump());
  const auto none = run_cli({"study", "-q", dir_->file("study-none.json"), "--out", dir_->file("study-none")});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("baseline needs \"prompts\" or \"atlas\""), std::string::npos) << none.err;
}

}  // namespace
