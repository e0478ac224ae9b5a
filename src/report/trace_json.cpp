#include "report/trace_json.h"

#include "sae/sae.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

// A figure measured against the baseline, null without one.
nlohmann::json or_null(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

}  // namespace

nlohmann::json analysis_json(const ConceptAnalysis& a) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& sc : a.sites) {
    nlohmann::json table = nlohmann::json::array();
    for (const auto& r : sc.rows)
      table.push_back({{"rank", r.rank}, {"layer", r.neuron.layer}, {"neuron", r.neuron.index},
                       {"label", unit_label(sc.site, r.neuron.layer, r.neuron.index)}, {"occurrences", r.occurrences},
                       {"percent", r.percent}, {"mean_score", r.mean_score}, {"concept_mean", r.concept_mean},
                       {"baseline_mean", or_null(r.baseline_mean)}, {"cohens_d", or_null(r.cohens_d)},
                       {"frac_above_baseline_p95", or_null(r.frac_above_p95)}, {"density", r.density},
                       {"baseline_density", or_null(r.baseline_density)}, {"atlas_share", or_null(r.atlas_share)}});
    nlohmann::json samples = nlohmann::json::array();
    for (const auto& s : sc.samples) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& t : s.top) top.push_back({{"layer", t.neuron.layer}, {"neuron", t.neuron.index}, {"score", t.score}});
      samples.push_back({{"prompt_index", s.seq}, {"n_tokens", s.n_tokens}, {"top", top}});
    }
    nlohmann::json site = {{"site", sc.site.name()}, {"max_occurrences", sc.max_occurrences}, {"table", table},
                           {"samples", samples}};
    if (sc.site.is_sae()) site["sae"] = sc.site.sae->source();
    sites.push_back(std::move(site));
  }
  return {{"concept", a.concept_name}, {"positions", positions_name(a.positions)}, {"no_tokens_recorded", a.no_tokens},
          {"warnings", a.warnings}, {"atlas_base_rate", or_null(a.atlas_base_rate)}, {"sites", sites}};
}

nlohmann::json trace_json(const TraceRun& run, const Tokenizer& tokenizer, const ModelIdentity& model,
                          const nlohmann::json& config, const std::vector<ConceptAnalysis>& analyses) {
  const Recorder& rec = *run.recorder;
  const NeuronLayout& layout = rec.layout();
  nlohmann::json prompts = nlohmann::json::array();
  for (size_t i = 0; i < run.texts.size(); ++i) {
    const auto& g = run.generations[i];
    nlohmann::json recorded = nlohmann::json::object();
    for (size_t s = 0; s < rec.options().settings.size(); ++s)
      recorded[positions_name(rec.options().settings[s])] = rec.n_tokens(s, static_cast<int>(i));
    prompts.push_back({{"index", i}, {"group", run.group_names[static_cast<size_t>(run.group_of_seq[i])]},
                       {"text", run.texts[i]}, {"prompt_ids", g.prompt_ids}, {"generated_ids", g.generated_ids},
                       {"generated_text", decode_continuation(tokenizer, g.prompt_ids, g.generated_ids)}, {"stop_reason", g.stop_reason},
                       {"recorded_tokens", recorded}});
  }
  nlohmann::json results = nlohmann::json::array();
  for (const auto& a : analyses) results.push_back(analysis_json(a));

  // Per-neuron statistics over tokens, per position setting, group and site (arrays [layer][neuron]).
  nlohmann::json neurons = nlohmann::json::array();
  for (size_t s = 0; s < rec.options().settings.size(); ++s) {
    for (size_t g = 0; g < run.group_names.size(); ++g) {
      const TokenStats& ts = rec.group(s, static_cast<int>(g));
      for (size_t site = 0; site < layout.sites.size(); ++site) {
        const size_t begin = layout.offsets[site], n = layout.site_size(static_cast<int>(site));
        const size_t w = static_cast<size_t>(layout.widths[site]);
        nlohmann::json mean = nlohmann::json::array(), std = nlohmann::json::array(), mx = nlohmann::json::array(),
                       mn = nlohmann::json::array(), mabs = nlohmann::json::array(), dens = nlohmann::json::array();
        for (size_t l = 0; l * w < n; ++l) {
          std::vector<float> m(w), sd(w), a(w), hi(w), lo(w), d(w);
          for (size_t i = 0; i < w; ++i) {
            const size_t f = begin + l * w + i;
            m[i] = static_cast<float>(ts.mean(f));
            sd[i] = static_cast<float>(ts.std(f));
            a[i] = static_cast<float>(ts.mean_abs(f));
            hi[i] = ts.count ? ts.max[f] : 0.0f;
            lo[i] = ts.count ? ts.min[f] : 0.0f;
            d[i] = static_cast<float>(ts.density(f));
          }
          dens.push_back(d);
          mean.push_back(m);
          std.push_back(sd);
          mabs.push_back(a);
          mx.push_back(hi);
          mn.push_back(lo);
        }
        neurons.push_back({{"positions", positions_name(rec.options().settings[s])}, {"group", run.group_names[g]},
                           {"site", layout.sites[site].name()}, {"first_layer", layout.first_layer[site]},
                           {"tokens", ts.count}, {"mean", mean}, {"std", std}, {"mean_abs", mabs}, {"max", mx},
                           {"min", mn}, {"density", dens}});
      }
    }
  }
  return {{"neurontrace_version", NT_VERSION}, {"kind", "trace"}, {"model", model.to_json()}, {"config", config},
          {"prompts", prompts}, {"results", results}, {"neuron_stats", neurons}};
}

std::vector<TracedNeurons> traced_neurons(const nlohmann::json& trace) {
  std::vector<TracedNeurons> out;
  try {
    for (const auto& r : trace.at("results")) {
      for (const auto& s : r.at("sites")) {
        TracedNeurons t;
        t.concept_name = r.at("concept").get<std::string>();
        t.positions = r.at("positions").get<std::string>();
        t.site = s.at("site").get<std::string>();
        for (const auto& row : s.at("table")) t.neurons.emplace_back(row.at("layer").get<int>(), row.at("neuron").get<int>());
        out.push_back(std::move(t));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error("not a neurontrace trace (" + escape_for_message(e.what()) + ")");
  }
  return out;
}

}  // namespace nt
