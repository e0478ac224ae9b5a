#include "study/checkpoint.h"

#include <cstring>
#include <fmt/format.h>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <typename T>
std::vector<T> from_bytes(const SafetensorsFile& f, const std::string& name, DType dtype, size_t count) {
  const TensorInfo& t = f.get(name);
  if (t.dtype != dtype || static_cast<size_t>(t.numel()) != count)
    throw Error(f.path() + ": tensor " + quote_for_message(name) + " has an unexpected dtype or size");
  std::vector<T> v(count);
  if (count) std::memcpy(v.data(), f.data(t), count * sizeof(T));
  return v;
}

}  // namespace

void save_group_checkpoint(const std::string& path, const std::string& key, const Recorder& rec, int group,
                           const std::vector<int>& seqs, const std::vector<GenerationResult>& generations) {
  const size_t total = rec.layout().total;
  const int64_t n = static_cast<int64_t>(seqs.size());
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorToWrite> tensors;
  auto add = [&](std::string name, DType dt, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    buffers.push_back(std::move(bytes));
    tensors.push_back({std::move(name), dt, std::move(shape), {}});
  };
  for (size_t s = 0; s < rec.options().settings.size(); ++s) {
    const std::string p = fmt::format("s{}.", s);
    std::vector<float> mean, mean_abs, max;
    std::vector<int64_t> n_tokens;
    for (int seq : seqs) {
      const SampleSummary smp = rec.sample(s, seq);
      n_tokens.push_back(smp.n_tokens);
      for (auto* dst : {&mean, &mean_abs, &max}) {
        const std::vector<float>& src = dst == &mean ? smp.mean : dst == &mean_abs ? smp.mean_abs : smp.max;
        if (src.empty()) dst->insert(dst->end(), total, 0.0f);
        else dst->insert(dst->end(), src.begin(), src.end());
      }
    }
    add(p + "mean", DType::F32, {n, static_cast<int64_t>(total)}, to_bytes(mean));
    add(p + "mean_abs", DType::F32, {n, static_cast<int64_t>(total)}, to_bytes(mean_abs));
    add(p + "max", DType::F32, {n, static_cast<int64_t>(total)}, to_bytes(max));
    add(p + "n_tokens", DType::I64, {n}, to_bytes(n_tokens));
    const TokenStats& g = rec.group(s, group);
    add(p + "group.count", DType::I64, {1}, to_bytes(std::vector<int64_t>{g.count}));
    add(p + "group.sum", DType::F64, {static_cast<int64_t>(total)}, to_bytes(g.sum));
    add(p + "group.sumsq", DType::F64, {static_cast<int64_t>(total)}, to_bytes(g.sumsq));
    add(p + "group.sumabs", DType::F64, {static_cast<int64_t>(total)}, to_bytes(g.sumabs));
    add(p + "group.max", DType::F32, {static_cast<int64_t>(total)}, to_bytes(g.max));
    add(p + "group.min", DType::F32, {static_cast<int64_t>(total)}, to_bytes(g.min));
    add(p + "group.active", DType::I64, {static_cast<int64_t>(total)}, to_bytes(g.active));
  }
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].bytes = buffers[i];
  nlohmann::json gens = nlohmann::json::array();
  for (size_t i = 0; i < seqs.size(); ++i)
    gens.push_back({{"seq", seqs[i]}, {"prompt_ids", generations[i].prompt_ids},
                    {"generated_ids", generations[i].generated_ids}, {"stop_reason", generations[i].stop_reason}});
  write_safetensors(path, tensors, {{"key", key}, {"generations", gens.dump()}});
}

std::optional<GroupCheckpoint> load_group_checkpoint(const std::string& path, const std::string& key, Recorder& rec,
                                                     int group, const std::vector<int>& seqs) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) throw Error(path + ": cannot read checkpoint (" + ec.message() + ")");
    return std::nullopt;
  }
  SafetensorsFile f(path);
  auto k = f.metadata().find("key");
  if (k == f.metadata().end() || k->second != key) return std::nullopt;
  const size_t total = rec.layout().total;
  GroupCheckpoint cp;
  cp.seqs = seqs;
  try {
    auto gens = nlohmann::json::parse(f.metadata().at("generations"));
    if (gens.size() != seqs.size()) throw Error(path + ": wrong number of generations");
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (gens[i].at("seq").get<int>() != seqs[i]) throw Error(path + ": sequences do not match the study");
      GenerationResult g;
      g.prompt_ids = gens[i].at("prompt_ids").get<std::vector<int>>();
      g.generated_ids = gens[i].at("generated_ids").get<std::vector<int>>();
      g.stop_reason = gens[i].at("stop_reason").get<std::string>();
      cp.generations.push_back(std::move(g));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": corrupt checkpoint (" + escape_for_message(e.what()) + ")");
  }
  const size_t n = seqs.size();
  for (size_t s = 0; s < rec.options().settings.size(); ++s) {
    const std::string p = fmt::format("s{}.", s);
    auto mean = from_bytes<float>(f, p + "mean", DType::F32, n * total);
    auto mean_abs = from_bytes<float>(f, p + "mean_abs", DType::F32, n * total);
    auto max = from_bytes<float>(f, p + "max", DType::F32, n * total);
    auto n_tokens = from_bytes<int64_t>(f, p + "n_tokens", DType::I64, n);
    for (size_t i = 0; i < n; ++i) {
      SampleSummary smp;
      smp.n_tokens = n_tokens[i];
      smp.mean.assign(mean.begin() + static_cast<long>(i * total), mean.begin() + static_cast<long>((i + 1) * total));
      smp.mean_abs.assign(mean_abs.begin() + static_cast<long>(i * total), mean_abs.begin() + static_cast<long>((i + 1) * total));
      smp.max.assign(max.begin() + static_cast<long>(i * total), max.begin() + static_cast<long>((i + 1) * total));
      rec.restore_sample(s, seqs[i], std::move(smp));
    }
    TokenStats g(total);
    g.count = from_bytes<int64_t>(f, p + "group.count", DType::I64, 1)[0];
    g.sum = from_bytes<double>(f, p + "group.sum", DType::F64, total);
    g.sumsq = from_bytes<double>(f, p + "group.sumsq", DType::F64, total);
    g.sumabs = from_bytes<double>(f, p + "group.sumabs", DType::F64, total);
    g.max = from_bytes<float>(f, p + "group.max", DType::F32, total);
    g.min = from_bytes<float>(f, p + "group.min", DType::F32, total);
    g.active = from_bytes<int64_t>(f, p + "group.active", DType::I64, total);
    rec.restore_group(s, group, std::move(g));
  }
  return cp;
}

}  // namespace nt
