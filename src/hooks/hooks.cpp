#include "hooks/hooks.h"

#include <algorithm>

#include "util/error.h"

namespace nt {

Hooks::Hooks(int n_layer) : n_layer_(n_layer), slots_(static_cast<size_t>(kHookSiteCount * (n_layer + 1))) {}

const std::vector<Hooks::Entry>& Hooks::slot(HookPoint p) const {
  return slots_[static_cast<size_t>(static_cast<int>(p.site) * (n_layer_ + 1) + (p.layer + 1))];
}
std::vector<Hooks::Entry>& Hooks::slot(HookPoint p) {
  return slots_[static_cast<size_t>(static_cast<int>(p.site) * (n_layer_ + 1) + (p.layer + 1))];
}

int Hooks::add(HookPoint point, HookFn fn) {
  if (point.layer < -1 || point.layer >= n_layer_ || site_is_per_layer(point.site) != (point.layer >= 0))
    throw Error("hook point " + hook_name(point) + " does not exist in this model");
  slot(point).push_back({next_id_, std::move(fn)});
  ++count_;
  return next_id_++;
}

void Hooks::remove(int id) {
  for (auto& s : slots_) {
    auto it = std::find_if(s.begin(), s.end(), [id](const Entry& e) { return e.id == id; });
    if (it != s.end()) {
      s.erase(it);
      --count_;
      return;
    }
  }
}

void Hooks::run(HookPoint point, std::span<const RowInfo> rows, float* acts, int width) const {
  const auto& s = slot(point);
  if (s.empty()) return;
  HookContext ctx{point, rows, width};
  for (const auto& e : s) e.fn(ctx, acts);
}

}  // namespace nt
