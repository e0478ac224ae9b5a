#include "trace/token_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nt {

void TokenStats::reset(size_t n) {
  count = 0;
  sum.assign(n, 0.0);
  sumsq.assign(n, 0.0);
  sumabs.assign(n, 0.0);
  max.assign(n, -std::numeric_limits<float>::infinity());
  min.assign(n, std::numeric_limits<float>::infinity());
}

void TokenStats::add(size_t offset, const float* x, int width) {
  double* s = sum.data() + offset;
  double* sq = sumsq.data() + offset;
  double* sa = sumabs.data() + offset;
  float* mx = max.data() + offset;
  float* mn = min.data() + offset;
  for (int i = 0; i < width; ++i) {
    const double v = x[i];
    s[i] += v;
    sq[i] += v * v;
    sa[i] += std::fabs(v);
    mx[i] = std::max(mx[i], x[i]);
    mn[i] = std::min(mn[i], x[i]);
  }
}

void TokenStats::merge(const TokenStats& o) {
  count += o.count;
  for (size_t i = 0; i < size(); ++i) {
    sum[i] += o.sum[i];
    sumsq[i] += o.sumsq[i];
    sumabs[i] += o.sumabs[i];
    max[i] = std::max(max[i], o.max[i]);
    min[i] = std::min(min[i], o.min[i]);
  }
}

double TokenStats::std(size_t i) const {
  if (count < 2) return 0.0;
  const double m = sum[i] / count;
  return std::sqrt(std::max(0.0, sumsq[i] / count - m * m));
}

}  // namespace nt
