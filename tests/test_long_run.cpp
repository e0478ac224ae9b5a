// Long runs: tracing 2,000 short prompts must not grow resident memory with the number of prompts.
// The recorder keeps each finished sample (per-neuron mean, mean |x| and max for every position
// setting) in an unlinked temporary file, not in memory: here 2,000 samples x 2 settings x 2 sites
// would be ~30 MB in memory. Resident memory (/proc/self/statm) is read when the first 100 prompts
// are done and again when the last one is; the growth must stay under 8 MB.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/session.h"
#include "test_support.h"
#include "trace/trace_run.h"

#if defined(__SANITIZE_ADDRESS__)
#define NT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NT_UNDER_ASAN 1
#endif
#endif

namespace {

// Resident set size in bytes.
long resident_bytes() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace

TEST(LongRun, TracingTwoThousandPromptsKeepsResidentMemoryFlat) {
#ifdef NT_UNDER_ASAN
  // ASan's quarantine holds freed memory back (256 MB by default), so resident memory says nothing
  // about leaks there; the run is still made (smaller) for the sanitizers' sake.
  constexpr int kPrompts = 300;
#else
  constexpr int kPrompts = 2000;
#endif
  nt::Session session = nt::open_session(nt::test::shared_path("fixtures/models/gpt2-tiny"));

  static const char* subjects[] = {"The cat", "A river", "My neighbour", "The old castle", "Every morning the baker",
                                   "The war", "Tulips", "The city of Hanoi", "Our teacher", "The storm"};
  static const char* verbs[] = {"said that", "was", "looked like", "became", "will"};
  std::vector<nt::PromptGroup> groups{{"baseline", {}}, {"concept", {}}};
  for (int i = 0; i < kPrompts; ++i)
    groups[static_cast<size_t>(i % 2)].prompts.push_back(std::string(subjects[i % 10]) + " number " + std::to_string(i) +
                                                         " " + verbs[(i / 10) % 5]);

  nt::RecorderOptions options;
  options.sites = {nt::HookSite::ResidPost, nt::HookSite::MlpPost};
  options.settings = {nt::Positions::Generated, nt::Positions::Last};
  nt::GenerationConfig gen;
  gen.max_new_tokens = 4;
  gen.stop_at_eos = false;

  long after_first_100 = -1, at_100_done = 0, at_half = -1, after_last = -1;
  auto progress = [&](const nt::GenerationProgress& p) {
    if (after_first_100 < 0 && p.sequences_done >= 100) {
      after_first_100 = resident_bytes();
      at_100_done = p.sequences_done;
    }
    if (at_half < 0 && p.sequences_done >= p.sequences_total / 2) at_half = resident_bytes();
    if (p.sequences_done == p.sequences_total) after_last = resident_bytes();
  };
  nt::TraceRun run = nt::run_trace(session, groups, options, gen, nullptr, progress);

  ASSERT_EQ(run.generations.size(), static_cast<size_t>(kPrompts));
  for (const auto& g : run.generations) EXPECT_EQ(g.generated_ids.size(), 4u);
  // The samples are all there (read back from the store).
  EXPECT_EQ(run.recorder->n_tokens(0, 0), 4);
  EXPECT_EQ(run.recorder->n_tokens(1, kPrompts - 1), 1);
  EXPECT_EQ(run.recorder->sample(0, kPrompts - 1).mean.size(), run.recorder->layout().total);
  ASSERT_GT(after_first_100, 0);
  ASSERT_GT(after_last, 0);

  const double mb = 1024.0 * 1024.0;
  const double growth = static_cast<double>(after_last - after_first_100) / mb;
  std::printf("[ memory   ] resident after %ld of %d prompts: %.1f MB, after half: %.1f MB, after all: %.1f MB "
              "(growth %.2f MB)\n",
              at_100_done, kPrompts, after_first_100 / mb, at_half / mb, after_last / mb, growth);
  RecordProperty("rss_after_100_kb", std::to_string(after_first_100 / 1024));
  RecordProperty("rss_after_all_kb", std::to_string(after_last / 1024));
#ifndef NT_UNDER_ASAN
  EXPECT_LT(growth, 8.0) << "resident memory grew with the number of traced prompts";
#endif
}
