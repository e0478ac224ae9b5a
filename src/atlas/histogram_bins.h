#pragma once
// The atlas's fixed histogram edges, the same for every site and unit (so histograms of any scan
// merge by adding counts): sign-symmetric, four bins per octave of |x| from 2^-10 (about 0.001) to
// 2^7 = 128, a centre bin for |x| < 2^-10 and one open bin beyond ±128 on each side: 139 bins,
// 138 edges. A positive bin is [edge, next edge), a negative one (edge, next edge]. The bin of a
// float comes from its exponent and two mantissa bits: no search, no logarithm.
#include <bit>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

#if defined(__AVX512F__)
// histogram_bin of 16 floats at once.
inline __m512i histogram_bins16(__m512 x) {
  constexpr int lo = (127 - 10) << 23, hi = (127 + 7) << 23;
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i u = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  __m512i mag = _mm512_sub_epi32(_mm512_maskz_srli_epi32(0xffff, u, 21), _mm512_set1_epi32((lo >> 21) - 1));
  mag = _mm512_mask_mov_epi32(mag, _mm512_cmpge_epu32_mask(u, _mm512_set1_epi32(hi)), _mm512_set1_epi32(kHistogramCentre));
  mag = _mm512_maskz_mov_epi32(_mm512_cmpge_epu32_mask(u, _mm512_set1_epi32(lo)), mag);
  const __m512i centre = _mm512_set1_epi32(kHistogramCentre);
  const __mmask16 negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
  return _mm512_mask_sub_epi32(_mm512_add_epi32(centre, mag), negative, centre, mag);
}
#endif

// The 138 edges: edges[b] lies between bin b and bin b + 1.
std::vector<double> histogram_edges();

}  // namespace nt
