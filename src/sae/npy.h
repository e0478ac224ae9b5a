#pragma once
// A strict reader of NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
// for the arrays an SAE file holds: little-endian float32 ('<f4'), C order, any shape.
//   "\x93NUMPY" | major | minor | header length (u16 for 1.0, u32 for 2.0) | header | data
// The header is the Python dict literal numpy writes, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (64, 256), }
// padded with spaces and ended by '\n'. Exactly those three keys; the data must be exactly
// product(shape) * 4 bytes. Anything else is an nt::Error naming `where` and the problem.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace nt {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // product(shape) values, C order
};

NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& where);

// "(64, 256)" for messages.
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace nt
