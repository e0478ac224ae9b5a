// Batched generation: batch composition, sampling determinism, KV cache vs full recomputation,
// interventions acting the same in both, stopping rules.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "runtime/generator.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "util/error.h"
#include "test_support.h"

using namespace nt;

namespace {

class Generation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    session_ = new Session(open_session(test::shared_path("fixtures/models/gpt2-tiny")));
  }
  static void TearDownTestSuite() { delete session_; }
  static Session* session_;

  std::vector<std::vector<int>> prompts() const {
    return session_->encode_prompts({"Hello, my name is", "The quick brown fox jumps over the lazy dog.", "Hello",
                                     "1 + 1 = 2", "In the beginning was the word, and the word was"});
  }
  std::vector<GenerationResult> run(const std::vector<std::vector<int>>& p, GenerationConfig gen,
                                    const Hooks* hooks = nullptr) {
    Generator g(*session_->model, hooks);
    return g.generate(p, gen);
  }
};
Session* Generation::session_ = nullptr;

GenerationConfig sampled() {
  GenerationConfig gen;
  gen.max_new_tokens = 12;
  gen.stop_at_eos = false;
  gen.sampling.temperature = 1.3f;
  gen.sampling.top_k = 50;
  gen.sampling.top_p = 0.95f;
  gen.sampling.seed = 1234;
  return gen;
}

TEST_F(Generation, BatchedGreedyEqualsEachPromptAlone) {
  auto p = prompts();
  GenerationConfig gen;
  gen.max_new_tokens = 15;
  gen.stop_at_eos = false;
  auto together = run(p, gen);
  for (size_t i = 0; i < p.size(); ++i) {
    auto alone = run({p[i]}, gen);
    EXPECT_EQ(together[i].generated_ids, alone[0].generated_ids) << "prompt " << i;
    EXPECT_EQ(together[i].prompt_ids, p[i]);
  }
}

TEST_F(Generation, SamplingIsReproducibleAndIndependentOfBatch) {
  auto p = prompts();
  auto a = run(p, sampled());
  auto b = run(p, sampled());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(a[i].generated_ids, b[i].generated_ids);
  // Same prompts, batch of two at a time: the per-sequence streams make no difference.
  GenerationConfig small = sampled();
  small.max_batch = 2;
  auto c = run(p, small);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(a[i].generated_ids, c[i].generated_ids) << i;
  // Nor does the step's row budget (prompts admitted one per step, or all in the first step).
  for (int rows : {1, 4096}) {
    GenerationConfig budget = sampled();
    budget.max_step_rows = rows;
    auto r = run(p, budget);
    for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(a[i].generated_ids, r[i].generated_ids) << rows << " " << i;
  }
  // Another seed gives other tokens somewhere.
  GenerationConfig other = sampled();
  other.sampling.seed = 99;
  auto d = run(p, other);
  bool differs = false;
  for (size_t i = 0; i < p.size(); ++i) differs |= d[i].generated_ids != a[i].generated_ids;
  EXPECT_TRUE(differs);
}

TEST_F(Generation, KvCacheEqualsFullRecompute) {
  auto p = prompts();
  for (GenerationConfig gen : {GenerationConfig{}, sampled()}) {
    gen.max_new_tokens = 10;
    gen.stop_at_eos = false;
    auto cached = run(p, gen);
    gen.recompute = true;
    auto full = run(p, gen);
    for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(cached[i].generated_ids, full[i].generated_ids) << i;
  }
}

// An intervention on an early layer, at prompt positions only, changes the keys and values of the
// prompt: with the KV cache it must act exactly as when everything is recomputed.
TEST_F(Generation, InterventionOnPromptPositionsSameWithAndWithoutCache) {
  auto p = prompts();
  Hooks hooks(session_->model->config());
  hooks.add({HookSite::ResidPost, 0}, [](const HookContext& ctx, float* acts) {
    for (size_t r = 0; r < ctx.rows.size(); ++r)
      if (!ctx.rows[r].generated)
        for (int d = 0; d < 16; ++d) acts[r * ctx.width + d] += 3.0f;
  });
  GenerationConfig gen;
  gen.max_new_tokens = 10;
  gen.stop_at_eos = false;
  auto plain = run(p, gen);
  auto cached = run(p, gen, &hooks);
  gen.recompute = true;
  auto full = run(p, gen, &hooks);
  bool changed = false;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(cached[i].generated_ids, full[i].generated_ids) << i;
    changed |= cached[i].generated_ids != plain[i].generated_ids;
  }
  EXPECT_TRUE(changed) << "the intervention should change some continuation";
}

TEST_F(Generation, FeedLastTokenShowsHooksEveryGeneratedToken) {
  auto p = prompts();
  Hooks hooks(session_->model->config());
  std::vector<std::vector<int>> seen(p.size());
  hooks.add({HookSite::ResidPost, 1}, [&](const HookContext& ctx, float*) {
    for (const auto& r : ctx.rows)
      if (r.generated) seen[static_cast<size_t>(r.seq)].push_back(r.pos);
  });
  GenerationConfig gen;
  gen.max_new_tokens = 7;
  gen.stop_at_eos = false;
  gen.feed_last_token = true;
  auto res = run(p, gen, &hooks);
  for (size_t i = 0; i < p.size(); ++i) {
    ASSERT_EQ(seen[i].size(), 7u) << i;
    for (int k = 0; k < 7; ++k) EXPECT_EQ(seen[i][k], static_cast<int>(p[i].size()) + k);
  }
}

TEST_F(Generation, FillsTheContextAndRefusesToGoBeyondIt) {
  const int n_ctx = session_->model->config().n_ctx;
  GenerationConfig gen;
  gen.max_new_tokens = n_ctx - 1;
  gen.stop_at_eos = false;
  auto res = run({session_->encode_prompt("Hello", 0)}, gen);
  EXPECT_EQ(static_cast<int>(res[0].generated_ids.size()) + 1, n_ctx);
  gen.max_new_tokens = n_ctx;
  try {
    run({session_->encode_prompt("Hello", 0)}, gen);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs 129 positions, more than the model's context of 128"), std::string::npos)
        << e.what();
  }
}

TEST_F(Generation, RejectsEmptyAndOverlongPrompts) {
  GenerationConfig gen;
  EXPECT_THROW(run({{}}, gen), Error);
  std::vector<int> longp(static_cast<size_t>(session_->model->config().n_ctx) + 1, 15496);
  EXPECT_THROW(run({longp}, gen), Error);
  EXPECT_THROW(session_->encode_prompt("", 3), Error);
}

}  // namespace

// Greedy decoding's argmax (vectorised) against the plain first-largest loop: lengths with and
// without a 16-lane tail, ties (the lowest id wins), the maximum in the tail, infinities, and NaNs
// (where the plain loop's answer is kept whatever it is).
TEST(Argmax, MatchesThePlainLoop) {
  auto plain = [](const std::vector<float>& v) {
    int best = 0;
    for (int i = 1; i < static_cast<int>(v.size()); ++i)
      if (v[i] > v[best]) best = i;
    return best;
  };
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> small(-3, 3);  // few distinct values: many ties
  for (int n : {1, 15, 16, 17, 100, 50257}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> v(static_cast<size_t>(n));
      for (auto& x : v) x = static_cast<float>(small(rng));
      if (trial == 1) v.back() = 10.0f;  // largest in the tail
      if (trial == 2) v[static_cast<size_t>(n / 2)] = INFINITY;
      if (trial == 3) std::fill(v.begin(), v.end(), -INFINITY);
      if (trial == 4) v[static_cast<size_t>(n / 3)] = NAN;
      if (trial == 5) v[0] = NAN;
      ASSERT_EQ(nt::argmax(v.data(), n), plain(v)) << "n " << n << " trial " << trial;
    }
  }
}
