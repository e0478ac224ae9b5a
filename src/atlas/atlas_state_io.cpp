// atlas.safetensors: the AtlasState as arrays (README "Atlas" documents the layout).
#include <cstring>
#include <map>
#include <span>
#include <tuple>

#include "atlas/atlas_state.h"
#include "atlas/histogram_bins.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

constexpr const char* kFormat = "neurontrace-atlas/1";

template <class T>
std::span<const uint8_t> bytes_of(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

// The records of every unit, flat, with their windows stored once.
struct RecordArrays {
  std::vector<int32_t> top_count, sample_count;
  std::vector<float> value;
  std::vector<int64_t> doc, hash, window_doc, window_offset{0}, acts_offset{0};
  std::vector<int32_t> pos, index, window, window_tokens;
  std::vector<float> acts;
  std::map<std::tuple<int64_t, int64_t, size_t>, int32_t> windows;

  void add(const ContextRecord& r) {
    value.push_back(r.value);
    doc.push_back(r.doc);
    pos.push_back(r.pos);
    index.push_back(r.index);
    hash.push_back(static_cast<int64_t>(r.hash));
    const auto key = std::make_tuple(r.doc, static_cast<int64_t>(r.pos) - r.index, r.tokens->size());
    auto [it, fresh] = windows.emplace(key, static_cast<int32_t>(window_doc.size()));
    if (fresh) {
      window_doc.push_back(r.doc);
      window_tokens.insert(window_tokens.end(), r.tokens->begin(), r.tokens->end());
      window_offset.push_back(static_cast<int64_t>(window_tokens.size()));
    }
    window.push_back(it->second);
    acts.insert(acts.end(), r.acts.begin(), r.acts.end());
    acts_offset.push_back(static_cast<int64_t>(acts.size()));
  }
};

}  // namespace

void save_atlas_state(const std::string& path, const AtlasState& s, const nlohmann::json& extra) {
  const size_t units = s.layout.total;
  std::vector<double> mean(units), m2(units), m3(units), m4(units);
  std::vector<int32_t> unit_site(units), unit_layer(units), unit_index(units);
  RecordArrays rec;
  for (size_t u = 0; u < units; ++u) {
    mean[u] = s.moments[u].mean;
    m2[u] = s.moments[u].m2;
    m3[u] = s.moments[u].m3;
    m4[u] = s.moments[u].m4;
    const NeuronId id = s.layout.id(u);
    unit_site[u] = id.site;
    unit_layer[u] = id.layer;
    unit_index[u] = id.index;
    rec.top_count.push_back(static_cast<int32_t>(s.top[u].size()));
    rec.sample_count.push_back(static_cast<int32_t>(s.samples[u].size()));
    for (const auto& r : s.top[u]) rec.add(r);
    for (const auto& r : s.samples[u]) rec.add(r);
  }
  const std::vector<int64_t> counts{s.tokens, s.documents};
  const std::vector<int64_t> shards(s.shards.begin(), s.shards.end());
  const std::vector<double> edges = histogram_edges();
  const int64_t n = static_cast<int64_t>(units), nr = static_cast<int64_t>(rec.value.size());
  const int64_t nw = static_cast<int64_t>(rec.window_doc.size());
  std::vector<TensorToWrite> t{
      {"counts", DType::I64, {2}, bytes_of(counts)},
      {"shards", DType::I64, {static_cast<int64_t>(shards.size())}, bytes_of(shards)},
      {"unit_site", DType::I32, {n}, bytes_of(unit_site)},
      {"unit_layer", DType::I32, {n}, bytes_of(unit_layer)},
      {"unit_index", DType::I32, {n}, bytes_of(unit_index)},
      {"mean", DType::F64, {n}, bytes_of(mean)},
      {"m2", DType::F64, {n}, bytes_of(m2)},
      {"m3", DType::F64, {n}, bytes_of(m3)},
      {"m4", DType::F64, {n}, bytes_of(m4)},
      {"min", DType::F32, {n}, bytes_of(s.min)},
      {"max", DType::F32, {n}, bytes_of(s.max)},
      {"positive", DType::I64, {n}, bytes_of(s.positive)},
      {"above", DType::I64, {n}, bytes_of(s.above)},
      {"histogram", DType::I64, {n, kHistogramBins}, bytes_of(s.histogram)},
      {"histogram_edges", DType::F64, {kHistogramBins - 1}, bytes_of(edges)},
      {"top_count", DType::I32, {n}, bytes_of(rec.top_count)},
      {"sample_count", DType::I32, {n}, bytes_of(rec.sample_count)},
      {"record_value", DType::F32, {nr}, bytes_of(rec.value)},
      {"record_doc", DType::I64, {nr}, bytes_of(rec.doc)},
      {"record_pos", DType::I32, {nr}, bytes_of(rec.pos)},
      {"record_index", DType::I32, {nr}, bytes_of(rec.index)},
      {"record_hash", DType::I64, {nr}, bytes_of(rec.hash)},
      {"record_window", DType::I32, {nr}, bytes_of(rec.window)},
      {"record_acts_offset", DType::I64, {nr + 1}, bytes_of(rec.acts_offset)},
      {"record_acts", DType::F32, {static_cast<int64_t>(rec.acts.size())}, bytes_of(rec.acts)},
      {"window_doc", DType::I64, {nw}, bytes_of(rec.window_doc)},
      {"window_offset", DType::I64, {nw + 1}, bytes_of(rec.window_offset)},
      {"window_tokens", DType::I32, {static_cast<int64_t>(rec.window_tokens.size())}, bytes_of(rec.window_tokens)},
  };
  write_safetensors(path, t,
                    {{"format", kFormat}, {"atlas", s.settings.to_json().dump()}, {"extra", extra.dump()}});
}

namespace {

template <class T>
std::vector<T> read_array(const SafetensorsFile& f, const std::string& name, DType dtype, int64_t numel) {
  const TensorInfo& info = f.get(name);
  if (info.dtype != dtype || info.numel() != numel)
    throw Error(quote_for_message(f.path(), 300) + ": tensor '" + name + "' has the wrong type or size for this atlas");
  std::vector<T> v(static_cast<size_t>(numel));
  if (numel > 0) std::memcpy(v.data(), f.data(info), v.size() * sizeof(T));
  return v;
}

nlohmann::json metadata_json(const SafetensorsFile& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  nlohmann::json j = it == f.metadata().end() ? nlohmann::json() : nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || j.is_null()) throw Error(quote_for_message(f.path(), 300) + ": metadata '" + key + "' missing or not JSON");
  return j;
}

void check_format(const SafetensorsFile& f) {
  const auto it = f.metadata().find("format");
  if (it == f.metadata().end() || it->second != kFormat)
    throw Error(quote_for_message(f.path(), 300) + ": not an atlas state (" + kFormat + ")");
}

}  // namespace

AtlasSettings read_atlas_settings(const std::string& path) {
  SafetensorsFile f(path);
  check_format(f);
  try {
    return AtlasSettings::from_json(metadata_json(f, "atlas"));
  } catch (const Error& e) {
    throw Error(quote_for_message(path, 300) + ": " + e.what());
  }
}

LoadedAtlasState load_atlas_state(const std::string& path, const ModelConfig& config) {
  SafetensorsFile f(path);
  check_format(f);
  AtlasSettings settings;
  try {
    settings = AtlasSettings::from_json(metadata_json(f, "atlas"));
  } catch (const Error& e) {
    throw Error(quote_for_message(path, 300) + ": " + e.what());
  }
  LoadedAtlasState out{AtlasState(settings, atlas_layout(settings, config)), metadata_json(f, "extra")};
  AtlasState& s = out.state;
  const int64_t n = static_cast<int64_t>(s.layout.total);
  const auto counts = read_array<int64_t>(f, "counts", DType::I64, 2);
  s.tokens = counts[0];
  s.documents = counts[1];
  const auto shards = read_array<int64_t>(f, "shards", DType::I64, f.get("shards").numel());
  s.shards.assign(shards.begin(), shards.end());
  const auto mean = read_array<double>(f, "mean", DType::F64, n), m2 = read_array<double>(f, "m2", DType::F64, n);
  const auto m3 = read_array<double>(f, "m3", DType::F64, n), m4 = read_array<double>(f, "m4", DType::F64, n);
  for (size_t u = 0; u < s.layout.total; ++u) s.moments[u] = {mean[u], m2[u], m3[u], m4[u]};
  s.min = read_array<float>(f, "min", DType::F32, n);
  s.max = read_array<float>(f, "max", DType::F32, n);
  s.positive = read_array<int64_t>(f, "positive", DType::I64, n);
  s.above = read_array<int64_t>(f, "above", DType::I64, n);
  s.histogram = read_array<int64_t>(f, "histogram", DType::I64, n * kHistogramBins);
  const auto top_count = read_array<int32_t>(f, "top_count", DType::I32, n);
  const auto sample_count = read_array<int32_t>(f, "sample_count", DType::I32, n);
  const int64_t nr = f.get("record_value").numel();
  const auto value = read_array<float>(f, "record_value", DType::F32, nr);
  const auto doc = read_array<int64_t>(f, "record_doc", DType::I64, nr);
  const auto pos = read_array<int32_t>(f, "record_pos", DType::I32, nr);
  const auto index = read_array<int32_t>(f, "record_index", DType::I32, nr);
  const auto hash = read_array<int64_t>(f, "record_hash", DType::I64, nr);
  const auto window = read_array<int32_t>(f, "record_window", DType::I32, nr);
  const auto acts_offset = read_array<int64_t>(f, "record_acts_offset", DType::I64, nr + 1);
  const auto acts = read_array<float>(f, "record_acts", DType::F32, f.get("record_acts").numel());
  const int64_t nw = f.get("window_doc").numel();
  const auto window_offset = read_array<int64_t>(f, "window_offset", DType::I64, nw + 1);
  const auto window_tokens = read_array<int32_t>(f, "window_tokens", DType::I32, f.get("window_tokens").numel());
  const auto bad = [&](const std::string& what) { return Error(quote_for_message(path, 300) + ": " + what); };
  std::vector<WindowTokens> shared(static_cast<size_t>(nw));  // one copy per window, as in a scan
  size_t r = 0;
  for (size_t u = 0; u < s.layout.total; ++u) {
    if (top_count[u] < 0 || top_count[u] > s.settings.top_k || sample_count[u] < 0 || sample_count[u] > s.settings.samples)
      throw bad("record counts out of range");
    for (int k = 0; k < top_count[u] + sample_count[u]; ++k, ++r) {
      if (static_cast<int64_t>(r) >= nr) throw bad("fewer records than the counts say");
      const int32_t w = window[r];
      if (w < 0 || w >= nw) throw bad("record window out of range");
      const int64_t t0 = window_offset[static_cast<size_t>(w)], t1 = window_offset[static_cast<size_t>(w) + 1];
      const int64_t a0 = acts_offset[r], a1 = acts_offset[r + 1];
      if (t0 < 0 || t1 < t0 || t1 > static_cast<int64_t>(window_tokens.size()) || a0 < 0 || a1 - a0 != t1 - t0 ||
          a1 > static_cast<int64_t>(acts.size()) || index[r] < 0 || index[r] >= t1 - t0)
        throw bad("record offsets out of range");
      auto& tokens = shared[static_cast<size_t>(w)];
      if (!tokens) tokens = std::make_shared<const std::vector<int32_t>>(window_tokens.begin() + t0, window_tokens.begin() + t1);
      ContextRecord rec{value[r], doc[r], pos[r], index[r], static_cast<uint64_t>(hash[r]), tokens,
                        {acts.begin() + a0, acts.begin() + a1}};
      (k < top_count[u] ? s.top[u] : s.samples[u]).push_back(std::move(rec));
    }
  }
  return out;
}

}  // namespace nt
