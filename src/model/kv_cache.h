#pragma once
// Keys and values of every sequence in flight, per layer and KV head:
//   k(seq, layer) -> [n_kv_head][capacity][head_dim], same for v.
// A sequence gets its own block when it joins and gives it back when it finishes, so memory
// follows the sequences in flight, not the number of prompts.
#include <memory>
#include <vector>

#include "io/model_config.h"

namespace nt {

class KVCache {
 public:
  explicit KVCache(const ModelConfig& config) : config_(config) {}
  // Reserves room for `capacity` positions of sequence `seq` (which must not be in use).
  void open(int seq, int capacity);
  void close(int seq);
  bool is_open(int seq) const;
  int capacity(int seq) const;
  float* k(int seq, int layer);
  float* v(int seq, int layer);
  size_t bytes() const;  // bytes currently reserved

 private:
  struct Block {
    int capacity = 0;
    std::unique_ptr<float[]> k, v;  // [n_layer][n_kv_head][capacity][head_dim]
    size_t floats = 0;               // in each of k and v
  };
  Block& block(int seq);
  const ModelConfig& config_;
  std::vector<std::unique_ptr<Block>> blocks_;
};

}  // namespace nt
