// A study split over processes: `study --shard I/N` parts merged by `study merge`, and
// `mpirun -np 2 neurontrace study`, each against one process on the same study (gpt2-tiny, the
// seed study with short generations): every output file byte for byte the same. Merging parts
// that do not belong together is refused with one line naming them; a shard that died is rerun alone.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cluster/shard.h"
#include "test_support.h"
#include "util/option_error.h"

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

// Every output file under `dir`, by relative path: not the MPI ranks' parts, nor the checkpoints
// (groups/), whose group sums of squares are accumulated in the order of the decoding steps, so a
// split run may differ there in the last bits (~1e-15 relative on the GPT-2-small-shaped model).
std::map<std::string, std::string> outputs(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).generic_string();
    if (e.is_regular_file() && !rel.starts_with("ranks/") && !rel.starts_with("groups/"))
      files[rel] = read_text(e.path().string());
  }
  return files;
}

void expect_same_outputs(const std::string& expected_dir, const std::string& dir) {
  const auto expected = outputs(expected_dir), got = outputs(dir);
  ASSERT_GT(expected.size(), 10u);
  for (const auto& [name, bytes] : expected) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << name << " missing in " << dir;
    EXPECT_TRUE(it->second == bytes) << name << " differs";
  }
  EXPECT_EQ(got.size(), expected.size());
}

nt::test::CliResult run_shard(const std::string& config, int i, int n, const std::string& out,
                              const std::string& model = kTiny) {
  return run_cli({"study", config, "--model", model, "--shard", std::to_string(i) + "/" + std::to_string(n), "--out", out, "-q"});
}

nt::test::CliResult merge(const std::vector<std::string>& parts, const std::string& out) {
  std::vector<std::string> args{"study", "merge"};
  args.insert(args.end(), parts.begin(), parts.end());
  args.insert(args.end(), {"--out", out, "-q"});
  return run_cli(args);
}

// One process's outputs for the study, made once for the whole program.
class StudyShards : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir;
    config_ = small_seed_study(*tmp_);
    auto r = run_cli({"study", config_, "--model", kTiny, "--out", tmp_->file("one"), "-q"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete tmp_; }
  static std::string one() { return tmp_->file("one"); }
  static TempDir* tmp_;
  static std::string config_;
  TempDir dir_;
};
TempDir* StudyShards::tmp_ = nullptr;
std::string StudyShards::config_;

}  // namespace

TEST(Shard, ParsesIOverN) {
  EXPECT_EQ(nt::parse_shard("2/3").index, 2);
  EXPECT_EQ(nt::parse_shard("2/3").count, 3);
  for (const char* bad : {"3/3", "-1/3", "1/0", "1", "a/3", "1/3x", "/3", ""})
    EXPECT_THROW(nt::parse_shard(bad), nt::OptionError) << bad;
}

TEST(Shard, SplitsByWeightIntoContiguousRuns) {
  // Midpoints 2.5, 10, 20, 30, 40 of 45 in thirds of 15: shards 0, 0, 1, 2, 2.
  EXPECT_EQ(nt::assign_shards({5, 10, 10, 10, 10}, 3), (std::vector<int>{0, 0, 1, 2, 2}));
  EXPECT_EQ(nt::assign_shards({5, 10, 10, 10, 10}, 1), (std::vector<int>{0, 0, 0, 0, 0}));
  // More shards than items: midpoints 0.5 and 1.5 of 2 in quarters; shards 0 and 2 get nothing.
  EXPECT_EQ(nt::assign_shards({1, 1}, 4), (std::vector<int>{1, 3}));
}

TEST_F(StudyShards, ThreeShardsMergedEqualOneProcess) {
  std::vector<std::string> parts;
  std::vector<json> groups;
  for (int i = 0; i < 3; ++i) {
    parts.push_back(dir_.file("part-" + std::to_string(i)));
    auto r = run_shard(config_, i, 3, parts.back());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    groups.push_back(json::parse(read_text(parts.back() + "/part.json"))["groups"]);
  }
  // Prompt groups 5 (baseline), 10, 10, 10, 10 in contiguous runs of about 15 prompts.
  EXPECT_EQ(groups[0], json({0, 1}));
  EXPECT_EQ(groups[1], json({2}));
  EXPECT_EQ(groups[2], json({3, 4}));
  auto r = merge({parts[2], parts[0], parts[1]}, dir_.file("merged"));  // in any order
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_outputs(one(), dir_.file("merged"));
}

TEST_F(StudyShards, DeadShardIsRerunAlone) {
  const std::string p0 = dir_.file("part-0"), p1 = dir_.file("part-1");
  ASSERT_EQ(run_shard(config_, 0, 2, p0).exit_code, 0);
  ASSERT_EQ(run_shard(config_, 1, 2, p1).exit_code, 0);
  // Shard 1 (groups 3 and 4) died after its first group's checkpoint: no part.json yet.
  ASSERT_TRUE(fs::remove(p1 + "/part.json"));
  ASSERT_TRUE(fs::remove(p1 + "/groups/4-violent.safetensors"));
  auto refused = merge({p0, p1}, dir_.file("merged"));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "neurontrace: error: " + p1 + ": not a finished study shard (no part.json)\n");
  auto rerun = run_shard(config_, 1, 2, p1);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_NE(rerun.err.find("resuming " + p1 + ": 1 of 2 prompt groups already done"), std::string::npos) << rerun.err;
  auto r = merge({p0, p1}, dir_.file("merged"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_outputs(one(), dir_.file("merged"));
}

TEST_F(StudyShards, WrongPartsAreRefused) {
  auto part = [&](const std::string& name, int i, int n, const std::string& config, const std::string& model) {
    const std::string dir = dir_.file(name);
    auto r = run_shard(config, i, n, dir, model);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return dir;
  };
  const std::string a0 = part("a0", 0, 2, config_, kTiny), a1 = part("a1", 1, 2, config_, kTiny);
  const std::string b1 = part("b1", 1, 3, config_, kTiny);
  const std::string pythia = part("pythia1", 1, 2, config_, shared_path("fixtures/models/pythia-tiny"));
  TempDir other;
  const std::string longer = part("longer1", 1, 2, small_seed_study(other, 9), kTiny);
  const std::string out = dir_.file("merged");
  auto refused = [&](std::vector<std::string> parts, const std::string& message) {
    auto r = merge(parts, out);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "neurontrace: error: study merge: " + message + "\n");
    EXPECT_FALSE(fs::exists(out + "/study.json"));
  };
  refused({a0}, "missing shard 1/2 (parts given: 1)");
  refused({a0, a1, a1}, "shard 1/2 given twice (" + a1 + " and " + a1 + ")");
  refused({a0, b1}, a0 + " and " + b1 + " differ in shard count ('2' vs '3')");
  const std::string fp_a = json::parse(read_text(a0 + "/part.json"))["fingerprint"];
  const std::string fp_p = json::parse(read_text(pythia + "/part.json"))["fingerprint"];
  refused({a0, pythia}, a0 + " and " + pythia + " differ in model fingerprint ('" + fp_a + "' vs '" + fp_p + "')");
  auto r = merge({a0, longer}, out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("differ in study config"), std::string::npos) << r.err;
  auto bf16 = run_cli({"--weights", "bf16", "study", "merge", a0, a1, "--out", out});
  EXPECT_EQ(bf16.exit_code, 1);
  EXPECT_EQ(bf16.err, "neurontrace: error: study merge: the parts were made with --weights f32, this merge runs with bf16\n");
  // One shard of one is a part too (an array of one task).
  const std::string whole = part("whole", 0, 1, config_, kTiny);
  EXPECT_TRUE(fs::exists(whole + "/part.json"));
  EXPECT_FALSE(fs::exists(whole + "/study.json"));
  auto bad_shard = run_shard(config_, 2, 2, dir_.file("x"));
  EXPECT_EQ(bad_shard.exit_code, 1);
  EXPECT_EQ(bad_shard.err, "neurontrace: error: --shard: expected I/N with 0 <= I < N (got '2/2')\n");
}

// mpirun -np 2: each rank one shard, gathered to rank 0 and merged there. Open MPI's own
// allocations at MPI_Init are reported as leaks by LeakSanitizer, so leak checking is off for the
// ranks (the sanitizer build still checks everything else; the shard and merge code runs without
// MPI in the tests above, leak checks included).
nt::test::CliResult mpirun_study(const std::string& config, const std::string& out) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_options = std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") + "detect_leaks=0";
  return nt::test::run_program(NT_MPIEXEC, {"-np", "2", "--oversubscribe", "--allow-run-as-root", "-x", asan_options,
                                            NT_CLI_PATH, "study", config, "--model", kTiny, "--out", out, "-q"});
}

TEST_F(StudyShards, MpiTwoRanksEqualOneProcess) {
  if (std::string(NT_MPIEXEC).empty()) GTEST_SKIP() << "built without MPI (NT_MPI off)";
  const std::string out = dir_.file("mpi");
  auto r = mpirun_study(config_, out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  expect_same_outputs(one(), out);
  EXPECT_TRUE(fs::exists(out + "/ranks/part-1/part.json"));
}

// A rank that fails ends the whole job (MPI_Abort) with its one-line error, instead of leaving the
// other rank waiting for its part.
TEST_F(StudyShards, MpiFailedRankEndsTheJob) {
  if (std::string(NT_MPIEXEC).empty()) GTEST_SKIP() << "built without MPI (NT_MPI off)";
  auto r = mpirun_study(dir_.file("absent.json"), dir_.file("mpi"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("neurontrace: error: " + dir_.file("absent.json") + ": study config not found\n"), std::string::npos)
      << r.err;
}

// Started by a launcher as one of 2 processes that are not an MPI job of 2 ranks (here PMI_SIZE,
// MPICH's and Slurm's variable, which Open MPI does not read; a build without MPI under Open MPI's
// mpirun is the same case): refused before anything runs, instead of two copies of the whole job.
TEST(RankLaunch, ProcessesThatAreNotAnMpiJobAreRefused) {
  TempDir dir;
  ASSERT_EQ(setenv("PMI_SIZE", "2", 1), 0);
  auto r = run_cli({"study", "-q", small_seed_study(dir), "--out", dir.file("out")});
  unsetenv("PMI_SIZE");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("neurontrace: error: started as one of 2 processes (PMI_SIZE=2) that do not form an MPI job"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.file("out")));
  ASSERT_EQ(setenv("PMI_SIZE", "1", 1), 0);  // one process: nothing to refuse
  r = run_cli({"--version"});
  unsetenv("PMI_SIZE");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}
