#pragma once
// neurontrace._core.Model: a loaded model (nt::Session) with generation, run_with_cache and Python
// hooks. One computation at a time per model (the forward pass keeps its scratch buffers in the
// model); the GIL is released while it runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "analysis/concept_trace.h"
#include "atlas/atlas_run.h"
#include "python_hooks.h"
#include "runtime/generator.h"
#include "runtime/session.h"
#include "steer/steer_run.h"

namespace nt::python {

// A prompt given as text or as token ids.
using Prompt = std::variant<std::string, std::vector<int>>;

class PythonModel {
 public:
  PythonModel(const std::string& model, const std::string& weights);

  py::dict config() const;
  std::vector<std::string> hook_points() const;
  std::vector<int> to_tokens(const std::string& text) const;
  py::str to_string(const std::vector<int>& ids) const;  // bytes that are not UTF-8: U+FFFD

  py::list generate(const std::vector<Prompt>& prompts, const GenerationConfig& config);
  // (logits [batch, pos, vocab], {name: [batch, pos, width]}, lengths [batch]); padding rows are 0.
  py::tuple run_with_cache(const std::vector<Prompt>& prompts, const std::vector<std::string>& names);

  // `neurontrace trace` on this model with its hooks: (trace.json as text, the consistency tables).
  std::pair<std::string, std::string> trace(ConceptTraceOptions options);
  // `neurontrace steer --json` on this model (which must have no hooks: the steering is the
  // intervention), as text.
  std::string steer(const SteerRunOptions& options);
  // `neurontrace atlas` with this model (which must have no hooks: the atlas describes the model as
  // loaded) into options.out_dir; Ctrl-C stops it between documents, leaving its checkpoint.
  AtlasRunSummary atlas(AtlasRunOptions options);

  void add_hook(const std::string& name, py::function fn);
  void reset_hooks() { hooks_.clear(); }
  std::vector<PythonHook>& hooks() { return hooks_; }
  void set_hooks(std::vector<PythonHook> hooks) { hooks_ = std::move(hooks); }

  Session& session() { return session_; }

 private:
  std::vector<std::vector<int>> encode(const std::vector<Prompt>& prompts) const;
  // Every point a name covers: "blocks.1.mlp.hook_post" one, "mlp.hook_post" every layer's.
  std::vector<HookPoint> points_of(const std::string& name) const;

  Session session_;
  std::string weights_;
  std::vector<PythonHook> hooks_;
  std::mutex busy_;
  std::atomic<std::thread::id> owner_{};
  friend class Computing;
};

// Held while a model computes (taken with the GIL released): waits for another thread's
// computation, and refuses a call made from inside one of this model's own hooks.
class Computing {
 public:
  explicit Computing(PythonModel& model);
  ~Computing();
  Computing(const Computing&) = delete;
  Computing& operator=(const Computing&) = delete;

 private:
  PythonModel& model_;
};

// The user's hooks as nt::Hooks (kept alive by `snapshot`, which the caller holds).
Hooks make_hooks(const ModelConfig& config, const std::vector<PythonHook>& snapshot);

}  // namespace nt::python
