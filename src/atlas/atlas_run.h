#pragma once
// `neurontrace atlas` as library calls, run by the CLI and by the Python module: scan a corpus into
// an atlas folder (atlas_output.h), or one shard of it into a part; under mpirun, every rank scans
// a shard and rank 0 merges their states; merge the parts of a sharded scan (`atlas merge`); rank an
// atlas's units by a concept (`atlas query`, concept_query.h).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "atlas/atlas_scan.h"
#include "atlas/atlas_settings.h"
#include "atlas/concept_query.h"
#include "runtime/session.h"

namespace nt {

// The atlas command's options, named as its flags are.
struct AtlasRunOptions {
  std::vector<std::string> corpus;  // files: JSONL or plain text, gzip'd or not
  std::string text_field = "text";
  bool skip_bad_lines = false;
  std::vector<std::string> sites;  // none: mlp.hook_post, or only the SAEs' latents when saes are given
  std::vector<std::string> saes;
  int context = 128, top_k = 20, samples = 20, batch = 8;
  double threshold = 1.0;
  int64_t max_tokens = 0, checkpoint_every = 100;
  std::string shard;  // "I/N", or empty: the whole corpus
  std::string out_dir;
  std::function<void(const ScanProgress&)> progress;  // per document (on rank 0 under mpirun)
};

struct AtlasRunSummary {
  int ranks = 1;
  int64_t documents = 0, tokens = 0;
  size_t units = 0;
  int64_t skipped_lines = 0;  // malformed corpus lines skipped (skip_bad_lines), by this process
  bool part = false;          // a shard's part for `atlas merge` (atlas.safetensors only)
};

// The settings of the scan this process runs (its shard under mpirun). Throws nt::Error
// (nt::OptionError for a bad value) for what is wrong before loading a model.
AtlasSettings plan_atlas(const AtlasRunOptions& options);
// Scans `settings`' shard of the corpus into options.out_dir, resuming from the checkpoint a killed
// scan left there, and writes the atlas (a part when sharded). Under mpirun, the ranks' states are
// reduced to rank 0 (cluster/atlas_ranks.h), which writes the atlas; the other ranks return after.
AtlasRunSummary run_atlas(const Session& session, const AtlasRunOptions& options, const AtlasSettings& settings);

// `atlas merge`: the parts (folders or their atlas.safetensors) of one sharded scan into the atlas of
// the whole corpus in `out_dir`. `model`: empty for the one the parts recorded.
AtlasRunSummary merge_atlas(const std::vector<std::string>& parts, const std::string& out_dir, const std::string& model);

struct AtlasQueryOptions {
  std::string dir;    // atlas folder or its atlas.safetensors
  std::string model;  // for the tokenizer; empty: the one the atlas recorded
  std::string csv;    // empty: DIR/concept_<words>.csv
  std::vector<std::string> words;
  int window = kConceptWindow;
  int rows = 20;
};

struct AtlasQueryResult {
  std::string table;     // the first rows, for the terminal
  std::string csv_file;  // where the CSV of every unit was written
  std::string csv;
};

AtlasQueryResult query_atlas(const AtlasQueryOptions& options);

}  // namespace nt
