#include "atlas/histogram_bins.h"

#include <cmath>

namespace nt {

std::vector<double> histogram_edges() {
  // Magnitude edge m (1..69): 2^(-10 + (m-1)/4) * (1 + ((m-1) % 4) / 4).
  auto mag_edge = [](int m) { return std::ldexp(1.0 + ((m - 1) % 4) / 4.0, -10 + (m - 1) / 4); };
  std::vector<double> edges(kHistogramBins - 1);
  for (int b = 0; b < kHistogramBins - 1; ++b)
    edges[static_cast<size_t>(b)] = b >= kHistogramCentre ? mag_edge(b - kHistogramCentre + 1) : -mag_edge(kHistogramCentre - b);
  return edges;
}

}  // namespace nt
