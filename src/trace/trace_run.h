#pragma once
// One generation over several prompt groups (concepts and the baseline share batches), recorded
// by one Recorder for every position setting asked for.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/generator.h"
#include "runtime/session.h"
#include "trace/recorder.h"

namespace nt {

struct PromptGroup {
  std::string name;
  std::vector<std::string> prompts;
};

struct TraceRun {
  std::vector<std::string> group_names;
  std::vector<std::string> texts;          // [seq] prompt text
  std::vector<int> group_of_seq;           // [seq]
  std::vector<GenerationResult> generations;  // [seq]
  std::unique_ptr<Recorder> recorder;

  std::vector<int> seqs_of(int group) const;
  int group_index(const std::string& name) const;  // -1 when absent
};

// Generates from every prompt of every group (KV cache, batched) and records the traced sites.
// `hooks` may carry interventions that run before the recorder sees the activations.
TraceRun run_trace(Session& session, const std::vector<PromptGroup>& groups, const RecorderOptions& options,
                   GenerationConfig gen, Hooks* hooks = nullptr,
                   std::function<void(const GenerationProgress&)> progress = {});

}  // namespace nt
