#pragma once
// Observers and interventions attached to hook points. A hook function is called once per forward
// step with the rows of the batch that step computed and their activations, rows x width,
// row-major; it may read them (an observer) or rewrite them in place (an intervention). Functions on
// one point run in the order they were added. A point nobody registered is one branch in the model.
#include <functional>
#include <span>
#include <vector>

#include "hooks/hook_point.h"

namespace nt {

// What a hook knows about one row of a step.
struct RowInfo {
  int seq = 0;             // sequence id (the prompt's index)
  int pos = 0;             // position in the sequence (0 = first prompt token)
  bool generated = false;  // the row's token was generated (false: a prompt token)
  int token = -1;          // the row's token id
};

struct HookContext {
  HookPoint point;
  std::span<const RowInfo> rows;
  int width = 0;
};

using HookFn = std::function<void(const HookContext& ctx, float* acts)>;

class Hooks {
 public:
  explicit Hooks(const ModelConfig& config);
  // Throws nt::Error when the model has no such point (check_hook_point).
  void add(HookPoint point, HookFn fn);
  bool any(HookPoint point) const { return !slot(point).empty(); }
  void run(HookPoint point, std::span<const RowInfo> rows, float* acts, int width) const;

 private:
  const std::vector<HookFn>& slot(HookPoint p) const;
  std::vector<HookFn>& slot(HookPoint p);
  ModelConfig config_;
  std::vector<std::vector<HookFn>> slots_;
};

}  // namespace nt
