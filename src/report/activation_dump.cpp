#include "report/activation_dump.h"

#include <cstring>
#include <filesystem>

#include "io/safetensors.h"
#include "util/atomic_file.h"

namespace nt {

void write_activation_dump(const std::string& path, const Recorder& recorder) {
  const RecordedRows& rows = recorder.rows();
  const NeuronLayout& layout = recorder.layout();
  const int64_t n = static_cast<int64_t>(rows.seq.size());
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorToWrite> tensors;
  auto add_i64 = [&](const std::string& name, const std::vector<int>& v) {
    std::vector<uint8_t> bytes(v.size() * sizeof(int64_t));
    for (size_t i = 0; i < v.size(); ++i) {
      const int64_t x = v[i];
      std::memcpy(bytes.data() + i * sizeof x, &x, sizeof x);
    }
    buffers.push_back(std::move(bytes));
    tensors.push_back({name, DType::I64, {n}, buffers.back()});
  };
  add_i64("token_ids", rows.token);
  add_i64("positions", rows.pos);
  add_i64("prompt_index", rows.seq);
  for (size_t s = 0; s < layout.sites.size(); ++s) {
    const size_t per_row = layout.site_size(static_cast<int>(s));
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * per_row * sizeof(float));
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(bytes.data() + static_cast<size_t>(r) * per_row * sizeof(float),
                  rows.acts.data() + static_cast<size_t>(r) * layout.total + layout.offsets[s], per_row * sizeof(float));
    buffers.push_back(std::move(bytes));
    // A hook site: [tokens, n_layer, width]; an SAE's site (one hook point): [tokens, width].
    std::vector<int64_t> shape{n, layout.n_layers[s], layout.widths[s]};
    if (layout.sites[s].is_sae()) shape.erase(shape.begin() + 1);
    tensors.push_back({layout.sites[s].name(), DType::F32, shape, buffers.back()});
  }
  // buffers may have moved while growing: rebuild the spans now that all are in place.
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].bytes = buffers[i];
  make_directories(std::filesystem::path(path).parent_path().string());
  write_safetensors(path, tensors, {{"format", "neurontrace-activations"}});
}

}  // namespace nt
