#pragma once
// The recorder: observers on every layer of the traced sites that keep streaming statistics per
// sequence and neuron while the model generates, for one or more position settings at once (a
// study compares `last` with `generated` from a single generation). When a sequence finishes its
// statistics become a SampleSummary and are merged into its group's token statistics; memory
// follows the sequences in flight, not the number of generated tokens.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "tokenizer/tokenizer.h"
#include "trace/neuron_layout.h"
#include "trace/token_selector.h"
#include "trace/token_stats.h"

namespace nt {

enum class Positions {
  Last,       // only the last generated token (the notes' first variant)
  Generated,  // every generated token (default)
  Prompt,     // the prompt tokens
  All,        // prompt and generated tokens
};
Positions parse_positions(const std::string& name);  // throws nt::Error
std::string positions_name(Positions p);

struct RecorderOptions {
  std::vector<TraceSite> sites{HookSite::ResidPost};
  std::vector<Positions> settings{Positions::Generated};
  bool skip_first = false;                  // ignore position 0 (BOS / the first prompt token)
  const TokenSelector* selector = nullptr;  // record only matching tokens (and their window)
  bool keep_rows = false;                   // keep every recorded row (for --dump-activations), setting 0
};

// One sequence under one position setting: per-neuron statistics over its recorded tokens.
// Finished samples live in an unlinked temporary file, not in memory, so resident memory stays
// flat however many prompts a run traces (a GPT-2-small sample is ~0.5 MB per setting).
enum class SampleStat { Mean = 0, MeanAbs = 1, Max = 2 };
struct SampleSummary {
  int64_t n_tokens = 0;
  std::vector<float> mean, mean_abs, max;
};

// The raw rows kept for a dump: token, position, sequence, and every traced neuron's activation.
struct RecordedRows {
  std::vector<int> seq, pos, token;
  std::vector<float> acts;  // [rows, layout.total]
};

class Recorder {
 public:
  // group_of_seq[i]: the group (concept, baseline, ...) of sequence i; groups are 0..n_groups-1.
  Recorder(const ModelConfig& config, const Tokenizer& tokenizer, RecorderOptions options,
           std::vector<int> group_of_seq, int n_groups);
  void attach(Hooks& hooks);
  // Folds a finished sequence into its summary and group statistics, and frees its buffers.
  void sequence_done(int seq);

  const NeuronLayout& layout() const { return layout_; }
  const RecorderOptions& options() const { return options_; }
  SampleSummary sample(size_t setting, int seq) const;  // read back from the sample store
  int64_t n_tokens(size_t setting, int seq) const;
  float sample_value(size_t setting, int seq, SampleStat stat, size_t neuron) const;
  const TokenStats& group(size_t setting, int group) const;
  int group_of(int seq) const { return group_of_seq_.at(static_cast<size_t>(seq)); }
  const RecordedRows& rows() const { return rows_; }

  // Put back what an earlier run recorded (a resumed study): a finished sequence's summary, and a
  // group's token statistics once all its sequences are restored.
  void restore_sample(size_t setting, int seq, SampleSummary summary);
  void restore_group(size_t setting, int group, TokenStats stats);

 private:
  void begin_step(const HookContext& ctx);
  // acts: rows of the site's units; row_at[r] is the row holding step row r (-1: not given).
  void observe(const HookContext& ctx, int site, const float* acts, const int* row_at);
  // An SAE's hook: encodes the rows some setting records, in chunks, and observes its sites.
  void observe_sae(const HookContext& ctx, const Sae& sae, const std::vector<int>& sites, const float* x);
  // The latents, sparsely: only the active ones update the statistics.
  void observe_latents(const HookContext& ctx, int site, const float* latents, const int* row_at);
  bool wanted(Positions p, const RowInfo& row) const;

  NeuronLayout layout_;
  const Tokenizer& tokenizer_;
  RecorderOptions options_;
  std::vector<int> group_of_seq_;
  std::vector<std::vector<std::unique_ptr<SequenceSums>>> in_flight_;  // [setting][seq]
  // [setting][seq] Positions::Last: the latest recorded token's activations, turned into the
  // sequence's statistics when it finishes (copying a token is much cheaper than resetting and
  // re-accumulating the statistics at every token).
  std::vector<std::vector<std::vector<float>>> last_acts_;
  void store_sample(size_t setting, int seq, const SampleSummary& summary);
  std::vector<std::vector<int64_t>> n_tokens_;                       // [setting][seq]
  std::vector<std::vector<int64_t>> sample_offset_;                  // [setting][seq] byte offset in the store, -1: none
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> store_{nullptr, &std::fclose};
  int64_t store_end_ = 0;
  std::vector<std::vector<TokenStats>> groups_;                      // [setting][group]
  std::vector<int> window_until_;                                    // [seq] last position in a match window
  std::vector<std::vector<char>> step_mask_;                         // [setting][row of the step]
  std::vector<char> step_any_;                                       // [row of the step] recorded or dumped
  std::vector<int> step_rows_;                                       // [row of the step] its own index
  std::vector<int> step_dump_row_;                                   // [row of the step] -> rows_ index or -1
  RecordedRows rows_;
};

}  // namespace nt
