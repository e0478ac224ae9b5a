#pragma once
// An atlas read for a traced run (trace/study --baseline-atlas, --atlas): checked to be scanned
// with the session's model and to hold every traced site, with each traced unit's atlas unit.
#include <string>
#include <vector>

#include "atlas/atlas_state.h"
#include "runtime/session.h"
#include "trace/neuron_layout.h"

namespace nt {

struct ModelAtlas {
  std::string file;           // DIR/atlas.safetensors
  AtlasState state;
  std::vector<size_t> units;  // per unit of the traced layout, its flat index in state
};

// Throws nt::Error (one line naming the atlas) when DIR's atlas was scanned with another model
// (fingerprint) or lacks a site of `layout`.
ModelAtlas load_model_atlas(const std::string& dir, const Session& session, const NeuronLayout& layout);

}  // namespace nt
