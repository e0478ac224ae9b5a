// Reduced-precision weights (--weights bf16|int8): the Matrix storage and kernels against an exact
// reference, the fixtures' goldens within stated tolerances, tracing that finds the same neurons,
// the thread pool the kernels run on, and the CLI flag. f32 stays bit-identical to the BLAS path
// (test_model_goldens checks it at 1e-5).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>

#include "analysis/consistency.h"
#include "io/safetensors.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/weight_matrix.h"
#include "runtime/session.h"
#include "test_support.h"
#include "trace/trace_run.h"
#include "util/error.h"
#include "util/thread_pool.h"

using namespace nt;
using nt::test::shared_path;

namespace {

// ---- Formats and bf16 rounding ---------------------------------------------------------------

TEST(WeightFormat, ParseAndName) {
  EXPECT_EQ(parse_weight_format("f32"), WeightFormat::F32);
  EXPECT_EQ(parse_weight_format("bf16"), WeightFormat::BF16);
  EXPECT_EQ(parse_weight_format("int8"), WeightFormat::Int8);
  EXPECT_STREQ(weight_format_name(WeightFormat::BF16), "bf16");
  try {
    parse_weight_format("fp16");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown weight format 'fp16'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(default_weight_format(), WeightFormat::F32);  // the library's default
}

TEST(WeightFormat, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(float_to_bf16(-2.5f)), -2.5f);
  auto from_bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  };
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie, even below: down
  EXPECT_EQ(float_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie, odd below: up
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808001u)), 0x3f81);  // above the tie: up
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(INFINITY))));
}

// ---- Thread pool -------------------------------------------------------------------------------

TEST(ThreadPool, EveryItemExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (size_t n : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}}) {
      for (size_t grain : {size_t{1}, size_t{3}, size_t{100}}) {
        std::vector<std::atomic<int>> hits(n);
        for (int rep = 0; rep < 20; ++rep)
          pool.parallel_for(n, grain, [&](size_t b, size_t e) {
            ASSERT_LE(e - b, grain);
            for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
          });
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 20) << threads << " " << n << " " << grain;
      }
    }
  }
}

TEST(ThreadPool, NestedCallsRunInlineAndExceptionsPropagate) {
  ThreadPool pool(3);
  std::atomic<int> inner{0};
  pool.parallel_for(8, 1, [&](size_t, size_t) {
    pool.parallel_for(10, 2, [&](size_t b, size_t e) { inner.fetch_add(static_cast<int>(e - b)); });
  });
  EXPECT_EQ(inner.load(), 80);
  EXPECT_THROW(pool.parallel_for(100, 1,
                                 [&](size_t b, size_t) {
                                   if (b == 37) throw std::runtime_error("item 37");
                                 }),
               std::runtime_error);
  std::atomic<int> after{0};
  pool.parallel_for(100, 1, [&](size_t, size_t) { after.fetch_add(1); });  // still usable
  EXPECT_EQ(after.load(), 100);
}

// ---- Matrix and linear() -------------------------------------------------------------------

// The stored weight W[o][i] as the kernels see it (dequantized).
double stored_weight(const Matrix& m, int o, int i) { return m.weight(o, i); }

// Checkpoint weight W[o][i] from the float32 source in `layout`.
float source_weight(const std::vector<float>& w, WeightLayout layout, int in, int out, int o, int i) {
  return layout == WeightLayout::OutIn ? w[static_cast<size_t>(o) * in + i] : w[static_cast<size_t>(i) * out + o];
}

struct LinearCase {
  WeightFormat format;
  WeightLayout layout;
  int in, out;
};
void PrintTo(const LinearCase& c, std::ostream* os) {
  *os << weight_format_name(c.format) << (c.layout == WeightLayout::OutIn ? " out-in " : " in-out ") << c.in << "x"
      << c.out;
}

class MatrixLinear : public ::testing::TestWithParam<LinearCase> {};

// Row counts that exercise every tile shape of the kernel (1-6 rows, the two-panel tiles of steps
// of up to 4 rows, rows split into tiles of unequal size, the prefetch of the next weight block
// from 24 rows on, several 192-row chunks), output counts with partial panels, input counts past
// one 768-input block, with and without bias:
// the result is the float32 product with the stored (rounded) weights up to float32 summation
// error, and the product with the original weights up to the format's rounding error.
TEST_P(MatrixLinear, MatchesStoredWeightsAndSourceWithinRounding) {
  const LinearCase c = GetParam();
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(c.in) * c.out), bias(static_cast<size_t>(c.out));
  for (auto& v : w) v = nd(rng) * 0.05f;
  for (auto& v : bias) v = nd(rng);
  w[3] = 0.75f;  // one large weight, so int8 rows and columns get different scales
  Matrix m(w.data(), c.in, c.out, c.layout, c.format);
  ASSERT_EQ(m.in(), c.in);
  ASSERT_EQ(m.out(), c.out);
  // The stored weights are the source's, exactly (f32) or rounded: bf16 to 8 significant bits,
  // int8 to half a scale step.
  for (int o = 0; o < c.out; ++o)
    for (int i = 0; i < c.in; ++i) {
      const double ws = stored_weight(m, o, i), w0 = source_weight(w, c.layout, c.in, c.out, o, i);
      const double bound = c.format == WeightFormat::F32    ? 0.0
                           : c.format == WeightFormat::BF16 ? std::fabs(w0) * std::ldexp(1.0, -8)
                                                            : (0.5 + 1e-5) * m.scales()[m.scales_input() ? i : o];
      ASSERT_LE(std::fabs(ws - w0), bound) << "weight " << o << "," << i;
    }
  for (int n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 24, 40, 45, 192, 193, 389}) {
    for (bool with_bias : {false, true}) {
      std::vector<float> x(static_cast<size_t>(n) * c.in), y(static_cast<size_t>(n) * c.out, NAN);
      for (auto& v : x) v = nd(rng);
      linear(x.data(), n, m, with_bias ? bias.data() : nullptr, y.data());
      for (int r = 0; r < n; ++r)
        for (int o = 0; o < c.out; ++o) {
          double ref = with_bias ? bias[static_cast<size_t>(o)] : 0.0, exact = ref, mag = std::fabs(ref), err = 0.0;
          for (int i = 0; i < c.in; ++i) {
            const double xi = x[static_cast<size_t>(r) * c.in + i];
            const double ws = stored_weight(m, o, i), w0 = source_weight(w, c.layout, c.in, c.out, o, i);
            ref += xi * ws;
            exact += xi * w0;
            mag += std::fabs(xi * ws);
            err += std::fabs(xi * (ws - w0));
          }
          const double got = y[static_cast<size_t>(r) * c.out + o];
          ASSERT_NEAR(got, ref, 1e-5 * mag + 1e-6) << "n=" << n << " row " << r << " out " << o;
          ASSERT_NEAR(got, exact, err + 1e-5 * mag + 1e-6) << "n=" << n << " row " << r << " out " << o;
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatrixLinear,
    ::testing::Values(LinearCase{WeightFormat::F32, WeightLayout::OutIn, 70, 37},
                      LinearCase{WeightFormat::F32, WeightLayout::InOut, 70, 37},
                      LinearCase{WeightFormat::F32, WeightLayout::OutIn, 64, 200},
                      LinearCase{WeightFormat::F32, WeightLayout::InOut, 33, 129},
                      LinearCase{WeightFormat::F32, WeightLayout::InOut, 1600, 130},
                      LinearCase{WeightFormat::Int8, WeightLayout::OutIn, 1600, 70},
                      LinearCase{WeightFormat::BF16, WeightLayout::InOut, 1600, 70},
                      LinearCase{WeightFormat::BF16, WeightLayout::OutIn, 70, 37},
                      LinearCase{WeightFormat::BF16, WeightLayout::InOut, 70, 37},
                      LinearCase{WeightFormat::BF16, WeightLayout::InOut, 64, 200},
                      LinearCase{WeightFormat::Int8, WeightLayout::OutIn, 70, 37},
                      LinearCase{WeightFormat::Int8, WeightLayout::InOut, 70, 37},
                      LinearCase{WeightFormat::Int8, WeightLayout::OutIn, 33, 129},
                      LinearCase{WeightFormat::BF16, WeightLayout::OutIn, 300, 9}),
    [](const auto& info) {
      const LinearCase& c = info.param;
      return std::string(weight_format_name(c.format)) + (c.layout == WeightLayout::InOut ? "_InOut_" : "_OutIn_") +
             std::to_string(c.in) + "x" + std::to_string(c.out);
    });

// Every output is one dot product computed by one thread, in a fixed order: the results do not
// depend on the pool's size (unlike a threaded BLAS).
TEST(MatrixLinearThreads, SameBitsForAnyThreadCount) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int in = 96, out = 300;
  std::vector<float> w(static_cast<size_t>(in) * out);
  for (auto& v : w) v = nd(rng);
  const int before = thread_count();
  for (auto format : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::Int8}) {
    Matrix m(w.data(), in, out, WeightLayout::InOut, format);
    for (int n : {1, 3, 6, 200}) {
      std::vector<float> x(static_cast<size_t>(n) * in);
      for (auto& v : x) v = nd(rng);
      std::vector<std::vector<float>> ys;
      for (int threads : {1, 2, 3}) {
        set_thread_count(threads);
        ys.emplace_back(static_cast<size_t>(n) * out);
        linear(x.data(), n, m, nullptr, ys.back().data());
      }
      EXPECT_EQ(ys[0], ys[1]) << n;
      EXPECT_EQ(ys[0], ys[2]) << n;
    }
  }
  set_thread_count(before);
}

// The panels hold W[o][i] at [o / 64][i][o % 64] whatever the checkpoint's layout, with zeros past
// the last output.
TEST(MatrixStorage, PanelLayout) {
  const int in = 5, out = 70;
  std::vector<float> w(static_cast<size_t>(in) * out);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  for (auto layout : {WeightLayout::InOut, WeightLayout::OutIn}) {
    const Matrix m(w.data(), in, out, layout);
    ASSERT_EQ(m.panels(), 2);
    for (int o = 0; o < 2 * kPanel; ++o)
      for (int i = 0; i < in; ++i) {
        const float got = m.f32()[(static_cast<size_t>(o / kPanel) * in + i) * kPanel + o % kPanel];
        EXPECT_EQ(got, o < out ? source_weight(w, layout, in, out, o, i) : 0.0f) << o << "," << i;
      }
  }
}

TEST(MatrixStorage, BytesPerFormat) {
  std::vector<float> w(768 * 96, 0.01f);
  Matrix f(w.data(), 768, 96, WeightLayout::InOut);
  Matrix b(w.data(), 768, 96, WeightLayout::InOut, WeightFormat::BF16);
  Matrix q(w.data(), 768, 96, WeightLayout::InOut, WeightFormat::Int8);
  Matrix q2(w.data(), 768, 96, WeightLayout::OutIn, WeightFormat::Int8);
  // 96 outputs take two 64-output panels.
  EXPECT_EQ(f.bytes(), 768u * 128 * 4);
  EXPECT_EQ(b.bytes(), 768u * 128 * 2);
  EXPECT_EQ(q.bytes(), 768u * 128 + 768 * 4);  // scales per input row
  EXPECT_EQ(q2.bytes(), 768u * 128 + 96 * 4);  // scales per output row
  EXPECT_TRUE(q.scales_input());
  EXPECT_FALSE(q2.scales_input());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.bf16()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q.i8()) % 64, 0u);
}

// ---- Fixture models against the float32 goldens ---------------------------------------------

// Measured (AMD EPYC with AVX-512; the results do not depend on the thread count), largest
// absolute difference from the float32 goldens over the four golden prompts (logits: every position x vocabulary entry; mlp.hook_post: every layer, position
// and neuron):
//
//   model       format   logits    mlp.hook_post
//   gpt2-tiny   bf16     0.00278   0.00103
//   gpt2-tiny   int8     0.0108    0.00394
//   llama-tiny  bf16     0.00288   0.000546
//   llama-tiny  int8     0.00884   0.00123
//   pythia-tiny bf16     0.0166    0.0087
//   pythia-tiny int8     0.0596    0.0433
//   gemma2-tiny bf16     0.171     0.0539
//   gemma2-tiny int8     0.58      0.218
//
// For scale, the goldens' logits lie within +-0.93 (gpt2-tiny), +-0.74 (llama-tiny), +-4.6
// (pythia-tiny) and +-8.9 (gemma2-tiny, whose weights are ~N(0, 1/fan_in), not 0.02). The
// tolerances are about 3x the measured differences; the test prints the measured figures.
struct GoldenCase {
  std::string model;
  WeightFormat format;
  float logits_tol, mlp_post_tol;
};
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.model << " " << weight_format_name(c.format); }

class FormatGoldens : public ::testing::TestWithParam<GoldenCase> {};

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST_P(FormatGoldens, LogitsAndMlpPostWithinTolerance) {
  const GoldenCase& gc = GetParam();
  const std::string dir = shared_path("fixtures/models/" + gc.model);
  auto model = load_model(dir, gc.format);
  const ModelConfig& c = model->config();
  std::ifstream in(dir + "/goldens/goldens.json");
  const auto goldens = nlohmann::json::parse(in);
  float worst_logits = 0.0f, worst_mlp = 0.0f, span = 0.0f;
  for (const auto& p : goldens["prompts"]) {
    SafetensorsFile golden(dir + "/goldens/" + p["file"].get<std::string>());
    std::vector<int> ids;
    for (int64_t id : golden.read_i64(golden.get("input_ids"))) ids.push_back(static_cast<int>(id));
    const size_t T = ids.size();
    Hooks hooks(c);
    std::vector<std::vector<float>> mlp(static_cast<size_t>(c.n_layer));
    for (int l = 0; l < c.n_layer; ++l)
      hooks.add({HookSite::MlpPost, l}, [&mlp, l](const HookContext& ctx, float* acts) {
        mlp[static_cast<size_t>(l)].assign(acts, acts + ctx.rows.size() * ctx.width);
      });
    KVCache cache(c);
    cache.open(0, static_cast<int>(T));
    StepBatch batch;
    batch.tokens = ids;
    for (int t = 0; t < static_cast<int>(T); ++t) {
      batch.rows.push_back({0, t, false});
      batch.logit_rows.push_back(t);
    }
    std::vector<float> logits(T * static_cast<size_t>(c.vocab_size));
    model->forward(batch, cache, &hooks, logits.data());

    const auto golden_logits = golden.read_f32(golden.get("logits"));
    ASSERT_EQ(logits.size(), golden_logits.size());
    worst_logits = std::max(worst_logits, max_abs_diff(logits.data(), golden_logits.data(), logits.size()));
    for (float v : golden_logits) span = std::max(span, std::fabs(v));
    const auto mlp_act = golden.read_f32(golden.get("mlp_act"));
    const size_t nm = T * static_cast<size_t>(c.d_mlp);
    for (int l = 0; l < c.n_layer; ++l) {
      ASSERT_EQ(mlp[static_cast<size_t>(l)].size(), nm);
      worst_mlp = std::max(worst_mlp, max_abs_diff(mlp[static_cast<size_t>(l)].data(), mlp_act.data() + l * nm, nm));
    }
  }
  std::printf("[ measured ] %s %s: max |logits - golden| = %.3g, max |mlp.hook_post - golden| = %.3g, |logits| <= %.3g\n",
              gc.model.c_str(), weight_format_name(gc.format), worst_logits, worst_mlp, span);
  EXPECT_LT(worst_logits, gc.logits_tol);
  EXPECT_LT(worst_mlp, gc.mlp_post_tol);
  EXPECT_GT(worst_logits, 0.0f);  // the format really is in use
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FormatGoldens,
                         ::testing::Values(GoldenCase{"gpt2-tiny", WeightFormat::BF16, 0.008f, 0.003f},
                                           GoldenCase{"gpt2-tiny", WeightFormat::Int8, 0.03f, 0.012f},
                                           GoldenCase{"llama-tiny", WeightFormat::BF16, 0.008f, 0.0015f},
                                           GoldenCase{"llama-tiny", WeightFormat::Int8, 0.025f, 0.0035f},
                                           GoldenCase{"pythia-tiny", WeightFormat::BF16, 0.05f, 0.025f},
                                           GoldenCase{"pythia-tiny", WeightFormat::Int8, 0.18f, 0.13f},
                                           GoldenCase{"gemma2-tiny", WeightFormat::BF16, 0.5f, 0.16f},
                                           GoldenCase{"gemma2-tiny", WeightFormat::Int8, 1.5f, 0.6f}),
                         [](const auto& info) {
                           std::string name = info.param.model + "_" + weight_format_name(info.param.format);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(FormatModels, WeightBytesShrink) {
  const std::string dir = shared_path("fixtures/models/gpt2-tiny");
  const size_t f32 = load_model(dir, WeightFormat::F32)->weight_bytes();
  const size_t bf16 = load_model(dir, WeightFormat::BF16)->weight_bytes();
  const size_t int8 = load_model(dir, WeightFormat::Int8)->weight_bytes();
  EXPECT_LT(bf16, f32 * 6 / 10);
  EXPECT_LT(int8, bf16 * 6 / 10);
}

// ---- Tracing under bf16 finds the f32 neurons -----------------------------------------------

// Concepts of the example studies, prompt positions (so both formats record the same tokens;
// generated tokens could differ), both sites, baseline subtracted: the top-5 rows of each concept's
// consistency table under bf16 are the f32 rows. On gpt2-tiny (the fixture) and gpt2-wiki (a
// trained GPT-2, ../shared/models). Measured on gpt2-wiki with all four concepts of
// examples/gpt2-wiki-study.json: bf16 top-5 and top-10 sets equal for 8/8 (concept x site), with
// subtract and zscore; int8: top-5 equal 8/8 (subtract) and 7/8 (zscore, 39 of 40 neurons shared).
// Over generated positions (24 greedy tokens) continuations can diverge, and bf16 kept 38-39 of
// 40 top-5 neurons.
class FormatTrace : public ::testing::TestWithParam<std::string> {};

TEST_P(FormatTrace, Bf16FindsTheSameTopNeurons) {
  const bool wiki = GetParam() == "gpt2-wiki";
  const std::string dir = shared_path(wiki ? "models/gpt2-wiki" : "fixtures/models/gpt2-tiny");
  std::vector<PromptGroup> groups;
  if (wiki) {
    groups = {{"war",
               {"The war began when the army", "During the battle, the soldiers", "The invasion of the country was",
                "The military forces of the empire", "The siege of the city lasted"}},
              {"music",
               {"The band released its first album", "The song was written by",
                "The orchestra performed the symphony", "She is a singer and songwriter who",
                "The album reached number one on the"}}};
  } else {
    groups = {{"tulip",
               {"Tulips are spring flowers that", "The tulip fields of the Netherlands are famous for",
                "A bouquet of red and yellow tulips", "Tulip petals open in the morning sun and",
                "Gardeners say the best soil for growing tulips is"}},
              {"vietnam",
               {"Vietnam is a country in Southeast Asia that", "The history of Vietnam includes",
                "Traveling through Vietnam, you will discover", "The Mekong Delta in southern Vietnam is known for",
                "Ha Long Bay in northern Vietnam is famous for"}}};
  }
  groups.push_back({"baseline",
                    {"The quick brown fox jumps over the lazy dog.", "She opened the window to let in fresh air.",
                     "He walked to the store in the afternoon.", "Today's weather is rainy with overcast skies.",
                     "They studied quietly in the library."}});
  RecorderOptions rec;
  rec.sites = {HookSite::MlpPost, HookSite::ResidPost};
  rec.settings = {Positions::Prompt};
  GenerationConfig gen;
  gen.max_new_tokens = 2;
  AnalysisOptions opt;  // subtract the baseline, rank by mean, top 10 per sample
  using TopSets = std::vector<std::set<std::pair<int, int>>>;  // [concept x site] -> (layer, index)
  auto top5 = [&](WeightFormat format) {
    Session session = open_session(dir, format);
    TraceRun tr = run_trace(session, groups, rec, gen);
    BaselineStats base = compute_baseline(*tr.recorder, 0, 2, tr.seqs_of(2), opt.rank_by);
    TopSets out;
    for (int g = 0; g < 2; ++g) {
      ConceptAnalysis a = analyze_concept(*tr.recorder, 0, groups[static_cast<size_t>(g)].name, tr.seqs_of(g), base, opt);
      for (const auto& site : a.sites) {
        std::set<std::pair<int, int>> s;
        for (size_t r = 0; r < std::min<size_t>(5, site.rows.size()); ++r)
          s.insert({site.rows[r].neuron.layer, site.rows[r].neuron.index});
        out.push_back(s);
      }
    }
    return out;
  };
  const TopSets f32 = top5(WeightFormat::F32), bf16 = top5(WeightFormat::BF16);
  ASSERT_EQ(f32.size(), 4u);
  ASSERT_EQ(bf16.size(), f32.size());
  for (size_t i = 0; i < f32.size(); ++i) {
    EXPECT_EQ(f32[i].size(), 5u);
    EXPECT_EQ(bf16[i], f32[i]) << "concept " << i / 2 << " site " << i % 2;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FormatTrace, ::testing::Values("gpt2-tiny", "gpt2-wiki"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- CLI ---------------------------------------------------------------------------------------

TEST(FormatCli, GlobalWeightsFlag) {
  const std::string tiny = shared_path("fixtures/models/gpt2-tiny");
  for (const char* f : {"f32", "bf16", "int8"}) {
    auto r = nt::test::run_cli({"--weights", f, "generate", "-m", tiny, "-p", "Hello, my name is", "-n", "4"});
    EXPECT_EQ(r.exit_code, 0) << f << ": " << r.err;
    EXPECT_EQ(r.out.rfind("Hello, my name is", 0), 0u) << r.out;
  }
  auto r = nt::test::run_cli({"--weights", "fp16", "generate", "-m", tiny, "-p", "Hello"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--weights"), std::string::npos) << r.err;
}

}  // namespace
