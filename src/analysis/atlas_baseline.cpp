#include "analysis/atlas_baseline.h"

#include <cmath>

#include "atlas/model_atlas.h"
#include "util/option_error.h"

namespace nt {

void check_atlas_baseline(const AnalysisOptions& options) {
  if (options.rank_by != RankBy::Mean)
    throw OptionError("trace.baseline_atlas", "an atlas holds token means: it needs the mean ranked (--rank-by mean, "
                                              "trace.rank_by \"mean\"; got " + rank_by_name(options.rank_by) + ")");
}

BaselineStats atlas_baseline(const std::string& dir, const Session& session, const NeuronLayout& layout) {
  const ModelAtlas atlas = load_model_atlas(dir, session, layout);
  BaselineStats b;
  b.from_atlas = true;
  b.mean.assign(layout.total, 0.0);
  b.std_tokens.assign(layout.total, 0.0);
  b.density.assign(layout.total, 0.0);
  for (size_t u = 0; u < layout.total; ++u) {
    b.mean[u] = atlas.state.moments[atlas.units[u]].mean;
    b.std_tokens[u] = std::sqrt(atlas.state.variance(atlas.units[u]));
    b.density[u] = atlas.state.density(atlas.units[u]);
  }
  return b;
}

}  // namespace nt
