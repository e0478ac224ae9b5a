#include "analysis/concept_trace.h"

#include "analysis/atlas_baseline.h"
#include "analysis/atlas_share.h"
#include "atlas/concept_query.h"
#include "trace/neuron_layout.h"
#include "trace/trace_site.h"
#include "util/option_error.h"

namespace nt {

ConceptTracePlan plan_concept_trace(const ConceptTraceOptions& o) {
  ConceptTracePlan plan;
  plan.site_names = o.sites;
  if (plan.site_names.empty() && o.saes.empty()) plan.site_names.push_back("hook_resid_post");
  for (const auto& p : o.positions) plan.settings.push_back(parse_positions(p));
  plan.analysis.normalization = parse_normalization(o.normalize);
  plan.analysis.rank_by = parse_rank_by(o.rank_by);
  plan.analysis.top_k = o.per_sample;
  plan.analysis.table_rows = o.rows > 0 ? o.rows : o.per_sample;
  plan.analysis.std_floor = o.std_floor;
  if (!o.baseline_atlas.empty() && (!o.baseline.empty() || !o.baseline_file.empty()))
    throw OptionError("trace.baseline_atlas", "give baseline prompts or a baseline atlas, not both");
  if (!o.baseline_atlas.empty()) check_atlas_baseline(plan.analysis);
  if (!o.atlas.empty()) concept_words(o.words);
  if (o.atlas.empty() && !o.words.empty()) throw OptionError("atlas.words", "concept words need an atlas (--atlas DIR)");
  if (!o.select_words.empty() || !o.select_regex.empty())
    plan.selector = std::make_unique<TokenSelector>(o.select_words, o.select_regex, o.select_window);
  plan.config = {
      {"concept", o.concept_name}, {"prompts_file", o.prompts_file}, {"baseline_file", o.baseline_file},
      {"baseline_atlas", o.baseline_atlas}, {"atlas", o.atlas}, {"words", o.words},
      {"sites", plan.site_names}, {"saes", o.saes}, {"positions", o.positions}, {"skip_first", o.skip_first},
      {"token_selection", plan.selector ? plan.selector->describe() : ""}, {"normalize", o.normalize},
      {"rank_by", o.rank_by}, {"per_sample", o.per_sample}, {"std_floor", o.std_floor},
      {"max_new_tokens", o.gen.max_new_tokens}, {"temperature", o.gen.sampling.temperature},
      {"top_k", o.gen.sampling.top_k}, {"top_p", o.gen.sampling.top_p}, {"seed", o.gen.sampling.seed}};
  return plan;
}

ConceptTrace run_concept_trace(Session& session, const ConceptTraceOptions& o, const ConceptTracePlan& plan,
                               Hooks* hooks, std::function<void(const GenerationProgress&)> progress) {
  const bool has_baseline = !o.baseline.empty() || !o.baseline_atlas.empty();
  const ModelConfig& mc = session.model->config();
  const std::vector<TraceSite> sites = resolve_trace_sites(plan.site_names, load_saes(o.saes, mc), mc);
  const NeuronLayout layout(sites, mc);
  check_analysis_options(plan.analysis, layout, has_baseline);
  // Checked and read before generating, so a wrong atlas fails fast.
  const BaselineStats atlas = o.baseline_atlas.empty() ? BaselineStats{} : atlas_baseline(o.baseline_atlas, session, layout);
  const std::optional<AtlasShares> shares =
      o.atlas.empty() ? std::nullopt
                      : std::optional(atlas_shares(load_model_atlas(o.atlas, session, layout), o.words, *session.tokenizer));
  std::vector<PromptGroup> groups{{o.concept_name, o.prompts}};
  if (!o.baseline.empty()) groups.push_back({"baseline", o.baseline});
  RecorderOptions rec;
  rec.sites = sites;
  rec.settings = plan.settings;
  rec.skip_first = o.skip_first;
  rec.selector = plan.selector.get();
  rec.keep_rows = o.keep_rows;

  ConceptTrace t{run_trace(session, groups, rec, o.gen, hooks, std::move(progress)), {}, {}};
  const int baseline_group = t.run.group_index("baseline");
  for (size_t s = 0; s < plan.settings.size(); ++s) {
    BaselineStats baseline = atlas;
    if (baseline_group >= 0)
      baseline = compute_baseline(*t.run.recorder, s, baseline_group, t.run.seqs_of(baseline_group),
                                  plan.analysis.rank_by);
    t.analyses.push_back(analyze_concept(*t.run.recorder, s, o.concept_name, t.run.seqs_of(0), baseline, plan.analysis));
    if (shares) add_atlas_shares(t.analyses.back(), *shares, layout);
  }
  t.sae_fits = fit_traced_saes(*session.model, sites, t.run.generations);
  return t;
}

}  // namespace nt
