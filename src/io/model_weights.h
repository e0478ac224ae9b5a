#pragma once
// The tensors of a Hugging Face model folder: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json`. Large float32 tensors are used in place from the memory map (a
// weight matrix is read once, into its own converted copy, and then released); small ones (norms,
// biases) are copied, so that no step reads the map after loading; F16 and BF16 tensors are
// converted to float32 once, when first asked for. Embeddings are read a row at a time from the
// file (RowTable).
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/row_table.h"
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
  // Tensor `name` (same lookup and checks as get(), two dimensions) for reading one row at a time.
  // Not counted in bytes_used(): a step reads only the rows of its tokens or positions.
  RowTable row_table(const std::string& name, const std::vector<int64_t>& shape);
  // Tells the loader that `p` (returned by get()) will not be read again: a float32 copy is
  // freed, and the files' mapped pages are dropped from this process (they stay in the page
  // cache). Called once a weight matrix has its own converted copy.
  void release(const float* p);
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
  const Entry& checked(const std::string& name, const std::vector<int64_t>& shape) const;
  void drop_mapped_pages() const;

  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> entries_;
  std::deque<std::vector<float>> converted_;  // a released one is left empty
  size_t bytes_used_ = 0;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[50257, 64]"

}  // namespace nt
