#pragma once
// Central moments of a stream, merged pairwise (Chan, Golub and LeVeque for the mean and M2;
// Pébay 2008 for M3 and M4): the state of two disjoint parts combines into the state of their
// union without revisiting the data, in any order, up to rounding.
#include <cstdint>

namespace nt {

struct Moments {
  double mean = 0, m2 = 0, m3 = 0, m4 = 0;  // M_k = sum of (x - mean)^k
};

// `a` (over na values) becomes the moments of a's and b's values together (nb values in b).
inline void merge_moments(Moments& a, int64_t na, const Moments& b, int64_t nb) {
  if (nb == 0) return;
  if (na == 0) {
    a = b;
    return;
  }
  const double n1 = static_cast<double>(na), n2 = static_cast<double>(nb), n = n1 + n2;
  const double d = b.mean - a.mean, d2 = d * d;
  const double m2 = a.m2 + b.m2 + d2 * n1 * n2 / n;
  const double m3 = a.m3 + b.m3 + d * d2 * n1 * n2 * (n1 - n2) / (n * n) + 3.0 * d * (n1 * b.m2 - n2 * a.m2) / n;
  const double m4 = a.m4 + b.m4 + d2 * d2 * n1 * n2 * (n1 * n1 - n1 * n2 + n2 * n2) / (n * n * n) +
                    6.0 * d2 * (n1 * n1 * b.m2 + n2 * n2 * a.m2) / (n * n) + 4.0 * d * (n1 * b.m3 - n2 * a.m3) / n;
  a.mean += d * n2 / n;
  a.m2 = m2;
  a.m3 = m3;
  a.m4 = m4;
}

}  // namespace nt
