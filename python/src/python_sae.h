#pragma once
// neurontrace._core.Sae: an SAE opened for a model (Model.load_sae), with SAELens's encode/decode
// on numpy arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>

#include "sae/sae.h"

namespace nt::python {

namespace py = pybind11;

struct PythonSae {
  std::shared_ptr<const Sae> sae;

  // acts [rows, d_sae] (hook_sae_acts_post) of x [rows, d_in] at the SAE's hook.
  py::array_t<float> encode(const py::array_t<float, py::array::c_style | py::array::forcecast>& x) const;
  // f @ W_dec + b_dec [rows, d_in] of acts f [rows, d_sae] (hook_sae_recons).
  py::array_t<float> decode(const py::array_t<float, py::array::c_style | py::array::forcecast>& f) const;
  // decode(encode(x)) with the SAE's input normalization undone ([rows, d_in], SAELens's sae(x)).
  py::array_t<float> forward(const py::array_t<float, py::array::c_style | py::array::forcecast>& x) const;
};

void bind_sae(py::module_& m);

}  // namespace nt::python
