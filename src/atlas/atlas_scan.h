#pragma once
// The atlas scan: documents -> token windows (document_windows.h) -> batched prefill with hooks on
// the atlas's sites -> every unit's statistics updated in the AtlasState. Prefill only: no logits,
// and blocks after the deepest site are not run.
#include <cstdint>
#include <functional>
#include <vector>

#include "atlas/atlas_state.h"
#include "atlas/corpus_reader.h"
#include "runtime/session.h"

namespace nt {

struct ScanProgress {
  int64_t documents = 0;  // documents read so far (any shard)
  int64_t tokens = 0;     // tokens counted by this scan
};

struct ScanControl {
  int batch_windows = 8;             // windows per forward step
  int64_t checkpoint_every = 0;      // documents between checkpoints (0: none)
  // Called with the state and the first document index not yet scanned, at a batch boundary.
  std::function<void(const AtlasState&, int64_t next_document, int64_t budget_left)> checkpoint;
  std::function<void(const ScanProgress&)> progress;
};

// Scans the documents of `reader` from `first_document` on that the state's shard owns
// (AtlasSettings::owns), counting at most `budget` tokens of the whole corpus (-1: no limit), into
// `state`. Resuming from a checkpoint passes its next document and budget.
void scan_corpus(const Session& session, CorpusReader& reader, AtlasState& state, const ScanControl& control,
                 int64_t first_document = 0, int64_t budget = -1);

}  // namespace nt
