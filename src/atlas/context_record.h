#pragma once
// One context of a unit: the whole window the model saw (its token ids, BOS included when the
// tokenizer prepends one) with the unit's activation at every token, and which token it stands
// for: document index, position in the document (BOS not counted), index in the window.
// Two bounded lists per unit keep such records under total orders, so the kept set depends only on
// the scanned tokens, never on their order or on how the scan was split:
//   top contexts: value descending, then document, then position ascending;
//   samples: a hash of (unit, document, position) ascending (a uniform sample, deterministic).
#include <cstdint>
#include <memory>
#include <vector>

namespace nt {

// A window's token ids, shared by every record taken from that window.
using WindowTokens = std::shared_ptr<const std::vector<int32_t>>;

struct ContextRecord {
  float value = 0;
  int64_t doc = 0;
  int32_t pos = 0;
  int32_t index = 0;
  uint64_t hash = 0;
  WindowTokens tokens;
  std::vector<float> acts;
};

inline bool top_before(const ContextRecord& a, const ContextRecord& b) {
  if (a.value != b.value) return a.value > b.value;
  if (a.doc != b.doc) return a.doc < b.doc;
  return a.pos < b.pos;
}

inline bool sample_before(const ContextRecord& a, const ContextRecord& b) {
  if (a.hash != b.hash) return a.hash < b.hash;
  if (a.doc != b.doc) return a.doc < b.doc;
  return a.pos < b.pos;
}

// Inserts `r` into `list` (sorted by `before`, at most `capacity` long) when it belongs there;
// a record equal to one already kept (same document and position) is not added twice. The
// activations of a record pushed out go to `evicted` when given (a buffer for the next window).
template <class Before>
void insert_bounded(std::vector<ContextRecord>& list, ContextRecord&& r, size_t capacity, Before before,
                    std::vector<float>* evicted = nullptr) {
  auto it = list.begin();
  while (it != list.end() && before(*it, r)) ++it;
  if (it != list.end() && it->doc == r.doc && it->pos == r.pos) return;
  if (static_cast<size_t>(it - list.begin()) >= capacity) return;
  list.insert(it, std::move(r));
  if (list.size() <= capacity) return;
  if (evicted) *evicted = std::move(list.back().acts);
  list.pop_back();
}

// The per-unit hash for samples: a hash of the token's (document, position), mixed with a salt
// fixed per unit (unit_salt), cheap enough to compute for every unit at every token.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}
inline uint64_t token_hash(int64_t doc, int32_t pos) {
  return mix64((static_cast<uint64_t>(doc) << 32) ^ static_cast<uint32_t>(pos));
}
inline uint64_t unit_salt(int site, int layer, int index) {
  return mix64((static_cast<uint64_t>(site) << 48) ^ (static_cast<uint64_t>(layer) << 32) ^ static_cast<uint32_t>(index));
}
inline uint64_t sample_hash(uint64_t token, uint64_t salt) {
  uint64_t h = (token ^ salt) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 32);
}

}  // namespace nt
