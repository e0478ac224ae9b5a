#include "io/model_weights.h"

#include <sys/mman.h>
#include <unistd.h>

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

const float* ModelWeights::get(const std::string& name, const std::vector<int64_t>& shape) {
  const Entry* e = lookup(name);
  if (!e) throw Error(source_ + ": missing tensor " + quote_for_message(name));
  if (e->info->shape != shape)
    throw Error(e->file->path() + ": tensor " + quote_for_message(e->info->name) + " has shape " +
                shape_string(e->info->shape) + ", expected " + shape_string(shape));
  const DType dt = e->info->dtype;
  if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16)
    throw Error(e->file->path() + ": tensor " + quote_for_message(e->info->name) + " has unsupported dtype " +
                dtype_name(dt) + " (supported: F32, F16, BF16)");
  bytes_used_ += static_cast<size_t>(e->info->numel()) * sizeof(float);
  const uint8_t* raw = e->file->data(*e->info);
  if (dt == DType::F32 && reinterpret_cast<uintptr_t>(raw) % alignof(float) == 0)
    return reinterpret_cast<const float*>(raw);
  converted_.push_back(e->file->read_f32(*e->info));
  return converted_.back().data();
}

void ModelWeights::release(const float* p, bool still_read) {
  for (auto& v : converted_)
    if (!v.empty() && v.data() == p) {
      if (!still_read) std::vector<float>().swap(v);
      return;
    }
  for (const auto& [name, e] : entries_) {
    const uint8_t* raw = e.file->data(*e.info);
    if (reinterpret_cast<const uint8_t*>(p) != raw) continue;
#ifdef MADV_DONTNEED
    // A private read-only file mapping: dropped pages (including ones shared with a neighbouring
    // tensor) are read back from the file on the next access.
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t b = reinterpret_cast<uintptr_t>(raw) / page * page;
    const uintptr_t end = reinterpret_cast<uintptr_t>(raw) + static_cast<size_t>(e.info->numel()) * dtype_size(e.info->dtype);
    madvise(reinterpret_cast<void*>(b), end - b, MADV_DONTNEED);
#endif
    return;
  }
}

}  // namespace nt
