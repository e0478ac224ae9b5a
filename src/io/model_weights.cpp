#include "io/model_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<std::string> safetensors_index_shards(const std::string& index) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(index));
  } catch (const nlohmann::json::exception& e) {
    throw Error(index + ": malformed JSON (" + escape_for_message(e.what()) + ")");
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(index + ": missing object 'weight_map'");
  std::set<std::string> names;
  for (auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string()) throw Error(index + ": weight_map entry " + quote_for_message(tensor) + " is not a file name");
    std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == ".." || f.empty())
      throw Error(index + ": weight_map entry " + quote_for_message(tensor) + " names an invalid file " + quote_for_message(f));
    names.insert(f);
  }
  return {names.begin(), names.end()};
}

ModelWeights::ModelWeights(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string single = model_dir + "/model.safetensors";
  const std::string index = model_dir + "/model.safetensors.index.json";
  std::vector<std::string> shard_paths;
  if (fs::exists(single)) {
    source_ = single;
    shard_paths.push_back(single);
  } else if (fs::exists(index)) {
    source_ = index;
    for (const auto& f : safetensors_index_shards(index)) shard_paths.push_back(model_dir + "/" + f);
  } else {
    throw Error(model_dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const auto& p : shard_paths) {
    if (!fs::exists(p)) throw Error(p + ": missing weights file");
    files_.push_back(std::make_unique<SafetensorsFile>(p));
    const SafetensorsFile* f = files_.back().get();
    for (const auto& info : f->tensors()) {
      auto [it, inserted] = entries_.emplace(info.name, Entry{f, &info});
      if (!inserted)
        throw Error(p + ": tensor " + quote_for_message(info.name) + " also in " + it->second.file->path());
    }
  }
}

const ModelWeights::Entry* ModelWeights::lookup(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) it = entries_.find("transformer." + name);
  return it == entries_.end() ? nullptr : &it->second;
}

bool ModelWeights::has(const std::string& name) const { return lookup(name) != nullptr; }

const ModelWeights::Entry& ModelWeights::checked(const std::string& name, const std::vector<int64_t>& shape) const {
  const Entry* e = lookup(name);
  if (!e) throw Error(source_ + ": missing tensor " + quote_for_message(name));
  if (e->info->shape != shape)
    throw Error(e->file->path() + ": tensor " + quote_for_message(e->info->name) + " has shape " +
                shape_string(e->info->shape) + ", expected " + shape_string(shape));
  const DType dt = e->info->dtype;
  if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16)
    throw Error(e->file->path() + ": tensor " + quote_for_message(e->info->name) + " has unsupported dtype " +
                dtype_name(dt) + " (supported: F32, F16, BF16)");
  return *e;
}

const float* ModelWeights::get(const std::string& name, const std::vector<int64_t>& shape) {
  // Below this size a float32 tensor is copied (norms and biases, read at every step).
  constexpr size_t kCopyBelow = size_t{1} << 20;
  const Entry& e = checked(name, shape);
  const size_t bytes = static_cast<size_t>(e.info->numel()) * sizeof(float);
  bytes_used_ += bytes;
  const uint8_t* raw = e.file->data(*e.info);
  if (e.info->dtype == DType::F32 && reinterpret_cast<uintptr_t>(raw) % alignof(float) == 0 && bytes >= kCopyBelow)
    return reinterpret_cast<const float*>(raw);
  converted_.push_back(e.file->read_f32(*e.info));
  return converted_.back().data();
}

RowTable ModelWeights::row_table(const std::string& name, const std::vector<int64_t>& shape) {
  const Entry& e = checked(name, shape);
  if (shape.size() != 2) throw Error(e.file->path() + ": tensor '" + e.info->name + "' is not a table");
  if (std::endian::native == std::endian::little)
    return RowTable(e.file->path(), e.info->dtype, e.file->file_offset(*e.info), shape[0], shape[1]);
  return RowTable(e.file->read_f32(*e.info), shape[0], shape[1]);
}

void ModelWeights::release(const float* p) {
  for (auto& v : converted_)
    if (!v.empty() && v.data() == p) {
      std::vector<float>().swap(v);
      break;
    }
  drop_mapped_pages();
}

void ModelWeights::drop_mapped_pages() const {
#ifdef MADV_DONTNEED
  // Every page of every file's data, not only the released tensor's: on Linux 6.18 a read fault
  // maps far more than the page (the large page-cache folio around it, up to 2 MiB, as far as we
  // can tell), neighbouring tensors included, and a
  // converted tensor (F16, BF16) leaves its file pages mapped too. Nothing reads the map after
  // loading (small tensors are copies, embeddings are read with pread), and a private read-only
  // mapping reads dropped pages back from the file anyway.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  for (const auto& file : files_) {
    uintptr_t b = UINTPTR_MAX, end = 0;
    for (const auto& info : file->tensors()) {
      const auto at = reinterpret_cast<uintptr_t>(file->data(info));
      b = std::min(b, at / page * page);
      end = std::max(end, at + static_cast<size_t>(info.numel()) * dtype_size(info.dtype));
    }
    if (end > b) madvise(reinterpret_cast<void*>(b), end - b, MADV_DONTNEED);
  }
#endif
}

}  // namespace nt
