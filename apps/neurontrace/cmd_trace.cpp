// neurontrace trace: generate from a concept's prompts (and the baseline's), record every neuron
// of the traced sites at the chosen positions, normalize against the baseline, rank, and count
// how consistently each neuron is among a sample's top K.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "analysis/concept_trace.h"
#include "commands.h"
#include "io/model_identity.h"
#include "io/prompts_file.h"
#include "report/activation_dump.h"
#include "report/consistency_table.h"
#include "report/sae_fit_report.h"
#include "report/trace_json.h"
#include "util/error.h"

namespace nt::cli {

namespace {

struct TraceOptions {
  std::string model, out_dir, dump_file;
  ConceptTraceOptions trace;  // prompts and baseline from trace.prompts_file, trace.baseline_file
};

int run_trace_command(TraceOptions& o) {
  // Everything that does not need the model is checked first, so mistakes fail fast; the rest as
  // soon as the model's config is known, before generating.
  ConceptTraceOptions& t = o.trace;
  t.keep_rows = !o.dump_file.empty();
  const ConceptTracePlan plan = plan_concept_trace(t);
  t.prompts = load_prompts(t.prompts_file);
  if (!t.baseline_file.empty()) t.baseline = load_prompts(t.baseline_file);

  Session session = open_session(o.model);
  Progress progress("trace");
  const ConceptTrace result =
      run_concept_trace(session, t, plan, nullptr, [&](const GenerationProgress& p) { progress.update(p); });

  for (const SiteFit& f : result.sae_fits) std::cerr << "neurontrace: SAE fit, " << sae_fit_text(f) << "\n";

  for (const auto& a : result.analyses) {
    std::cout << consistency_text(a) << "\n";
    for (const auto& w : a.warnings) std::cerr << "neurontrace: warning: " << w << "\n";
    if (a.no_tokens)
      std::cerr << "neurontrace: warning: no tokens recorded for '" << a.concept_name << "' at positions '"
                << positions_name(a.positions) << "'" << (plan.selector ? " (the token selection never matched)" : "")
                << "\n";
  }

  if (!o.out_dir.empty()) {
    const ModelIdentity id = model_identity(session.model_dir, session.model->config());
    auto j = trace_json(result.run, *session.tokenizer, id, plan.config, result.analyses);
    if (!result.sae_fits.empty()) j["sae_fit"] = sae_fit_json(result.sae_fits);
    write_output(o.out_dir + "/trace.json", j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    write_output(o.out_dir + "/consistency.md", consistency_markdown(result.analyses));
    write_output(o.out_dir + "/consistency.csv", consistency_csv(result.analyses));
  }
  if (!o.dump_file.empty()) write_activation_dump(o.dump_file, *result.run.recorder);
  return 0;
}

}  // namespace

Command add_trace(CLI::App& app) {
  auto o = std::make_shared<TraceOptions>();
  o->trace.gen.max_new_tokens = 32;
  CLI::App* cmd = app.add_subcommand("trace", "Trace the neurons that fire for a concept while the model generates");
  cmd->add_option("-m,--model", o->model, "Model folder in Hugging Face layout")->required();
  cmd->add_option("--concept", o->trace.concept_name, "Concept name (for tables and outputs)")->capture_default_str();
  cmd->add_option("--prompts", o->trace.prompts_file, "Concept prompts, JSON {\"prompts\": [...]}")->required();
  cmd->add_option("--baseline", o->trace.baseline_file, "Neutral baseline prompts, JSON {\"prompts\": [...]}");
  cmd->add_option("--baseline-atlas", o->trace.baseline_atlas,
                  "Atlas folder (neurontrace atlas --out): normalize against its per-unit token mean and std instead of baseline prompts");
  cmd->add_option("--atlas", o->trace.atlas,
                  "Atlas folder (neurontrace atlas --out): show each reported neuron's concept share of its top contexts "
                  "(needs --words)");
  add_words_option(*cmd, o->trace.words);
  cmd->add_option("--site", o->trace.sites,
                  "Hook site(s) to trace, every layer: hook_resid_post, mlp.hook_post, blocks.*.mlp.hook_pre, ... "
                  "(repeatable; the model must fire it; default hook_resid_post, or only the SAEs' latents with --sae); "
                  "with --sae also <hook>.hook_sae_acts_post, .hook_sae_recons, .hook_sae_error");
  cmd->add_option("--sae", o->trace.saes,
                  "SAE to trace at its hook point (SAELens folder, Gemma Scope params.npz or Hub id ORG/REPO[/FOLDER]; repeatable): "
                  "its latents are the site <hook>.hook_sae_acts_post");
  cmd->add_option("--positions", o->trace.positions, "Tokens to record: last, generated, prompt, all (repeatable)")
      ->capture_default_str();
  cmd->add_flag("--skip-first", o->trace.skip_first, "Ignore position 0 (BOS / first prompt token)");
  cmd->add_option("--select-words", o->trace.select_words, "Record only tokens matching these words (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--select-regex", o->trace.select_regex, "Record only tokens whose text matches this regex");
  cmd->add_option("--select-window", o->trace.select_window, "Also record the next W tokens after a match")
      ->capture_default_str();
  cmd->add_option("--normalize", o->trace.normalize, "none, subtract (concept - baseline mean), zscore")
      ->capture_default_str();
  cmd->add_option("--rank-by", o->trace.rank_by, "Per-sample statistic: mean, mean-abs, max")->capture_default_str();
  cmd->add_option("--per-sample", o->trace.per_sample, "Neurons taken from each sample (its top K)")->capture_default_str();
  cmd->add_option("--rows", o->trace.rows, "Rows of the consistency table (default: --per-sample)");
  cmd->add_option("--std-floor", o->trace.std_floor, "zscore: smallest baseline standard deviation (0: a tenth of the site's median)")
      ->capture_default_str();
  add_generation_flags(*cmd, o->trace.gen);
  cmd->add_option("--out", o->out_dir, "Write trace.json, consistency.md, consistency.csv here");
  cmd->add_option("--dump-activations", o->dump_file, "Write raw per-token activations (safetensors)");
  return {cmd, naming_flags({{"trace.per_sample", "--per-sample"},
                             {"trace.rows", "--rows"},
                             {"trace.std_floor", "--std-floor"},
                             {"trace.normalize", "--normalize"},
                             {"trace.baseline_atlas", "--baseline-atlas"},
                             {"atlas.words", "--words"},
                             {"trace.select_window", "--select-window"}},
                            [o] { return run_trace_command(*o); })};
}

}  // namespace nt::cli
