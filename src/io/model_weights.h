#pragma once
// The tensors of a Hugging Face model folder: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json`. Float32 tensors are used in place from the memory map; F16 and
// BF16 tensors are converted to float32 once, when first asked for.
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace nt {

// The shard files a `model.safetensors.index.json` lists, each once, sorted. Throws nt::Error naming
// the index on malformed JSON or a name that is not a plain file name of the same folder.
std::vector<std::string> safetensors_index_shards(const std::string& index_path);

class ModelWeights {
 public:
  explicit ModelWeights(const std::string& model_dir);

  // The float32 values of tensor `name`, which must have exactly `shape`. Looks up `name`, then
  // "transformer." + name (GPT-2 checkpoints come both ways). Throws nt::Error naming the file and
  // tensor when it is missing or has another shape.
  const float* get(const std::string& name, const std::vector<int64_t>& shape);
  bool has(const std::string& name) const;
  // Tells the loader that `p` (returned by get()) will not be read again: a float32 copy made
  // from an F16/BF16 tensor is freed; a tensor read in place from the memory map has its pages
  // dropped from this process (the file's pages stay in the page cache, and a later read faults
  // them back in). Called once a weight matrix has its own converted copy. With `still_read`
  // (the embedding table, tied to the LM head but still read a row per token), only the pages
  // are dropped.
  void release(const float* p, bool still_read = false);
  // Where the tensors come from (the single file, or the index), for messages.
  const std::string& source() const { return source_; }
  // Bytes of float32 weights handed out so far.
  size_t bytes_used() const { return bytes_used_; }

 private:
  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  const Entry* lookup(const std::string& name) const;

  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> entries_;
  std::deque<std::vector<float>> converted_;  // a released one is left empty
  size_t bytes_used_ = 0;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[50257, 64]"

}  // namespace nt
