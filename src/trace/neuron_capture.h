#pragma once
// Per-token activations of a few chosen neurons over whole texts (prompt + generation), for the
// neuron pages: the sequences are run again, teacher-forced, in one batched step per chunk, with an
// observer that keeps only the chosen neurons.
#include <vector>

#include "model/model.h"
#include "trace/trace_site.h"

namespace nt {

struct CaptureNeuron {
  TraceSite site;  // a hook site, or an SAE's (its units computed from the hook's rows)
  int layer = 0;
  int index = 0;
};

// result[seq][token][k]: activation of neurons[k] at token `token` of sequences[seq].
std::vector<std::vector<std::vector<float>>> capture_neurons(Model& model, const std::vector<std::vector<int>>& sequences,
                                                             const std::vector<CaptureNeuron>& neurons,
                                                             int max_rows_per_step = 2048);

}  // namespace nt
