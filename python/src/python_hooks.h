#pragma once
// Python functions as neurontrace hooks, and the checks that let Python stop a long computation.
// The C++ core runs with the GIL released; these take it back only to call into Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "hooks/hooks.h"

namespace nt::python {

namespace py = pybind11;

// A user's forward hook: fn(act, hook) on one hook point.
struct PythonHook {
  HookPoint point;
  py::function fn;
};

// The second argument of a hook function: the point and, per row of the step, its sequence
// (prompt index), position, whether its token was generated, and the token id.
class HookInfo {
 public:
  HookInfo(HookPoint point, std::span<const RowInfo> rows) : point_(point), rows_(rows.begin(), rows.end()) {}
  std::string name() const { return hook_name(point_); }
  int layer() const { return point_.layer; }
  py::array_t<int64_t> seq() const;
  py::array_t<int64_t> pos() const;
  py::array_t<bool> generated() const;
  py::array_t<int64_t> token() const;

 private:
  HookPoint point_;
  std::vector<RowInfo> rows_;
};

// The C++ hook that calls `hook.fn` with the GIL held. The function gets the step's rows as a
// float32 array [rows, width] that it owns (it may keep it); what it leaves in that array, or the
// array it returns instead, is written back into the model's activations. The caller keeps
// `hook.fn` alive while the hook can run.
HookFn python_hook_fn(const PythonHook& hook);

// Raises the pending KeyboardInterrupt (or another signal handler's exception) as
// py::error_already_set; called between generation steps with the GIL released.
void check_python_signals();

}  // namespace nt::python
