#pragma once
// One forward step's activations at one (site, layer) folded into the AtlasState: what the scan's
// hooks call. Rows are the step's tokens; only counted rows (not left context, not BOS) update the
// statistics; a record stores the unit's activations over the row's whole window.
#include <cstdint>
#include <vector>

#include "atlas/atlas_state.h"

namespace nt {

struct StepRows {
  std::vector<int> counted;           // indices of the counted rows
  std::vector<int64_t> doc;           // [rows]
  std::vector<int32_t> pos;           // [rows] position in the document (-1 for BOS)
  std::vector<int32_t> window_begin;  // [rows] first row of the row's window
  std::vector<int32_t> window_end;    // [rows]
  std::vector<uint64_t> hash;         // [rows] token_hash(doc, pos)
  std::vector<int32_t> window;        // [rows] index of the row's window in the step
  std::vector<WindowTokens> window_tokens;  // [windows]
};

struct FoldScratch;  // a slice's reusable buffers (unit_update.cpp)

class UnitUpdater {
 public:
  explicit UnitUpdater(AtlasState& state);
  // Folds acts [rows, width] of site `site` (index into the layout), layer `layer` into the state.
  // Split over the thread pool by units. The state's token count is updated by the caller after
  // every site and layer of the step has been folded.
  void fold(const StepRows& rows, int site, int layer, const float* acts, int width);

 private:
  void fold_slice(const StepRows& rows, size_t unit0, size_t i0, size_t i1, const float* acts, size_t width);
  // Units [c0, c0 + N) of the site and layer starting at flat unit `unit0`, over every counted row.
  template <size_t N>
  void fold_block(const StepRows& rows, size_t unit0, size_t c0, const float* acts, size_t width, FoldScratch& scratch);
  AtlasState& state_;
  std::vector<uint64_t> salt_;       // [units]
  std::vector<float> top_floor_;     // [units] value of the K-th top record (-inf until K are kept)
  std::vector<uint64_t> sample_ceiling_;  // [units] hash of the last sample (max until full)
};

}  // namespace nt
