#pragma once
// A [rows, cols] float32 table of which each step reads a few rows: the token and position
// embeddings. A float32 tensor is read from its file with pread(), not through the memory map:
// on Linux 6.18 a fault on a file mapping maps far more than the page (the whole large page-cache
// folio around it, as far as we can tell), so a few hundred token lookups through the map made
// ~250 MB of GPT-2 small's file resident in the process (peak RSS 1.5x weights + KV cache, not 1.1x).
// F32, F16 and BF16 rows are converted as they are read; on a big-endian host the tensor is
// converted to float32 once and kept in memory.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace nt {

class RowTable {
 public:
  RowTable() = default;
  // Rows of a tensor of `dtype` (F32, F16 or BF16) stored at byte `offset` of the file `path`.
  RowTable(const std::string& path, DType dtype, uint64_t offset, int64_t rows, int64_t cols);
  // Rows held in memory.
  RowTable(std::vector<float> values, int64_t rows, int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Copies row `row` (0 <= row < rows()) to out[0..cols()). Throws nt::Error naming the file when
  // the read fails.
  void copy_row(int64_t row, float* out) const;

 private:
  struct File;
  void read_bytes(uint64_t at, void* out, size_t bytes, int64_t row) const;

  std::shared_ptr<const File> file_;  // null when the rows are in values_
  DType dtype_{};
  uint64_t offset_ = 0;
  std::vector<float> values_;
  int64_t rows_ = 0, cols_ = 0;
};

}  // namespace nt
