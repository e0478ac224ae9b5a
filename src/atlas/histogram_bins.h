#pragma once
// The atlas's fixed histogram edges, the same for every site and unit (so histograms of any scan
// merge by adding counts): sign-symmetric, four bins per octave of |x| from 2^-10 (about 0.001) to
// 2^7 = 128, a centre bin for |x| < 2^-10 and one open bin beyond ±128 on each side: 139 bins,
// 138 edges. A positive bin is [edge, next edge), a negative one (edge, next edge]. The bin of a
// float comes from its exponent and two mantissa bits: no search, no logarithm.
#include <bit>
#include <cstdint>
#include <vector>

namespace nt {

inline constexpr int kHistogramBins = 139;
inline constexpr int kHistogramCentre = 69;  // the bin of |x| < 2^-10

inline int histogram_bin(float x) {
  constexpr uint32_t lo = (127u - 10u) << 23;  // bits of 2^-10
  constexpr uint32_t hi = (127u + 7u) << 23;   // bits of 2^7
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const uint32_t u = bits & 0x7fffffffu;
  const int mag = u < lo ? 0 : u >= hi ? kHistogramCentre : 1 + static_cast<int>((u >> 21) - (lo >> 21));
  return (bits >> 31) ? kHistogramCentre - mag : kHistogramCentre + mag;
}

// The 138 edges: edges[b] lies between bin b and bin b + 1.
std::vector<double> histogram_edges();

}  // namespace nt
