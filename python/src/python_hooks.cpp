#include "python_hooks.h"

#include <cstring>

#include "util/error.h"

namespace nt::python {

namespace {

template <typename T, typename Field>
py::array_t<T> row_field(const std::vector<RowInfo>& rows, Field field) {
  py::array_t<T> out(static_cast<py::ssize_t>(rows.size()));
  T* data = out.mutable_data();
  for (size_t i = 0; i < rows.size(); ++i) data[i] = static_cast<T>(field(rows[i]));
  return out;
}

// "a str", "an array of shape (3, 7)": what a hook returned that is not usable.
std::string describe(const py::object& result, const py::array& converted) {
  if (!converted) return "a " + std::string(py::str(py::type::of(result).attr("__name__")));
  std::string shape;
  for (py::ssize_t d = 0; d < converted.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(converted.shape(d));
  return "an array of shape (" + shape + ")";
}

}  // namespace

py::array_t<int64_t> HookInfo::seq() const {
  return row_field<int64_t>(rows_, [](const RowInfo& r) { return r.seq; });
}
py::array_t<int64_t> HookInfo::pos() const {
  return row_field<int64_t>(rows_, [](const RowInfo& r) { return r.pos; });
}
py::array_t<bool> HookInfo::generated() const {
  return row_field<bool>(rows_, [](const RowInfo& r) { return r.generated; });
}
py::array_t<int64_t> HookInfo::token() const {
  return row_field<int64_t>(rows_, [](const RowInfo& r) { return r.token; });
}

HookFn python_hook_fn(const PythonHook& hook) {
  // A borrowed handle: HookFn objects are copied and destroyed without the GIL.
  return [point = hook.point, fn = py::handle(hook.fn)](const HookContext& ctx, float* acts) {
    py::gil_scoped_acquire gil;
    const auto rows = static_cast<py::ssize_t>(ctx.rows.size());
    const size_t bytes = ctx.rows.size() * static_cast<size_t>(ctx.width) * sizeof(float);
    py::array_t<float> act({rows, static_cast<py::ssize_t>(ctx.width)});
    std::memcpy(act.mutable_data(), acts, bytes);
    py::object result = fn(act, HookInfo(point, ctx.rows));
    if (result.is_none()) {
      std::memcpy(acts, act.data(), bytes);
      return;
    }
    auto out = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(result);
    if (!out || out.ndim() != 2 || out.shape(0) != rows || out.shape(1) != ctx.width)
      throw Error("the hook on " + hook_name(point) + " returned " + describe(result, out) +
                  "; it must return None or an array of shape (" + std::to_string(rows) + ", " +
                  std::to_string(ctx.width) + ")");
    std::memcpy(acts, out.data(), bytes);
  };
}

void check_python_signals() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace nt::python
