// The one quantile helper (analysis and steering): numpy's default quantile and scipy's "mean"
// percentile rank, on values worked out by hand from their documented definitions.
#include <gtest/gtest.h>

#include <vector>

#include "util/quantile.h"

namespace {

TEST(Quantile, LinearInterpolationLikeNumpy) {
  // Sorted: 1 1 2 3 4 5 6 9. q = 0.95: position 6.65, 6 + 0.65 * (9 - 6).
  const std::vector<double> v{3, 1, 4, 1, 5, 9, 2, 6};
  EXPECT_DOUBLE_EQ(nt::quantile(v, 0.95), 7.95);
  EXPECT_DOUBLE_EQ(nt::quantile(v, 0.5), 3.5);
  EXPECT_DOUBLE_EQ(nt::quantile(v, 0.05), 1.0);
  EXPECT_DOUBLE_EQ(nt::quantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(nt::quantile(v, 1.0), 9.0);
  EXPECT_DOUBLE_EQ(nt::quantile({7.0}, 0.95), 7.0);
  EXPECT_DOUBLE_EQ(nt::quantile({}, 0.5), 0.0);
}

TEST(Quantile, LeavesTheCallersValuesInOrder) {
  std::vector<double> v{3, 1, 4, 1, 5};
  const std::vector<double> before = v;
  nt::quantile(v, 0.5);
  EXPECT_EQ(v, before);
}

TEST(Quantile, PercentRankCountsTiesAsHalf) {
  EXPECT_DOUBLE_EQ(nt::percent_rank({1, 2, 3, 4}, 2.5), 50.0);
  EXPECT_DOUBLE_EQ(nt::percent_rank({1, 2, 3, 4}, 2.0), 37.5);   // 1 below, 1 tie
  EXPECT_DOUBLE_EQ(nt::percent_rank({1, 2, 2, 3}, 2.0), 50.0);   // 1 below, 2 ties
  EXPECT_DOUBLE_EQ(nt::percent_rank({0, 0, 0}, 0.0), 50.0);      // all tied: the middle
  EXPECT_DOUBLE_EQ(nt::percent_rank({1, 2, 3, 4}, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(nt::percent_rank({1, 2, 3, 4}, 9.0), 100.0);
  EXPECT_DOUBLE_EQ(nt::percent_rank({}, 1.0), 0.0);
}

}  // namespace
