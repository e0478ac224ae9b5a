// mpirun neurontrace atlas on gpt2-tiny over the sample corpus: each rank scans one shard, the
// ranks' statistics are reduced to rank 0 by an MPI_Op and their records gathered there; the atlas
// must equal one process's scan of the same slice. Three ranks, so that the reduction combines
// more than a pair and its rank order matters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "atlas_compare.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;

// 16 documents of 60 words (about 80 tokens), so that every rank scans several documents.
std::string short_documents(const nt::test::TempDir& dir) { return nt::test::short_sample_documents(dir, 16, 60); }

std::vector<std::string> scan_args(const std::string& corpus, const std::string& out,
                                   const std::vector<std::string>& more = {}) {
  std::vector<std::string> a{"--threads", "1", "atlas", "-m", nt::test::shared_path("fixtures/models/gpt2-tiny"),
                             "--corpus", corpus, "--site", "mlp.hook_post",
                             "--site", "hook_resid_post", "--context", "32", "--top", "5", "--samples", "6",
                             "--max-tokens", "1200", "--out", out};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// Open MPI's own allocations at MPI_Init are reported as leaks by LeakSanitizer, so leak checking
// is off for the ranks (as in test_study_shards).
nt::test::CliResult mpirun_atlas(const std::vector<std::string>& args, int ranks) {
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_options = std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") + "detect_leaks=0";
  std::vector<std::string> a{"-np", std::to_string(ranks), "--oversubscribe", "--allow-run-as-root", "-x", asan_options, NT_CLI_PATH};
  a.insert(a.end(), args.begin(), args.end());
  return nt::test::run_program(NT_MPIEXEC, a);
}

TEST(AtlasMpi, ThreeRanksEqualOneProcess) {
  if (std::string(NT_MPIEXEC).empty()) GTEST_SKIP() << "built without MPI (NT_MPI off)";
  nt::test::TempDir dir;
  const std::string corpus = short_documents(dir);
  auto r = nt::test::run_cli(scan_args(corpus, dir.file("one")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = mpirun_atlas(scan_args(corpus, dir.file("mpi")), 3);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;  // rank 0 only
  EXPECT_NE(r.out.find("atlas: 3 ranks, 14 documents, 1200 tokens, "), std::string::npos) << r.out;
  nt::test::expect_same_atlas(dir.file("one/atlas.safetensors"), dir.file("mpi/atlas.safetensors"));
  for (const std::string unit : {"hook_resid_post/L0N7.json", "mlp.hook_post/L1N3.json"})
    nt::test::expect_same_unit_json(dir.file("one/units/" + unit), dir.file("mpi/units/" + unit));
  EXPECT_TRUE(fs::exists(dir.file("mpi/ranks/part-2/atlas.safetensors")));  // each rank keeps its part
  EXPECT_FALSE(fs::exists(dir.file("mpi/ranks/part-2/atlas.checkpoint.safetensors")));
}

// A rank that fails ends the whole job (MPI_Abort) with its one-line error.
TEST(AtlasMpi, FailedRankEndsTheJob) {
  if (std::string(NT_MPIEXEC).empty()) GTEST_SKIP() << "built without MPI (NT_MPI off)";
  nt::test::TempDir dir;
  auto r = mpirun_atlas(scan_args(nt::test::shared_path("corpora/wiki-sample.jsonl"), dir.file("mpi"), {"--shard", "0/2"}), 2);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("neurontrace: error: --shard: not under mpirun (the ranks already split the scan)\n"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.file("mpi/atlas.safetensors")));
}

}  // namespace
