// neurontrace trace: generate from a concept's prompts (and the baseline's), record every neuron
// of the traced sites at the chosen positions, normalize against the baseline, rank, and count
// how consistently each neuron is among a sample's top K.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "analysis/consistency.h"
#include "commands.h"
#include "io/model_identity.h"
#include "io/prompts_file.h"
#include "report/activation_dump.h"
#include "report/consistency_table.h"
#include "report/sae_fit_report.h"
#include "report/trace_json.h"
#include "trace/trace_run.h"
#include "util/error.h"

namespace nt::cli {

namespace {

struct TraceOptions {
  std::string model, concept_name = "concept", prompts_file, baseline_file, out_dir, dump_file;
  std::vector<std::string> sites;  // none: hook_resid_post, or only the SAEs' latents with --sae
  std::vector<std::string> saes;
  std::vector<std::string> positions{"generated"};
  bool skip_first = false;
  std::vector<std::string> select_words;
  std::string select_regex;
  int select_window = 0;
  std::string normalize = "subtract", rank_by = "mean";
  int per_sample = 10;
  int rows = 0;
  double std_floor = 0.0;
  GenerationConfig gen;
};

int run_trace_command(const TraceOptions& o) {
  // Everything that does not need the model is checked first, so mistakes fail fast; the rest as
  // soon as the model's config is known, before generating.
  std::vector<std::string> site_names = o.sites;
  if (site_names.empty() && o.saes.empty()) site_names.push_back("hook_resid_post");
  std::vector<Positions> settings;
  for (const auto& p : o.positions) settings.push_back(parse_positions(p));
  AnalysisOptions analysis;
  analysis.normalization = parse_normalization(o.normalize);
  analysis.rank_by = parse_rank_by(o.rank_by);
  analysis.top_k = o.per_sample;
  analysis.table_rows = o.rows > 0 ? o.rows : o.per_sample;
  analysis.std_floor = o.std_floor;
  std::unique_ptr<TokenSelector> selector;
  if (!o.select_words.empty() || !o.select_regex.empty())
    selector = std::make_unique<TokenSelector>(o.select_words, o.select_regex, o.select_window);
  std::vector<PromptGroup> groups{{o.concept_name, load_prompts(o.prompts_file)}};
  if (!o.baseline_file.empty()) groups.push_back({"baseline", load_prompts(o.baseline_file)});

  Session session = open_session(o.model);
  const ModelConfig& mc = session.model->config();
  const std::vector<TraceSite> sites = resolve_trace_sites(site_names, load_saes(o.saes, mc), mc);
  check_analysis_options(analysis, NeuronLayout(sites, mc), !o.baseline_file.empty());
  RecorderOptions rec;
  rec.sites = sites;
  rec.settings = settings;
  rec.skip_first = o.skip_first;
  rec.selector = selector.get();
  rec.keep_rows = !o.dump_file.empty();

  Progress progress("trace");
  TraceRun run = run_trace(session, groups, rec, o.gen, nullptr, [&](const GenerationProgress& p) { progress.update(p); });

  const std::vector<SiteFit> fits = fit_traced_saes(*session.model, sites, run.generations);
  for (const SiteFit& f : fits) std::cerr << "neurontrace: SAE fit, " << sae_fit_text(f) << "\n";

  std::vector<ConceptAnalysis> analyses;
  const int baseline_group = run.group_index("baseline");
  for (size_t s = 0; s < settings.size(); ++s) {
    BaselineStats baseline;
    if (baseline_group >= 0)
      baseline = compute_baseline(*run.recorder, s, baseline_group, run.seqs_of(baseline_group), analysis.rank_by);
    analyses.push_back(analyze_concept(*run.recorder, s, o.concept_name, run.seqs_of(0), baseline, analysis));
  }
  for (const auto& a : analyses) {
    std::cout << consistency_text(a) << "\n";
    for (const auto& w : a.warnings) std::cerr << "neurontrace: warning: " << w << "\n";
    if (a.no_tokens)
      std::cerr << "neurontrace: warning: no tokens recorded for '" << a.concept_name << "' at positions '"
                << positions_name(a.positions) << "'" << (selector ? " (the token selection never matched)" : "")
                << "\n";
  }

  if (!o.out_dir.empty()) {
    nlohmann::json config = {
        {"concept", o.concept_name}, {"prompts_file", o.prompts_file}, {"baseline_file", o.baseline_file},
        {"sites", site_names}, {"saes", o.saes}, {"positions", o.positions}, {"skip_first", o.skip_first},
        {"token_selection", selector ? selector->describe() : ""}, {"normalize", o.normalize},
        {"rank_by", o.rank_by}, {"per_sample", o.per_sample}, {"std_floor", o.std_floor},
        {"max_new_tokens", o.gen.max_new_tokens}, {"temperature", o.gen.sampling.temperature},
        {"top_k", o.gen.sampling.top_k}, {"top_p", o.gen.sampling.top_p}, {"seed", o.gen.sampling.seed}};
    const ModelIdentity id = model_identity(session.model_dir, session.model->config());
    auto j = trace_json(run, *session.tokenizer, id, config, analyses);
    if (!fits.empty()) j["sae_fit"] = sae_fit_json(fits);
    write_output(o.out_dir + "/trace.json", j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    write_output(o.out_dir + "/consistency.md", consistency_markdown(analyses));
    write_output(o.out_dir + "/consistency.csv", consistency_csv(analyses));
  }
  if (!o.dump_file.empty()) write_activation_dump(o.dump_file, *run.recorder);
  return 0;
}

}  // namespace

Command add_trace(CLI::App& app) {
  auto o = std::make_shared<TraceOptions>();
  o->gen.max_new_tokens = 32;
  CLI::App* cmd = app.add_subcommand("trace", "Trace the neurons that fire for a concept while the model generates");
  cmd->add_option("-m,--model", o->model, "Model folder in Hugging Face layout")->required();
  cmd->add_option("--concept", o->concept_name, "Concept name (for tables and outputs)")->capture_default_str();
  cmd->add_option("--prompts", o->prompts_file, "Concept prompts, JSON {\"prompts\": [...]}")->required();
  cmd->add_option("--baseline", o->baseline_file, "Neutral baseline prompts, JSON {\"prompts\": [...]}");
  cmd->add_option("--site", o->sites,
                  "Hook site(s) to trace, every layer: hook_resid_post, mlp.hook_post, blocks.*.mlp.hook_pre, ... "
                  "(repeatable; the model must fire it; default hook_resid_post, or only the SAEs' latents with --sae); "
                  "with --sae also <hook>.hook_sae_acts_post, .hook_sae_recons, .hook_sae_error");
  cmd->add_option("--sae", o->saes,
                  "SAE to trace at its hook point (SAELens folder or Gemma Scope params.npz; repeatable): "
                  "its latents are the site <hook>.hook_sae_acts_post");
  cmd->add_option("--positions", o->positions, "Tokens to record: last, generated, prompt, all (repeatable)")
      ->capture_default_str();
  cmd->add_flag("--skip-first", o->skip_first, "Ignore position 0 (BOS / first prompt token)");
  cmd->add_option("--select-words", o->select_words, "Record only tokens matching these words (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--select-regex", o->select_regex, "Record only tokens whose text matches this regex");
  cmd->add_option("--select-window", o->select_window, "Also record the next W tokens after a match")
      ->capture_default_str();
  cmd->add_option("--normalize", o->normalize, "none, subtract (concept - baseline mean), zscore")
      ->capture_default_str();
  cmd->add_option("--rank-by", o->rank_by, "Per-sample statistic: mean, mean-abs, max")->capture_default_str();
  cmd->add_option("--per-sample", o->per_sample, "Neurons taken from each sample (its top K)")->capture_default_str();
  cmd->add_option("--rows", o->rows, "Rows of the consistency table (default: --per-sample)");
  cmd->add_option("--std-floor", o->std_floor, "zscore: smallest baseline standard deviation (0: a tenth of the site's median)")
      ->capture_default_str();
  add_generation_flags(*cmd, o->gen);
  cmd->add_option("--out", o->out_dir, "Write trace.json, consistency.md, consistency.csv here");
  cmd->add_option("--dump-activations", o->dump_file, "Write raw per-token activations (safetensors)");
  return {cmd, naming_flags({{"trace.per_sample", "--per-sample"},
                             {"trace.rows", "--rows"},
                             {"trace.std_floor", "--std-floor"},
                             {"trace.normalize", "--normalize"},
                             {"trace.select_window", "--select-window"}},
                            [o] { return run_trace_command(*o); })};
}

}  // namespace nt::cli
