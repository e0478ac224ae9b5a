#include "hooks/hooks.h"

namespace nt {

Hooks::Hooks(const ModelConfig& config)
    : config_(config), slots_(static_cast<size_t>(kHookSiteCount * (config.n_layer + 1))) {}

const std::vector<HookFn>& Hooks::slot(HookPoint p) const {
  return slots_[static_cast<size_t>(static_cast<int>(p.site) * (config_.n_layer + 1) + (p.layer + 1))];
}
std::vector<HookFn>& Hooks::slot(HookPoint p) {
  return slots_[static_cast<size_t>(static_cast<int>(p.site) * (config_.n_layer + 1) + (p.layer + 1))];
}

void Hooks::add(HookPoint point, HookFn fn) {
  check_hook_point(config_, point);
  slot(point).push_back(std::move(fn));
}

void Hooks::run(HookPoint point, std::span<const RowInfo> rows, float* acts, int width) const {
  const auto& s = slot(point);
  if (s.empty()) return;
  HookContext ctx{point, rows, width};
  for (const auto& fn : s) fn(ctx, acts);
}

}  // namespace nt
