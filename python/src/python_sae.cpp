#include "python_sae.h"

#include "util/error.h"

namespace nt::python {

namespace {

// The rows of a [rows, width] array; throws nt::Error naming `what` for another shape.
int rows_of(const py::array_t<float, py::array::c_style | py::array::forcecast>& a, int width, const char* what) {
  if (a.ndim() != 2 || a.shape(1) != width)
    throw Error(std::string(what) + ": expected a [rows, " + std::to_string(width) + "] array");
  return static_cast<int>(a.shape(0));
}

}  // namespace

py::array_t<float> PythonSae::encode(const py::array_t<float, py::array::c_style | py::array::forcecast>& x) const {
  const int rows = rows_of(x, sae->d_in(), "encode");
  SaeEncoding enc;
  {
    py::gil_scoped_release release;
    sae->encode(x.data(), rows, enc);
  }
  py::array_t<float> out({rows, sae->d_sae()});
  std::copy(enc.acts.begin(), enc.acts.end(), out.mutable_data());
  return out;
}

py::array_t<float> PythonSae::decode(const py::array_t<float, py::array::c_style | py::array::forcecast>& f) const {
  const int rows = rows_of(f, sae->d_sae(), "decode");
  py::array_t<float> out({rows, sae->d_in()});
  float* recons = out.mutable_data();
  py::gil_scoped_release release;
  sae->decode(f.data(), rows, nullptr, recons);
  return out;
}

py::array_t<float> PythonSae::forward(const py::array_t<float, py::array::c_style | py::array::forcecast>& x) const {
  const int rows = rows_of(x, sae->d_in(), "forward");
  py::array_t<float> out({rows, sae->d_in()});
  float* recons = out.mutable_data();
  py::gil_scoped_release release;
  SaeEncoding enc;
  sae->encode(x.data(), rows, enc);
  sae->decode(enc.acts.data(), rows, enc.norm_coeff.data(), recons, enc.norm_shift.data());
  return out;
}

void bind_sae(py::module_& m) {
  py::class_<PythonSae>(m, "Sae", "An SAE opened for a model (use Model.load_sae).")
      .def_property_readonly("d_in", [](const PythonSae& s) { return s.sae->d_in(); })
      .def_property_readonly("d_sae", [](const PythonSae& s) { return s.sae->d_sae(); })
      .def_property_readonly("hook_name", [](const PythonSae& s) { return s.sae->config().hook_name; })
      .def("encode", &PythonSae::encode, py::arg("x"),
           "Latent activations [rows, d_sae] (hook_sae_acts_post) of activations x [rows, d_in].")
      .def("decode", &PythonSae::decode, py::arg("f"),
           "Reconstruction f @ W_dec + b_dec [rows, d_in] (hook_sae_recons) of latents f [rows, d_sae], in the\n"
           "SAE's input space (an input normalization is not undone: use forward).")
      .def("forward", &PythonSae::forward, py::arg("x"),
           "Reconstruction [rows, d_in] of activations x [rows, d_in] in the model's space: encode, decode,\n"
           "and the SAE's input normalization (constant_norm_rescale, layer_norm) undone per row, as\n"
           "SAELens's sae(x).");
}

}  // namespace nt::python
