// neurontrace atlas: scan a corpus and keep, for every unit of the chosen sites, its statistics,
// top contexts and samples (src/atlas/); `atlas merge` combines the parts of a sharded scan, and
// under mpirun the ranks scan one shard each and rank 0 merges them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "atlas/atlas_run.h"
#include "cluster/ranks.h"
#include "commands.h"
#include "util/error.h"

namespace nt::cli {

namespace {

struct AtlasOptions {
  std::string model;
  AtlasRunOptions run;
};

struct MergeOptions {
  std::vector<std::string> parts;
  std::string out_dir, model;
};

// Documents, tokens, tokens/s and, with --max-tokens, an ETA, on stderr when it is a terminal.
class ScanProgressLine {
 public:
  ScanProgressLine(int64_t max_tokens, bool wanted) : max_tokens_(max_tokens), enabled_(wanted && ::isatty(2) == 1) {}
  ~ScanProgressLine() {
    if (enabled_) std::fprintf(stderr, "\r\033[K");
  }
  void update(const ScanProgress& p) {
    if (!enabled_) return;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = dt > 0 ? static_cast<double>(p.tokens) / dt : 0.0;
    std::string eta;
    if (max_tokens_ > 0 && rate > 0)
      eta = ", ETA " + std::to_string(static_cast<long>(static_cast<double>(max_tokens_ - p.tokens) / rate)) + " s";
    std::fprintf(stderr, "\ratlas: %ld documents, %ld tokens, %.0f tok/s%s\033[K", static_cast<long>(p.documents),
                 static_cast<long>(p.tokens), rate, eta.c_str());
    std::fflush(stderr);
  }

 private:
  int64_t max_tokens_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

int run_atlas_scan(AtlasOptions& o) {
  if (o.model.empty()) throw Error("atlas: --model is required");
  const AtlasSettings settings = plan_atlas(o.run);
  Session session = open_session(o.model);
  ScanProgressLine progress(o.run.max_tokens, rank_index() == 0);
  o.run.progress = [&](const ScanProgress& p) { progress.update(p); };
  const AtlasRunSummary s = run_atlas(session, o.run, settings);
  if (s.skipped_lines > 0)
    std::cerr << "neurontrace: warning: skipped " << s.skipped_lines << " malformed corpus line(s)\n";
  if (rank_index() != 0) return 0;  // only rank 0 prints
  std::cout << "atlas: ";
  if (s.ranks > 1) std::cout << s.ranks << " ranks, ";
  std::cout << s.documents << " documents, " << s.tokens << " tokens, " << s.units << " units -> " << o.run.out_dir
            << "\n";
  return 0;
}

int run_atlas_merge(const MergeOptions& o) {
  const AtlasRunSummary s = merge_atlas(o.parts, o.out_dir, o.model);
  std::cout << "atlas merge: " << o.parts.size() << " parts, " << s.documents << " documents, " << s.tokens
            << " tokens -> " << o.out_dir << "\n";
  return 0;
}

int run_atlas_query(const AtlasQueryOptions& o) {
  std::cout << query_atlas(o).table;
  return 0;
}

}  // namespace

Command add_atlas(CLI::App& app) {
  auto o = std::make_shared<AtlasOptions>();
  auto m = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand("atlas", "Scan a corpus: statistics, top contexts and samples of every unit");
  cmd->add_option("-m,--model", o->model, "Model folder in Hugging Face layout");
  cmd->add_option("--corpus", o->run.corpus, "Corpus file(s): JSONL (.jsonl) or plain text, gzip'd or not");
  cmd->add_option("--text-field", o->run.text_field, "JSONL field holding the text")->capture_default_str();
  cmd->add_flag("--skip-bad-lines", o->run.skip_bad_lines, "Skip malformed JSONL lines (counted in a warning)");
  cmd->add_option("--site", o->run.sites, "Hook site(s), every layer: mlp.hook_post, hook_resid_post, ... (repeatable; default mlp.hook_post, "
                 "or only the SAEs' latents with --sae)");
  cmd->add_option("--sae", o->run.saes, "SAE whose latents are units too (SAELens folder, Gemma Scope params.npz or Hub id ORG/REPO[/FOLDER]; "
                  "repeatable): the site <hook>.hook_sae_acts_post");
  cmd->add_option("--context", o->run.context, "Tokens per window (BOS included)")->capture_default_str();
  cmd->add_option("--top", o->run.top_k, "Top contexts kept per unit")->capture_default_str();
  cmd->add_option("--samples", o->run.samples, "Hash-chosen sample contexts per unit")->capture_default_str();
  cmd->add_option("--threshold", o->run.threshold, "Density: also count tokens above this value")->capture_default_str();
  cmd->add_option("--max-tokens", o->run.max_tokens, "Stop after this many corpus tokens (0: all)")->capture_default_str();
  cmd->add_option("--batch", o->run.batch, "Windows per forward step")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--checkpoint-every", o->run.checkpoint_every, "Documents between checkpoints (0: none)")
      ->capture_default_str();
  cmd->add_option("--shard", o->run.shard, "Scan shard I of N (documents with index % N == I): I/N");
  cmd->add_option("--out", o->run.out_dir, "Output folder");
  CLI::App* merge = cmd->add_subcommand("merge", "Merge the parts of a sharded scan into one atlas");
  merge->add_option("parts", m->parts, "Part folders (or their atlas.safetensors)")->required();
  merge->add_option("--out", m->out_dir, "Output folder")->required();
  merge->add_option("-m,--model", m->model, "Model folder (default: the one the parts recorded)");
  auto q = std::make_shared<AtlasQueryOptions>();
  CLI::App* query = cmd->add_subcommand("query", "Rank an atlas's units by how concentrated their top contexts are on a concept");
  query->add_option("dir", q->dir, "Atlas folder (or its atlas.safetensors)")->required();
  add_words_option(*query, q->words)->required();
  query->add_option("--window", q->window, "A word counts within this many tokens of the context's token")
      ->capture_default_str();
  query->add_option("--rows", q->rows, "Rows of the table")->capture_default_str();
  query->add_option("--csv", q->csv, "CSV of every unit (default: DIR/concept_<words>.csv)");
  query->add_option("-m,--model", q->model, "Model folder for the tokenizer (default: the one the atlas recorded)");
  cmd->require_subcommand(0, 1);
  Runner run_merge = [m] { return run_atlas_merge(*m); };
  merge->final_callback([] {});
  return {cmd, naming_flags({{"atlas.context", "--context"},
                             {"atlas.top_k", "--top"},
                             {"atlas.samples", "--samples"},
                             {"atlas.batch", "--batch"},
                             {"atlas.max_tokens", "--max-tokens"},
                             {"atlas.shard", "--shard"},
                             {"atlas.words", "--words"},
                             {"atlas.window", "--window"},
                             {"shard", "--shard"}},
                            [o, q, merge, query, run_merge] {
                              if (query->parsed()) return run_atlas_query(*q);
                              return merge->parsed() ? run_merge() : run_atlas_scan(*o);
                            })};
}

}  // namespace nt::cli
