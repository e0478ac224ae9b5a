#include "model/kv_cache.h"

#include <string>

#include "util/error.h"
#include "util/populate_pages.h"

namespace nt {

void KVCache::open(int seq, int capacity) {
  if (seq < 0) throw Error("KVCache: negative sequence id");
  if (static_cast<size_t>(seq) >= blocks_.size()) blocks_.resize(static_cast<size_t>(seq) + 1);
  auto& b = blocks_[static_cast<size_t>(seq)];
  if (b) throw Error("KVCache: sequence " + std::to_string(seq) + " is already open");
  b = std::make_unique<Block>();
  b->capacity = capacity;
  const size_t n = static_cast<size_t>(config_.n_layer) * config_.n_kv_head * capacity * config_.head_dim;
  // Not zeroed: attention writes every position before it reads it.
  b->k.reset(new float[n]);
  b->v.reset(new float[n]);
  b->floats = n;
  // Faulted in now, one call each: left to fault on first write, a batch-45 decode took a few
  // hundred page faults per step, and its mean step time was 92 ms instead of 60 ms.
  populate_pages(b->k.get(), n * sizeof(float), /*for_write=*/true);
  populate_pages(b->v.get(), n * sizeof(float), /*for_write=*/true);
}

void KVCache::close(int seq) {
  if (seq >= 0 && static_cast<size_t>(seq) < blocks_.size()) blocks_[static_cast<size_t>(seq)].reset();
}

bool KVCache::is_open(int seq) const {
  return seq >= 0 && static_cast<size_t>(seq) < blocks_.size() && blocks_[static_cast<size_t>(seq)];
}

KVCache::Block& KVCache::block(int seq) {
  if (!is_open(seq)) throw Error("KVCache: sequence " + std::to_string(seq) + " is not open");
  return *blocks_[static_cast<size_t>(seq)];
}

int KVCache::capacity(int seq) const { return is_open(seq) ? blocks_[static_cast<size_t>(seq)]->capacity : 0; }

float* KVCache::k(int seq, int layer) {
  Block& b = block(seq);
  return b.k.get() + static_cast<size_t>(layer) * config_.n_kv_head * b.capacity * config_.head_dim;
}

float* KVCache::v(int seq, int layer) {
  Block& b = block(seq);
  return b.v.get() + static_cast<size_t>(layer) * config_.n_kv_head * b.capacity * config_.head_dim;
}

size_t KVCache::bytes() const {
  size_t total = 0;
  for (const auto& b : blocks_)
    if (b) total += 2 * b->floats * sizeof(float);
  return total;
}

}  // namespace nt
