#include "atlas/atlas_run.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "atlas/atlas_output.h"
#include "atlas/atlas_state.h"
#include "atlas/concept_query.h"
#include "atlas/corpus_reader.h"
#include "atlas/logit_effects.h"
#include "cluster/atlas_ranks.h"
#include "cluster/ranks.h"
#include "cluster/shard.h"
#include "io/model_config.h"
#include "io/model_identity.h"
#include "sae/sae_identity.h"
#include "trace/trace_site.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"
#include "util/option_error.h"

namespace nt {

namespace {

constexpr const char* kCheckpoint = "/atlas.checkpoint.safetensors";

struct ScanResult {
  AtlasState state;
  int64_t skipped_lines = 0;
};

// Scans `settings`' shard of the corpus into `out_dir`, resuming from its checkpoint when a scan
// there was killed, and saving checkpoints as it goes (removed by the caller once the outputs exist).
ScanResult scan_atlas(const AtlasRunOptions& o, AtlasSettings settings, const std::string& out_dir,
                      const Session& session, bool show_progress) {
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
  if (show_progress) control.progress = o.progress;
  scan_corpus(session, reader, state, control, first, budget);
  return {std::move(state), reader.bad_lines()};
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

AtlasRunSummary summary_of(const AtlasState& state) {
  AtlasRunSummary s;
  s.documents = state.documents;
  s.tokens = state.tokens;
  s.units = state.layout.total;
  return s;
}

// mpirun -np N: rank R scans shard R/N (and keeps it as a part in OUT/ranks/part-R), the ranks'
// states are reduced to rank 0 (cluster/atlas_ranks.h), which writes the atlas to OUT.
AtlasRunSummary run_atlas_on_ranks(const Session& session, const AtlasRunOptions& o, const AtlasSettings& settings) {
  const int me = rank_index();
  const std::string part_dir = o.out_dir + "/ranks/part-" + std::to_string(me);
  ScanResult scan = scan_atlas(o, settings, part_dir, session, me == 0);
  save_atlas_part(part_dir, scan.state);
  AtlasRunSummary summary = summary_of(scan.state);
  reduce_atlas_to_rank0(scan.state);
  if (me == 0) {
    write_whole_atlas(o.out_dir, scan.state, session);
    summary = summary_of(scan.state);
  }
  summary.ranks = rank_count();
  summary.skipped_lines = scan.skipped_lines;
  return summary;
}

}  // namespace

AtlasSettings plan_atlas(const AtlasRunOptions& o) {
  if (o.corpus.empty()) throw Error("atlas: --corpus is required");
  if (o.out_dir.empty()) throw Error("atlas: --out is required");
  if (rank_count() > 1 && !o.shard.empty())
    throw Error("--shard: not under mpirun (the ranks already split the scan)");
  const Shard shard = rank_count() > 1 ? Shard{rank_index(), rank_count()}
                      : o.shard.empty() ? Shard{}
                                        : parse_shard(o.shard);
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
  if (o.batch < 1 || o.batch > 4096) throw OptionError("atlas.batch", "must be between 1 and 4096");
  return settings;
}

AtlasRunSummary run_atlas(const Session& session, const AtlasRunOptions& o, const AtlasSettings& settings) {
  if (rank_count() > 1) return run_atlas_on_ranks(session, o, settings);
  const ScanResult scan = scan_atlas(o, settings, o.out_dir, session, true);
  if (settings.shard_count > 1) {
    save_atlas_part(o.out_dir, scan.state);
  } else {
    write_whole_atlas(o.out_dir, scan.state, session);
    std::filesystem::remove(o.out_dir + kCheckpoint);
  }
  AtlasRunSummary summary = summary_of(scan.state);
  summary.part = settings.shard_count > 1;
  summary.skipped_lines = scan.skipped_lines;
  return summary;
}

AtlasRunSummary merge_atlas(const std::vector<std::string>& parts, const std::string& out_dir, const std::string& model) {
  const AtlasSettings first = check_atlas_parts(parts);
  const std::string model_dir = model.empty() ? first.model.value("path", "") : model;
  Session session = open_session(model_dir);
  if (model_identity(session.model_dir, session.model->config()).fingerprint != first.model.value("fingerprint", ""))
    throw Error("atlas merge: " + quote_for_message(model_dir, 300) + " is not the model the parts were scanned with");
  const AtlasState merged = merge_atlas_parts(parts, session);
  write_whole_atlas(out_dir, merged, session);
  return summary_of(merged);
}

AtlasQueryResult query_atlas(const AtlasQueryOptions& o) {
  const std::vector<std::string> words = concept_words(o.words);
  const std::string file = part_file(o.dir);
  const AtlasSettings settings = read_atlas_settings(file);
  const std::string model = o.model.empty() ? settings.model.value("path", "") : o.model;
  const LoadedAtlasState loaded = load_atlas_state(file, load_model_config(model));
  const auto tokenizer = load_tokenizer(model);
  const ConceptQuery q = concept_query(loaded.state, *tokenizer, words, o.window);
  AtlasQueryResult result;
  result.table = concept_query_text(loaded.state, q, static_cast<size_t>(std::max(0, o.rows)));
  result.csv_file = o.csv;
  if (result.csv_file.empty()) {
    result.csv_file = o.dir + "/concept";
    for (const auto& w : words) result.csv_file += "_" + w;
    result.csv_file += ".csv";
  }
  result.csv = concept_query_csv(loaded.state, q);
  make_directories(std::filesystem::path(result.csv_file).parent_path().string());
  write_file_atomic(result.csv_file, result.csv);
  return result;
}

}  // namespace nt
