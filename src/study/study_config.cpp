#include "study/study_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <set>
#include <type_traits>

#include "steer/intervention.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

using oj = nlohmann::ordered_json;

void check_keys(const oj& j, const std::string& where, const std::set<std::string>& allowed, const std::string& path) {
  if (!j.is_object()) throw Error(path + ": " + where + " must be an object");
  for (const auto& [k, v] : j.items())
    if (!allowed.count(k)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(path + ": unknown field " + quote_for_message(k) + " in " + where + " (known: " + list + ")");
    }
}

std::vector<std::string> string_list(const oj& j, const std::string& what, const std::string& path) {
  if (!j.is_array()) throw Error(path + ": " + what + " must be an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) throw Error(path + ": " + what + "[" + std::to_string(i) + "] is not a string");
    out.push_back(j[i].get<std::string>());
  }
  return out;
}

std::vector<std::string> prompt_list(const oj& j, const std::string& what, const std::string& path) {
  const oj& list = j.is_object() && j.contains("prompts") ? j["prompts"] : j;
  auto out = string_list(list, what, path);
  if (out.empty()) throw Error(path + ": " + what + " has no prompts");
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].empty()) throw Error(path + ": " + what + " prompt " + std::to_string(i) + " is empty");
  return out;
}

// nlohmann's get<int>() casts a float or an out-of-range integer unchecked (undefined behaviour for
// 1e300): integer fields take only integers (or integral floats) that fit the type.
template <typename T>
bool integer_in_range(const oj& v, T& out) {
  using L = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(L::max())) return false;
    out = static_cast<T>(u);
    return true;
  }
  double d = 0;
  if (v.is_number_integer()) d = static_cast<double>(v.get<int64_t>());
  else if (v.is_number_float()) d = v.get<double>();
  else return false;
  // [min, max + 1) is exact in double for every integer type used here.
  if (!(d == std::floor(d) && d >= static_cast<double>(L::min()) && d < static_cast<double>(L::max()) + 1.0)) return false;
  out = v.is_number_integer() ? static_cast<T>(v.get<int64_t>()) : static_cast<T>(d);
  return true;
}

template <typename T>
T get(const oj& j, const char* key, T fallback, const std::string& where, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    T out{};
    if (!integer_in_range(*it, out))
      throw Error(path + ": field " + quote_for_message(key) + " in " + where + " must be an integer in range (got " +
                  (it->is_number() ? it->dump() : std::string(it->type_name())) + ")");
    return out;
  }
  try {
    return it->template get<T>();
  } catch (const oj::exception&) {
    throw Error(path + ": field " + quote_for_message(key) + " in " + where + " has the wrong type");
  }
}

}  // namespace

StudyConfig load_study_config(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": study config not found");
  StudyConfig c;
  c.path = path;
  try {
    c.raw = oj::parse(read_file(path));
  } catch (const oj::exception& e) {
    throw Error(path + ": malformed JSON (" + escape_for_message(e.what()) + ")");
  }
  const oj& j = c.raw;
  check_keys(j, "the study", {"description", "model", "generation", "trace", "overlap", "neuron_pages", "baseline",
                              "concepts", "steer", "saes", "atlas"},
             path);
  try {
    c.description = get<std::string>(j, "description", "", "the study", path);
    c.model = get<std::string>(j, "model", "", "the study", path);
    if (j.contains("saes")) c.saes = string_list(j["saes"], "saes", path);
    for (size_t i = 0; i < c.saes.size(); ++i)
      if (c.saes[i].empty()) throw Error(path + ": saes[" + std::to_string(i) + "] is empty (an SAE folder or file)");
    if (j.contains("generation")) {
      const oj& g = j["generation"];
      check_keys(g, "generation", {"max_new_tokens", "temperature", "top_k", "top_p", "seed", "batch", "stop_at_eos"}, path);
      c.gen.max_new_tokens = get<int>(g, "max_new_tokens", 64, "generation", path);
      c.gen.sampling.temperature = get<float>(g, "temperature", 0.0f, "generation", path);
      c.gen.sampling.top_k = get<int>(g, "top_k", 0, "generation", path);
      c.gen.sampling.top_p = get<float>(g, "top_p", 1.0f, "generation", path);
      c.gen.sampling.seed = get<uint64_t>(g, "seed", 0, "generation", path);
      c.gen.max_batch = get<int>(g, "batch", 64, "generation", path);
      c.gen.stop_at_eos = get<bool>(g, "stop_at_eos", true, "generation", path);
    } else {
      c.gen.max_new_tokens = 64;
    }
    if (c.gen.max_batch <= 0) throw Error(path + ": generation.batch must be positive");
    validate(c.gen.sampling);
    if (j.contains("trace")) {
      const oj& t = j["trace"];
      if (t.contains("top_k"))
        throw Error(path + ": trace.top_k is now trace.per_sample (neurons taken from each sample; "
                           "generation.top_k is sampling)");
      check_keys(t, "trace", {"sites", "positions", "skip_first", "normalize", "rank_by", "per_sample", "rows", "std_floor",
                              "select_words", "select_regex", "select_window"},
                 path);
      if (t.contains("sites")) {
        c.sites.clear();
        for (const auto& s : string_list(t["sites"], "trace.sites", path)) c.sites.push_back(parse_layer_site(s, "trace site"));
      }
      if (t.contains("positions")) {
        c.positions.clear();
        for (const auto& p : string_list(t["positions"], "trace.positions", path)) c.positions.push_back(parse_positions(p));
      }
      c.skip_first = get<bool>(t, "skip_first", false, "trace", path);
      c.analysis.normalization = parse_normalization(get<std::string>(t, "normalize", "subtract", "trace", path));
      c.analysis.rank_by = parse_rank_by(get<std::string>(t, "rank_by", "mean", "trace", path));
      c.analysis.top_k = get<int>(t, "per_sample", 10, "trace", path);
      c.analysis.table_rows = get<int>(t, "rows", c.analysis.top_k, "trace", path);
      c.analysis.std_floor = get<double>(t, "std_floor", 0.0, "trace", path);
      if (t.contains("select_words")) c.select_words = string_list(t["select_words"], "trace.select_words", path);
      c.select_regex = get<std::string>(t, "select_regex", "", "trace", path);
      c.select_window = get<int>(t, "select_window", 0, "trace", path);
    }
    if (c.sites.empty() || c.positions.empty()) throw Error(path + ": trace.sites and trace.positions must not be empty");
    check_analysis_options(c.analysis, NeuronLayout(), true);  // the sites' sizes once the model is known
    c.overlap_top_n = c.analysis.table_rows;
    if (j.contains("overlap")) {
      check_keys(j["overlap"], "overlap", {"top_n"}, path);
      c.overlap_top_n = get<int>(j["overlap"], "top_n", c.overlap_top_n, "overlap", path);
      if (c.overlap_top_n <= 0) throw Error(path + ": overlap.top_n must be positive");
    }
    if (j.contains("neuron_pages")) {
      check_keys(j["neuron_pages"], "neuron_pages", {"per_concept", "records"}, path);
      c.pages_per_concept = get<int>(j["neuron_pages"], "per_concept", 3, "neuron_pages", path);
      c.records_per_page = get<int>(j["neuron_pages"], "records", 5, "neuron_pages", path);
    }
    // The baseline: prompts, an atlas's corpus statistics, or both (the prompts then still give
    // the report their texts; without them steering takes its means from the atlas).
    if (!j.contains("baseline"))
      throw Error(path + ": missing 'baseline' ({\"prompts\": [...]} or {\"atlas\": \"DIR\"})");
    const oj& base = j["baseline"];
    if (base.is_object()) {
      check_keys(base, "baseline", {"prompts", "atlas"}, path);
      c.baseline_atlas = get<std::string>(base, "atlas", "", "baseline", path);
      if (!base.contains("prompts") && c.baseline_atlas.empty())
        throw Error(path + ": baseline needs \"prompts\" or \"atlas\"");
    }
    if (!base.is_object() || base.contains("prompts")) c.baseline = prompt_list(base, "baseline", path);
    c.atlas = get<std::string>(j, "atlas", "", "the study", path);
    if (!j.contains("concepts") || !j["concepts"].is_object() || j["concepts"].empty())
      throw Error(path + ": missing 'concepts' ({\"name\": [prompts], ...})");
    for (const auto& [name, prompts] : j["concepts"].items()) {
      if (name.empty() || name == "baseline") throw Error(path + ": invalid concept name " + quote_for_message(name));
      // Concept names reach tables, warnings and the terminal: text only.
      if (escape_for_message(name, std::string::npos) != name)
        throw Error(path + ": concept name " + quote_for_message(name) + " has control characters or invalid UTF-8");
      const std::string where = "concepts." + escape_for_message(name, 80);
      c.concepts.emplace_back(name, prompt_list(prompts, where, path));
      c.concept_words.push_back({name});
      if (!prompts.is_object()) continue;
      check_keys(prompts, where, {"prompts", "words"}, path);
      if (prompts.contains("words")) c.concept_words.back() = string_list(prompts["words"], where + ".words", path);
      if (c.concept_words.back().empty()) throw Error(path + ": " + where + ".words has no words");
      for (const std::string& w : c.concept_words.back())
        if (w.find_first_not_of(" \t") == std::string::npos) throw Error(path + ": " + where + ".words has an empty word");
    }
    if (j.contains("steer")) {
      const oj& s = j["steer"];
      check_keys(s, "steer", {"concept", "prompt", "prompts", "top_n", "mode", "site", "positions", "where",
                              "concept_words", "controls", "control_seed", "max_new_tokens"},
                 path);
      StudySteer st;
      st.concept_name = get<std::string>(s, "concept", "", "steer", path);
      bool known = false;
      for (const auto& [name, p] : c.concepts) known |= name == st.concept_name;
      if (!known) throw Error(path + ": steer.concept " + quote_for_message(st.concept_name) + " is not one of the concepts");
      if (s.contains("prompt")) st.prompts.push_back(get<std::string>(s, "prompt", "", "steer", path));
      if (s.contains("prompts"))
        for (auto& p : string_list(s["prompts"], "steer.prompts", path)) st.prompts.push_back(p);
      if (st.prompts.empty()) throw Error(path + ": steer needs 'prompt' or 'prompts'");
      st.top_n = get<int>(s, "top_n", 3, "steer", path);
      st.mode = get<std::string>(s, "mode", "zero", "steer", path);
      if (s.contains("site")) {
        st.site = parse_layer_site(get<std::string>(s, "site", "", "steer", path), "steer site");
        if (std::find(c.sites.begin(), c.sites.end(), *st.site) == c.sites.end())
          throw Error(path + ": steer.site '" + site_name(*st.site) + "' is not traced by this study (trace.sites)");
      }
      st.positions = get<std::string>(s, "positions", "", "steer", path);
      if (!st.positions.empty() &&
          std::find(c.positions.begin(), c.positions.end(), parse_positions(st.positions)) == c.positions.end())
        throw Error(path + ": steer.positions '" + st.positions + "' are not traced by this study (trace.positions)");
      st.where = get<std::string>(s, "where", "all", "steer", path);
      Intervention check;  // the mode and positions are checked here, before anything is generated
      parse_mode(st.mode, check);
      parse_where(st.where);
      if (s.contains("concept_words")) st.concept_words = string_list(s["concept_words"], "steer.concept_words", path);
      st.controls = get<int>(s, "controls", 20, "steer", path);
      st.control_seed = get<uint64_t>(s, "control_seed", 0, "steer", path);
      st.max_new_tokens = get<int>(s, "max_new_tokens", 0, "steer", path);
      if (st.top_n <= 0) throw Error(path + ": steer.top_n must be positive");
      if (st.controls < 0) throw Error(path + ": steer.controls must be >= 0");
      c.steer = st;
    }
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    throw Error(path + ": " + msg);
  }
  return c;
}

}  // namespace nt
