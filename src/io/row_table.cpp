#include "io/row_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace nt {

struct RowTable::File {
  std::string path;
  int fd = -1;
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

RowTable::RowTable(const std::string& path, DType dtype, uint64_t offset, int64_t rows, int64_t cols)
    : dtype_(dtype), offset_(offset), rows_(rows), cols_(cols) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    throw Error(path + ": embedding rows of dtype " + dtype_name(dtype) + " are not supported");
  auto file = std::make_shared<File>();
  file->path = path;
  file->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  file_ = std::move(file);
}

RowTable::RowTable(std::vector<float> values, int64_t rows, int64_t cols)
    : values_(std::move(values)), rows_(rows), cols_(cols) {}

void RowTable::copy_row(int64_t row, float* out) const {
  const size_t n = static_cast<size_t>(cols_);
  if (!file_) {
    std::copy_n(values_.data() + static_cast<size_t>(row) * n, n, out);
    return;
  }
  const size_t es = dtype_size(dtype_);
  const uint64_t at = offset_ + static_cast<uint64_t>(row) * n * es;
  if (dtype_ == DType::F32) {
    read_bytes(at, out, n * sizeof(float), row);
    return;
  }
  // 16-bit rows: read into the second half of `out`, then widen front to back (element i is
  // written at 4i and read from 2n + 2i >= 4i, so no element is overwritten before it is read).
  auto* half = reinterpret_cast<uint16_t*>(out) + n;
  read_bytes(at, half, n * es, row);
  const bool bf16 = dtype_ == DType::BF16;
  for (size_t i = 0; i < n; ++i) out[i] = bf16 ? bf16_to_f32(half[i]) : f16_to_f32(half[i]);
}

void RowTable::read_bytes(uint64_t at, void* out, size_t bytes, int64_t row) const {
  auto* dst = static_cast<char*>(out);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(file_->fd, dst + done, bytes - done, static_cast<off_t>(at + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      throw Error(file_->path + ": cannot read embedding row " + std::to_string(row) + " (" +
                  (got < 0 ? std::strerror(errno) : "file truncated") + ")");
    done += static_cast<size_t>(got);
  }
}

}  // namespace nt
