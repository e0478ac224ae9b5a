#include "steer/steer_run.h"

#include "io/prompts_file.h"
#include "sae/sae_latent_means.h"
#include "steer/steering_json.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

std::vector<std::string> prompt_texts(const SteerRunOptions& o) {
  std::vector<std::string> texts = o.prompts;
  if (!o.prompts_file.empty())
    for (auto& p : load_prompts(o.prompts_file)) texts.push_back(p);
  if (texts.empty()) throw Error("no prompt given (use -p TEXT or --prompts FILE.json)");
  return texts;
}

// --sae: the latents (--latents) edited by --mode with the SAE's error term kept, or their decoder
// rows added (--direction add:S).
void plan_sae_steer(const SteerRunOptions& o, SteeringOptions& opt) {
  if (!o.ablate.empty() || !o.from_trace.empty())
    throw Error("--sae steers the SAE's latents given by --latents, not neurons (--ablate, --from-trace)");
  if (o.latents.empty()) throw Error("--sae needs the latents to steer: --latents 476,300");
  opt.sae.latents = o.latents;
  if (!o.direction.empty()) {
    if (o.mode_given) throw Error("give either --mode (latent edit) or --direction (decoder rows added), not both");
    if (o.direction.rfind("add:", 0) != 0) throw Error("--direction: expected add:S, got " + quote_for_message(o.direction));
    parse_mode(o.direction, opt.intervention);
    opt.sae.direction = true;
  } else {
    parse_mode(o.mode, opt.intervention);
  }
  opt.intervention.where = parse_where(o.where);
}

void plan_neuron_steer(const SteerRunOptions& o, SteerPlan& plan) {
  if (!o.latents.empty() || !o.direction.empty()) throw Error("--latents and --direction steer an SAE's latents: give --sae");
  if (o.ablate.empty() == o.from_trace.empty())
    throw Error("give the neurons with either --ablate L11N197,... or --from-trace trace.json --top N");
  parse_mode(o.mode, plan.steering.intervention);
  plan.steering.intervention.where = parse_where(o.where);
  if (!o.ablate.empty()) plan.steering.intervention.neurons = parse_neurons(o.ablate);
  if (!o.site.empty()) plan.site = parse_layer_site(o.site, "steer site");
  if (plan.site) plan.steering.intervention.site = *plan.site;
}

void open_steered_sae(Session& session, const SteerRunOptions& o, SteeringOptions& opt) {
  opt.sae.sae = open_sae(o.sae, o.sae_options, session.model->config());
  if (opt.intervention.mode == InterventionMode::Mean) {
    if (o.baseline.empty()) throw Error("--mode mean with --sae needs --baseline FILE.json (prompts giving each latent's mean)");
    opt.sae.latent_means = sae_latent_means(*session.model, *opt.sae.sae, session.encode_prompts(load_prompts(o.baseline)));
  } else if (!o.baseline.empty()) {
    throw Error("--baseline gives the latents' means for --mode mean; the mode is " + quote_for_message(o.mode));
  }
}

}  // namespace

SteerPlan plan_steer(const SteerRunOptions& o) {
  SteerPlan plan;
  plan.texts = prompt_texts(o);
  SteeringOptions& opt = plan.steering;
  opt.gen = o.gen;
  opt.concept_words = o.concept_words;
  opt.controls = o.controls;
  opt.control_seed = o.control_seed;
  if (!o.sae.empty()) plan_sae_steer(o, opt);
  else plan_neuron_steer(o, plan);
  return plan;
}

SteeringResult run_steer(Session& session, const SteerRunOptions& o, SteerPlan plan) {
  SteeringOptions& opt = plan.steering;
  const ModelConfig& config = session.model->config();
  if (!o.sae.empty()) {
    open_steered_sae(session, o, opt);
  } else if (!o.from_trace.empty()) {
    const ModelIdentity id = model_identity(session.model_dir, config);
    TraceSelection sel = select_from_trace(o.from_trace, id.to_json(), plan.site, o.trace_positions, o.top);
    opt.intervention.site = sel.site;
    opt.intervention.neurons = sel.neurons;
    opt.site_means = sel.site_means;
  }
  check_steering_options(opt, config);
  return run_steering(session, plan.texts, opt);
}

nlohmann::json steer_json(const SteeringResult& result, const ModelIdentity& id, const SteerRunOptions& o) {
  nlohmann::json j = steering_json(result);
  j["model"] = id.to_json();
  j["concept_words"] = o.concept_words;
  return j;
}

}  // namespace nt
