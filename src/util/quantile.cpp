#include "util/quantile.h"

#include <algorithm>
#include <cmath>

namespace nt {

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

double percent_rank(const std::vector<double>& values, double x) {
  if (values.empty()) return 0.0;
  double below = 0.0;
  for (double y : values) below += y < x ? 1.0 : (y == x ? 0.5 : 0.0);
  return 100.0 * below / static_cast<double>(values.size());
}

}  // namespace nt
