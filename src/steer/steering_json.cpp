#include "steer/steering_json.h"

#include "io/model_identity.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"
#include "util/option_error.h"

namespace nt {

nlohmann::json measures_json(const EffectMeasures& m) {
  return {{"kl", m.kl}, {"hit_rate", m.hit_rate}, {"concept_logprob", m.concept_logprob}, {"hits", m.hits},
          {"words", m.words}};
}

nlohmann::json steering_json(const SteeringResult& r) {
  nlohmann::json prompts = nlohmann::json::array();
  for (const auto& p : r.prompts) {
    nlohmann::json controls = nlohmann::json::array();
    for (const auto& c : p.controls) controls.push_back(measures_json(c));
    prompts.push_back({{"prompt", p.prompt},
                       {"prompt_ids", p.prompt_ids},
                       {"unsteered", {{"ids", p.unsteered_ids}, {"text", p.unsteered_text}, {"measures", measures_json(p.unsteered)}}},
                       {"steered", {{"ids", p.steered_ids}, {"text", p.steered_text}, {"measures", measures_json(p.steered)}}},
                       {"first_divergence", p.first_divergence},
                       {"controls", controls}});
  }
  nlohmann::json sets = nlohmann::json::array();
  for (const auto& s : r.control_sets) {
    if (!r.sae.sae) {
      sets.push_back(neurons_text(s));
      continue;
    }
    std::vector<int> latents;
    for (const auto& u : s) latents.push_back(u.index);
    sets.push_back(latents);
  }
  nlohmann::json summary = nlohmann::json::array();
  for (const auto& s : r.summary)
    summary.push_back({{"measure", s.measure}, {"effect", s.effect}, {"control_median", s.median},
                       {"control_p5", s.p5}, {"control_p95", s.p95}, {"effect_percentile", s.percentile}});
  nlohmann::json intervention = {{"description", r.description}};
  if (r.sae.sae) {
    intervention["sae"] = {{"source", r.sae.sae->source()}, {"hook", r.sae.sae->config().hook_name},
                           {"d_sae", r.sae.sae->d_sae()}, {"center_input", r.sae.sae->config().center_input}};
    intervention["latents"] = r.sae.latents;
    intervention["kind"] = r.sae.direction ? "direction" : "latent_edit";
    if (r.intervention.mode == InterventionMode::Mean) {
      std::vector<float> means;  // per latent
      for (int i : r.sae.latents) means.push_back(r.sae.latent_means[static_cast<size_t>(i)]);
      intervention["means"] = means;
    }
  } else {
    nlohmann::json neurons = nlohmann::json::array();
    for (const auto& n : r.intervention.neurons) neurons.push_back({{"layer", n.layer}, {"neuron", n.index}});
    intervention["site"] = site_name(r.intervention.site);
    intervention["neurons"] = neurons;
    if (r.intervention.mode == InterventionMode::Mean) intervention["means"] = r.intervention.means;  // per neuron
  }
  return {{"intervention", intervention}, {"prompts", prompts}, {"control_sets", sets}, {"summary", summary}};
}

TraceSelection select_from_trace(const std::string& trace_path, const nlohmann::json& current_model,
                                 std::optional<HookSite> site, const std::string& positions, int n) {
  nlohmann::json trace;
  try {
    trace = nlohmann::json::parse(read_file(trace_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(trace_path + ": malformed JSON (" + escape_for_message(e.what()) + ")");
  }
  if (!trace.is_object() || trace.value("kind", "") != "trace" || !trace.contains("model"))
    throw Error(trace_path + ": not a neurontrace trace.json");
  const ModelIdentity made_with = ModelIdentity::from_json(trace["model"]);
  const ModelIdentity now = ModelIdentity::from_json(current_model);
  if (!made_with.same_model(now))
    throw Error(trace_path + ": made with model " + made_with.describe() + ", not with " + now.describe());
  if (n <= 0) throw OptionError("steer.top_n", "must be positive");
  TraceSelection sel;
  try {
    for (const auto& r : trace.at("results")) {
      if (!positions.empty() && r.at("positions") != positions) continue;
      for (const auto& s : r.at("sites")) {
        const HookSite traced = parse_layer_site(s.at("site").get<std::string>(), "traced site");
        if (site && traced != *site) continue;
        sel.site = traced;
        const auto& table = s.at("table");
        if (static_cast<int>(table.size()) < n)
          throw Error(trace_path + ": its table has " + std::to_string(table.size()) + " neurons, fewer than --top " +
                      std::to_string(n));
        for (int i = 0; i < n; ++i) sel.neurons.push_back({table[static_cast<size_t>(i)].at("layer").get<int>(),
                                                           table[static_cast<size_t>(i)].at("neuron").get<int>()});
        const std::string pos = r.at("positions").get<std::string>();
        for (const auto& st : trace.at("neuron_stats")) {
          if (st.at("positions") != pos || st.at("group") != "baseline" || st.at("site") != s.at("site")) continue;
          for (const auto& layer : st.at("mean"))
            for (const auto& v : layer) sel.site_means.push_back(v.get<float>());
        }
        return sel;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(trace_path + ": unexpected layout (" + escape_for_message(e.what()) + ")");
  }
  throw Error(trace_path + ": no table for site '" + (site ? site_name(*site) : "any") + "'" +
              (positions.empty() ? "" : " at positions " + quote_for_message(positions)));
}

}  // namespace nt
