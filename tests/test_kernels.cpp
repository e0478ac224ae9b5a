// The elementwise kernels, attention and the tracing accumulator against plain references (the model goldens
// check them end to end; these check the whole input range and the batching of attention).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "io/model_config.h"
#include "model/kernels.h"
#include "model/kv_cache.h"
#include "trace/token_stats.h"
#include "util/error.h"
#include "util/thread_pool.h"

using namespace nt;

namespace {

// x from -30 to 30 in steps that hit every 16-lane tail, plus extremes.
std::vector<float> sweep() {
  std::vector<float> xs;
  for (int i = -3000; i <= 3000; ++i) xs.push_back(static_cast<float>(i) * 0.01f);
  for (float v : {-1e30f, -200.0f, -89.0f, -44.0f, 44.0f, 89.0f, 200.0f, 1e30f, 1e-30f, -1e-30f}) xs.push_back(v);
  xs.push_back(0.125f);  // 6011 values: a masked tail of 11
  return xs;
}

double gelu_ref(double v) {
  return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
}
double silu_ref(double v) { return v / (1.0 + std::exp(-v)); }

}  // namespace

TEST(Kernels, GeluTanhMatchesDoubleReference) {
  std::vector<float> x = sweep();
  const std::vector<float> x0 = x;
  gelu_tanh(x.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = gelu_ref(x0[i]);
    ASSERT_NEAR(x[i], ref, 4e-7 * std::fabs(ref) + 1e-7) << "x = " << x0[i];
  }
}

TEST(Kernels, SiluAndSiluMulMatchDoubleReference) {
  std::vector<float> x = sweep();
  const std::vector<float> x0 = x;
  silu(x.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = silu_ref(x0[i]);
    ASSERT_NEAR(x[i], ref, 4e-7 * std::fabs(ref) + 1e-7) << "x = " << x0[i];
  }
  std::vector<float> g = x0, up(x0.size());
  for (size_t i = 0; i < up.size(); ++i) up[i] = 0.5f + static_cast<float>(i % 7);
  silu_mul(g.data(), up.data(), g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double ref = silu_ref(x0[i]) * up[i];
    ASSERT_NEAR(g[i], ref, 4e-7 * std::fabs(ref) + 1e-7) << "x = " << x0[i];
  }
}

// LayerNorm and RMSNorm (sums in 8 double lanes) against a plain double computation, for widths
// with and without an 8-lane tail, and a row offset by 300 (float differences x - mean there are
// good to ~3e-5, as in any float32 LayerNorm).
TEST(Kernels, NormsMatchDoubleReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int width : {1, 7, 8, 20, 768}) {
    const int n = 3;
    std::vector<float> x(static_cast<size_t>(n) * width), w(width), b(width), y(x.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = nd(rng) + (i / width == 2 ? 300.0f : 0.0f);
    for (auto& v : w) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    const float eps = 1e-5f;
    layer_norm(x.data(), n, width, w.data(), b.data(), eps, y.data());
    for (int r = 0; r < n; ++r) {
      const float* xr = x.data() + static_cast<size_t>(r) * width;
      double mean = 0, var = 0;
      for (int i = 0; i < width; ++i) mean += xr[i];
      mean /= width;
      for (int i = 0; i < width; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      var /= width;
      for (int i = 0; i < width; ++i) {
        const double want = (xr[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
        ASSERT_NEAR(y[static_cast<size_t>(r) * width + i], want, 1e-4 * (1 + std::fabs(want)))
            << "layer_norm width " << width << " row " << r << " i " << i;
      }
    }
    rms_norm(x.data(), n, width, w.data(), eps, y.data());
    for (int r = 0; r < n; ++r) {
      const float* xr = x.data() + static_cast<size_t>(r) * width;
      double ss = 0;
      for (int i = 0; i < width; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      for (int i = 0; i < width; ++i) {
        const double want = w[i] * (xr[i] / std::sqrt(ss / width + eps));
        ASSERT_NEAR(y[static_cast<size_t>(r) * width + i], want, 1e-4 * (1 + std::fabs(want)))
            << "rms_norm width " << width << " row " << r << " i " << i;
      }
    }
  }
}

// Rows of three sequences at different positions (one step mixing prefill rows, which read each
// other's keys, with decode rows, which store their own inside their task), grouped-query heads,
// head sizes with and without a 16-lane tail, up to 128 dims (vector kernel) and past it (plain loops): each output is the softmax-weighted
// sum of the values, computed here in double from the test's own copy of the keys and values, and
// the cache holds each row's key and value afterwards. The long context of sequence 3 makes the
// step large enough to be spread over the pool. Also with Gemma-2's options (another scale,
// soft-capped scores, a sliding window of the last 5 positions), at its head size 256 too.
TEST(Kernels, AttentionMatchesDoubleReference) {
  struct Shape {
    int n_head, n_kv_head, head_dim;
  };
  for (const Shape shape : {Shape{4, 2, 20}, Shape{2, 2, 64}, Shape{2, 1, 128}, Shape{2, 1, 144}, Shape{2, 1, 256}}) {
    ModelConfig c;
    c.n_layer = 2;
    c.n_head = shape.n_head;
    c.n_kv_head = shape.n_kv_head;
    c.head_dim = shape.head_dim;
    const int H = c.n_head, KVH = c.n_kv_head, hd = c.head_dim;
    KVCache cache(c);
    const int caps[4] = {40, 7, 70, 1100};
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    const int layer = 1;
    // The keys and values every position holds: [seq][kv head][pos][dim].
    std::vector<std::vector<float>> keys(4), values(4);
    for (int s = 0; s < 4; ++s) {
      cache.open(s, caps[s]);
      const size_t n = static_cast<size_t>(KVH) * caps[s] * hd;
      keys[s].resize(n);
      values[s].resize(n);
      for (size_t i = 0; i < n; ++i) {
        cache.k(s, layer)[i] = keys[s][i] = nd(rng);
        cache.v(s, layer)[i] = values[s][i] = nd(rng);
      }
    }
    std::vector<RowInfo> rows = {{0, 39, true, 1}, {1, 0, false, 2}, {1, 1, false, 3}, {1, 6, false, 4}, {2, 65, true, 5},
                                 {3, 1000, true, 6}};
    const size_t kv_dim = static_cast<size_t>(KVH) * hd;
    std::vector<float> q(rows.size() * H * hd), k(rows.size() * kv_dim), v(k.size()), out(q.size());
    for (auto& x : q) x = nd(rng);
    for (size_t r = 0; r < rows.size(); ++r)
      for (size_t i = 0; i < kv_dim; ++i) {
        const size_t at = (i / hd * caps[rows[r].seq] + rows[r].pos) * hd + i % hd;
        keys[rows[r].seq][at] = k[r * kv_dim + i] = nd(rng);
        values[rows[r].seq][at] = v[r * kv_dim + i] = nd(rng);
      }
    const int before = thread_count();
    for (const AttentionOptions opt : {AttentionOptions{}, AttentionOptions{0.3f, 5.0f, 5}}) {
      for (int threads : {1, 2, 3}) {
        set_thread_count(threads);
        attention(q.data(), 0, k.data(), v.data(), 0, rows, cache, layer, H, KVH, hd, out.data(), opt);
        for (size_t r = 0; r < rows.size(); ++r)
          for (int h = 0; h < H; ++h) {
            const int s = rows[r].seq, cap = caps[s];
            const int first = opt.window > 0 ? std::max(0, rows[r].pos - opt.window + 1) : 0;
            const int len = rows[r].pos + 1 - first;
            const float* kh = keys[s].data() + (static_cast<size_t>(h / (H / KVH)) * cap + first) * hd;
            const float* vh = values[s].data() + (static_cast<size_t>(h / (H / KVH)) * cap + first) * hd;
            std::vector<double> sc(static_cast<size_t>(len));
            double mx = -1e300, sum = 0;
            for (int t = 0; t < len; ++t) {
              double d = 0;
              for (int i = 0; i < hd; ++i) d += static_cast<double>(q[(r * H + h) * hd + i]) * kh[t * hd + i];
              sc[t] = opt.scale > 0 ? d * opt.scale : d / std::sqrt(static_cast<double>(hd));
              if (opt.softcap > 0) sc[t] = opt.softcap * std::tanh(sc[t] / opt.softcap);
              mx = std::max(mx, sc[t]);
            }
            for (auto& x : sc) sum += (x = std::exp(x - mx));
            for (int i = 0; i < hd; ++i) {
              double o = 0;
              for (int t = 0; t < len; ++t) o += sc[t] / sum * vh[t * hd + i];
              ASSERT_NEAR(out[(r * H + h) * hd + i], o, 2e-5) << "head_dim " << hd << " row " << r << " head " << h
                                                              << " threads " << threads << " window " << opt.window;
            }
          }
        for (int s = 0; s < 4; ++s)
          for (size_t i = 0; i < keys[s].size(); ++i) {
            ASSERT_EQ(cache.k(s, layer)[i], keys[s][i]) << "head_dim " << hd << " seq " << s << " key float " << i;
            ASSERT_EQ(cache.v(s, layer)[i], values[s][i]) << "head_dim " << hd << " seq " << s << " value float " << i;
          }
      }
    }
    set_thread_count(before);
    // A row past its sequence's cache is an error, not a write out of bounds.
    const std::vector<RowInfo> past = {{1, 7, false, 0}};
    EXPECT_THROW(attention(q.data(), 0, k.data(), v.data(), 0, past, cache, layer, H, KVH, hd, out.data()), Error);
  }
}

// The per-token statistics the recorder keeps (vectorised): every field against a plain double
// computation, for widths with and without a 16-lane tail and a slice at an offset.
TEST(TokenStatsAdd, MatchesPlainAccumulation) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int width : {1, 16, 37, 64}) {
    const size_t offset = 5, n = offset + static_cast<size_t>(width) + 3;
    TokenStats st(n);
    std::vector<double> sum(n, 0.0), sumsq(n, 0.0), sumabs(n, 0.0);
    std::vector<float> mx(n, -INFINITY), mn(n, INFINITY);
    for (int t = 0; t < 9; ++t) {
      std::vector<float> x(static_cast<size_t>(width));
      for (auto& v : x) v = nd(rng);
      st.add(offset, x.data(), width);
      ++st.count;
      for (int i = 0; i < width; ++i) {
        const size_t k = offset + static_cast<size_t>(i);
        sum[k] += x[i];
        sumsq[k] += static_cast<double>(x[i]) * x[i];
        sumabs[k] += std::fabs(x[i]);
        mx[k] = std::max(mx[k], x[i]);
        mn[k] = std::min(mn[k], x[i]);
      }
    }
    for (size_t k = 0; k < n; ++k) {
      EXPECT_EQ(st.sum[k], sum[k]) << width << " " << k;
      EXPECT_EQ(st.sumsq[k], sumsq[k]) << width << " " << k;
      EXPECT_EQ(st.sumabs[k], sumabs[k]) << width << " " << k;
      EXPECT_EQ(st.max[k], mx[k]) << width << " " << k;
      EXPECT_EQ(st.min[k], mn[k]) << width << " " << k;
    }
  }
}
