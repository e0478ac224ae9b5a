// neurontrace atlas: scan a corpus and keep, for every unit of the chosen sites, its statistics,
// top contexts and samples (src/atlas/); `atlas merge` combines the parts of a sharded scan, and
// under mpirun the ranks scan one shard each and rank 0 merges them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "atlas/atlas_output.h"
#include "atlas/atlas_scan.h"
#include "atlas/concept_query.h"
#include "cluster/atlas_ranks.h"
#include "cluster/ranks.h"
#include "cluster/shard.h"
#include "commands.h"
#include "io/model_config.h"
#include "io/model_identity.h"
#include "sae/sae_identity.h"
#include "trace/trace_site.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt::cli {

namespace {

struct AtlasOptions {
  std::string model, out_dir, shard, text_field = "text";
  std::vector<std::string> corpus, sites, saes;
  bool skip_bad_lines = false;
  int context = 128, top_k = 20, samples = 20, batch = 8;
  double threshold = 1.0;
  int64_t max_tokens = 0, checkpoint_every = 100;
};

struct QueryOptions {
  std::string dir, model, csv;
  std::vector<std::string> words;
  int window = 5;
  int rows = 20;
};

struct MergeOptions {
  std::vector<std::string> parts;
  std::string out_dir, model;
};

constexpr const char* kCheckpoint = "/atlas.checkpoint.safetensors";

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

// The settings of a scan of shard `shard` with these options.
AtlasSettings scan_settings(const AtlasOptions& o, const Shard& shard) {
  AtlasSettings settings;
  settings.sites.clear();
  for (const auto& s : o.sites) settings.sites.push_back(parse_layer_site(s, "atlas site"));
  if (o.sites.empty() && o.saes.empty()) settings.sites.push_back(HookSite::MlpPost);
  settings.saes = o.saes;
  settings.context = o.context;
  settings.top_k = o.top_k;
  settings.samples = o.samples;
  settings.threshold = o.threshold;
  settings.max_tokens = o.max_tokens;
  settings.shard_index = shard.index;
  settings.shard_count = shard.count;
  settings.check();
  return settings;
}

// Scans `settings`' shard of the corpus into `out_dir`, resuming from its checkpoint when a scan
// there was killed, and saving checkpoints as it goes (removed by the caller once the outputs exist).
AtlasState scan_atlas(const AtlasOptions& o, AtlasSettings settings, const std::string& out_dir, const Session& session,
                      bool show_progress) {
  CorpusOptions corpus{o.corpus, o.text_field, o.skip_bad_lines};
  CorpusReader reader(corpus);
  settings.corpus = nlohmann::json::parse(corpus_fingerprint(corpus));
  settings.model = model_identity(session.model_dir, session.model->config()).to_json();
  for (const auto& sae : load_saes(o.saes, session.model->config())) settings.sae_ids.push_back(sae_identity(*sae));
  AtlasState state(settings, atlas_layout(settings, session.model->config()));
  int64_t first = 0, budget = o.max_tokens > 0 ? o.max_tokens : -1;
  const std::string checkpoint = out_dir + kCheckpoint;
  if (std::filesystem::exists(checkpoint)) {  // resume where a killed scan stopped
    LoadedAtlasState saved = load_atlas_state(checkpoint, session.model->config());
    const std::string diff = settings.difference(saved.state.settings);
    if (!diff.empty() || saved.state.settings.shard_index != settings.shard_index)
      throw Error(quote_for_message(checkpoint, 300) + ": a checkpoint of another scan (" +
                  (diff.empty() ? "shard" : diff) + " differs); remove it or choose another --out");
    state = std::move(saved.state);
    first = saved.extra.at("next_document").get<int64_t>();
    budget = saved.extra.at("budget_left").get<int64_t>();
  }
  make_directories(out_dir);
  ScanControl control;
  control.batch_windows = o.batch;
  control.checkpoint_every = o.checkpoint_every;
  control.checkpoint = [&](const AtlasState& s, int64_t next, int64_t left) {
    save_atlas_state(checkpoint, s, {{"complete", false}, {"next_document", next}, {"budget_left", left}});
  };
  ScanProgressLine progress(o.max_tokens, show_progress);
  control.progress = [&](const ScanProgress& p) { progress.update(p); };
  scan_corpus(session, reader, state, control, first, budget);
  if (reader.bad_lines() > 0)
    std::cerr << "neurontrace: warning: skipped " << reader.bad_lines() << " malformed corpus line(s)\n";
  return state;
}

// A scanned shard saved as a part for `atlas merge`, its checkpoint removed.
void save_atlas_part(const std::string& out_dir, const AtlasState& state) {
  save_atlas_state(out_dir + "/atlas.safetensors", state, {{"complete", true}});
  std::filesystem::remove(out_dir + kCheckpoint);
}

// The atlas files (atlas.safetensors, unit JSON, HTML) of the whole corpus.
void write_whole_atlas(const std::string& out_dir, const AtlasState& state, const Session& session) {
  write_atlas(out_dir, state, *session.tokenizer, logit_effects(session.model_dir, session.model->config(), state.layout));
}

void check_scan_options(const AtlasOptions& o) {
  if (o.model.empty()) throw Error("atlas: --model is required");
  if (o.corpus.empty()) throw Error("atlas: --corpus is required");
  if (o.out_dir.empty()) throw Error("atlas: --out is required");
}

std::string part_file(const std::string& part) {
  return std::filesystem::is_directory(part) ? part + "/atlas.safetensors" : part;
}

// The parts' settings (cheap to read), so mismatched parts are refused before anything is loaded:
// the same settings, every shard once. Returns the first part's.
AtlasSettings check_atlas_parts(const std::vector<std::string>& parts) {
  if (parts.empty()) throw Error("atlas merge: no parts given");
  const AtlasSettings first = read_atlas_settings(part_file(parts[0]));
  std::vector<int> seen(static_cast<size_t>(first.shard_count), 0);
  for (const auto& part : parts) {
    const AtlasSettings s = read_atlas_settings(part_file(part));
    const std::string diff = first.difference(s);
    if (!diff.empty())
      throw Error("atlas merge: " + quote_for_message(part, 300) + " and " + quote_for_message(parts[0], 300) +
                  " differ in " + diff);
    if (seen[static_cast<size_t>(s.shard_index)]++)
      throw Error("atlas merge: shard " + std::to_string(s.shard_index) + "/" + std::to_string(s.shard_count) +
                  " is given twice (" + quote_for_message(part, 300) + ")");
  }
  std::string missing;
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i]) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  if (!missing.empty())
    throw Error("atlas merge: missing shard(s) " + missing + " of " + std::to_string(first.shard_count));
  return first;
}

// The checked parts merged into the state of the whole corpus, as one process scans it.
AtlasState merge_atlas_parts(const std::vector<std::string>& parts, const Session& session) {
  std::optional<AtlasState> merged;
  for (const auto& part : parts) {
    LoadedAtlasState loaded = load_atlas_state(part_file(part), session.model->config());
    if (!loaded.extra.value("complete", false))
      throw Error("atlas merge: " + quote_for_message(part, 300) + " is an unfinished scan");
    if (!merged) merged = std::move(loaded.state);
    else merged->merge(loaded.state);
  }
  merged->settings.shard_index = 0;
  merged->settings.shard_count = 1;
  merged->shards = {0};
  return std::move(*merged);
}

// mpirun -np N: rank R scans shard R/N (and keeps it as a part in OUT/ranks/part-R), the ranks'
// states are reduced to rank 0 (cluster/atlas_ranks.h), which writes the atlas to OUT; only rank
// 0 prints.
int run_atlas_on_ranks(const AtlasOptions& o) {
  if (!o.shard.empty()) throw Error("--shard: not under mpirun (the ranks already split the scan)");
  const int me = rank_index();
  const std::string part_dir = o.out_dir + "/ranks/part-" + std::to_string(me);
  const AtlasSettings settings = scan_settings(o, Shard{me, rank_count()});
  Session session = open_session(o.model);
  AtlasState state = scan_atlas(o, settings, part_dir, session, me == 0);
  save_atlas_part(part_dir, state);
  reduce_atlas_to_rank0(state);
  if (me != 0) return 0;
  write_whole_atlas(o.out_dir, state, session);
  std::cout << "atlas: " << rank_count() << " ranks, " << state.documents << " documents, " << state.tokens
            << " tokens, " << state.layout.total << " units -> " << o.out_dir << "\n";
  return 0;
}

int run_atlas_scan(const AtlasOptions& o) {
  check_scan_options(o);
  if (rank_count() > 1) return run_atlas_on_ranks(o);
  const AtlasSettings settings = scan_settings(o, o.shard.empty() ? Shard{} : parse_shard(o.shard));
  Session session = open_session(o.model);
  const AtlasState state = scan_atlas(o, settings, o.out_dir, session, true);
  if (settings.shard_count > 1) {
    save_atlas_part(o.out_dir, state);
  } else {
    write_whole_atlas(o.out_dir, state, session);
    std::filesystem::remove(o.out_dir + kCheckpoint);
  }
  std::cout << "atlas: " << state.documents << " documents, " << state.tokens << " tokens, " << state.layout.total
            << " units -> " << o.out_dir << "\n";
  return 0;
}

int run_atlas_merge(const MergeOptions& o) {
  const AtlasSettings first = check_atlas_parts(o.parts);
  const std::string model = o.model.empty() ? first.model.value("path", "") : o.model;
  Session session = open_session(model);
  if (model_identity(session.model_dir, session.model->config()).fingerprint != first.model.value("fingerprint", ""))
    throw Error("atlas merge: " + quote_for_message(model, 300) + " is not the model the parts were scanned with");
  const AtlasState merged = merge_atlas_parts(o.parts, session);
  write_whole_atlas(o.out_dir, merged, session);
  std::cout << "atlas merge: " << o.parts.size() << " parts, " << merged.documents << " documents, "
            << merged.tokens << " tokens -> " << o.out_dir << "\n";
  return 0;
}

int run_atlas_query(const QueryOptions& o) {
  if (o.words.empty()) throw Error("--words: needs at least one word");
  if (o.window < 0) throw Error("--window: must not be negative");
  const std::string file = part_file(o.dir);
  const AtlasSettings settings = read_atlas_settings(file);
  const std::string model = o.model.empty() ? settings.model.value("path", "") : o.model;
  const LoadedAtlasState loaded = load_atlas_state(file, load_model_config(model));
  const auto tokenizer = load_tokenizer(model);
  const ConceptQuery q = concept_query(loaded.state, *tokenizer, o.words, o.window);
  std::cout << concept_query_text(loaded.state, q, static_cast<size_t>(std::max(0, o.rows)));
  std::string csv = o.csv;
  if (csv.empty()) {
    csv = o.dir + "/concept";
    for (const auto& w : o.words) csv += "_" + w;
    csv += ".csv";
  }
  write_output(csv, concept_query_csv(loaded.state, q));
  return 0;
}

}  // namespace

Command add_atlas(CLI::App& app) {
  auto o = std::make_shared<AtlasOptions>();
  auto m = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand("atlas", "Scan a corpus: statistics, top contexts and samples of every unit");
  cmd->add_option("-m,--model", o->model, "Model folder in Hugging Face layout");
  cmd->add_option("--corpus", o->corpus, "Corpus file(s): JSONL (.jsonl) or plain text, gzip'd or not");
  cmd->add_option("--text-field", o->text_field, "JSONL field holding the text")->capture_default_str();
  cmd->add_flag("--skip-bad-lines", o->skip_bad_lines, "Skip malformed JSONL lines (counted in a warning)");
  cmd->add_option("--site", o->sites, "Hook site(s), every layer: mlp.hook_post, hook_resid_post, ... (repeatable; default mlp.hook_post, "
                 "or only the SAEs' latents with --sae)");
  cmd->add_option("--sae", o->saes, "SAE whose latents are units too (SAELens folder, Gemma Scope params.npz or Hub id ORG/REPO[/FOLDER]; "
                  "repeatable): the site <hook>.hook_sae_acts_post");
  cmd->add_option("--context", o->context, "Tokens per window (BOS included)")->capture_default_str();
  cmd->add_option("--top", o->top_k, "Top contexts kept per unit")->capture_default_str();
  cmd->add_option("--samples", o->samples, "Hash-chosen sample contexts per unit")->capture_default_str();
  cmd->add_option("--threshold", o->threshold, "Density: also count tokens above this value")->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "Stop after this many corpus tokens (0: all)")->capture_default_str();
  cmd->add_option("--batch", o->batch, "Windows per forward step")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--checkpoint-every", o->checkpoint_every, "Documents between checkpoints (0: none)")
      ->capture_default_str();
  cmd->add_option("--shard", o->shard, "Scan shard I of N (documents with index % N == I): I/N");
  cmd->add_option("--out", o->out_dir, "Output folder");
  CLI::App* merge = cmd->add_subcommand("merge", "Merge the parts of a sharded scan into one atlas");
  merge->add_option("parts", m->parts, "Part folders (or their atlas.safetensors)")->required();
  merge->add_option("--out", m->out_dir, "Output folder")->required();
  merge->add_option("-m,--model", m->model, "Model folder (default: the one the parts recorded)");
  auto q = std::make_shared<QueryOptions>();
  CLI::App* query = cmd->add_subcommand("query", "Rank an atlas's units by how concentrated their top contexts are on a concept");
  query->add_option("dir", q->dir, "Atlas folder (or its atlas.safetensors)")->required();
  query->add_option("--words", q->words, "Concept words (comma-separated)")->delimiter(',')->required();
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
                             {"atlas.max_tokens", "--max-tokens"},
                             {"atlas.shard", "--shard"},
                             {"shard", "--shard"}},
                            [o, q, merge, query, run_merge] {
                              if (query->parsed()) return run_atlas_query(*q);
                              return merge->parsed() ? run_merge() : run_atlas_scan(*o);
                            })};
}

}  // namespace nt::cli
