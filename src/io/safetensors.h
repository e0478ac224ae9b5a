#pragma once
// safetensors reader and writer (https://huggingface.co/docs/safetensors):
//   u64 header_len (little-endian) | header_len bytes of JSON | data section
// The reader memory-maps the file and validates the header strictly before anything is used:
// header length within the file, JSON well-formed, every entry has a known dtype, a shape of
// non-negative dims and data_offsets [begin, end] with begin <= end <= data size, byte count ==
// product(shape) * dtype size, and no two tensors overlap. Errors are nt::Error with a one-line
// message that names the file (and the tensor when one is at fault).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nt {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType dtype);      // "F32", ...
size_t dtype_size(DType dtype);           // bytes per element

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0;  // byte offsets relative to the start of the data section
  size_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws nt::Error on any problem.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // sorted by name
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  // Throws nt::Error "<path>: missing tensor '<name>'" when absent.
  const TensorInfo& get(const std::string& name) const;

  // Raw bytes of a tensor inside the mapping (valid while this object lives).
  const uint8_t* data(const TensorInfo& info) const;
  // Where a tensor's bytes start in the file.
  uint64_t file_offset(const TensorInfo& info) const { return static_cast<uint64_t>(data(info) - map_); }

  // Element values converted to float32 (F32, F16, BF16, F64, integer types).
  std::vector<float> read_f32(const TensorInfo& info) const;
  // Element values converted to int64 (integer types only; throws for float dtypes).
  std::vector<int64_t> read_i64(const TensorInfo& info) const;

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  size_t data_start_ = 0;  // 8 + header_len
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file atomically (temp file in the same folder, then rename), laid out as
// the format prescribes: header padded with spaces to a multiple of 8, tensors contiguous.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;  // numel * dtype_size bytes
};
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Half-precision conversions used by the reader and the reduced-precision paths.
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);  // round to nearest even

}  // namespace nt
