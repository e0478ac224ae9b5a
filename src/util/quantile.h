#pragma once
// Order statistics over a handful of values, shared by the analysis (baseline percentiles, the
// z-score floor) and the steering controls.
#include <vector>

namespace nt {

// Linear-interpolated quantile, numpy's default ("linear"); q in [0, 1]. Sorts a copy: the
// caller's values keep their order. 0 for no values.
double quantile(std::vector<double> values, double q);

// Where x falls among the values, in %: those below x count fully, those equal to x count half
// (the "mean" kind of percentile rank, scipy.stats.percentileofscore(kind="mean")). 0 for no values.
double percent_rank(const std::vector<double>& values, double x);

}  // namespace nt
