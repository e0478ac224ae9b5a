#pragma once
// A trace's baseline from an atlas (--baseline-atlas): each traced unit's mean and standard
// deviation over the atlas's corpus tokens stand in for the baseline prompts' figures, so
// `subtract` takes the atlas mean and `zscore` its mean and standard deviation; the tables show
// the atlas's mean and density (share of tokens > 0) as the baseline's. The atlas has no samples,
// so the per-sample comparisons (Cohen's d, share above the baseline's p95) stay empty.
#include <string>

#include "analysis/consistency.h"
#include "runtime/session.h"

namespace nt {

// The baseline of `layout`'s units from DIR/atlas.safetensors. Throws nt::Error (one line naming
// the atlas) when the atlas was scanned with another model (fingerprint) or lacks a traced site.
// An atlas holds token means: the ranked statistic must be the mean. Throws
// nt::OptionError("trace.baseline_atlas") otherwise.
void check_atlas_baseline(const AnalysisOptions& options);

BaselineStats atlas_baseline(const std::string& dir, const Session& session, const NeuronLayout& layout);

}  // namespace nt
