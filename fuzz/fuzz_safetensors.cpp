// libFuzzer target: nt::SafetensorsFile on arbitrary bytes.
//
// Each input is opened twice: as it is, and (when it differs) with the 8-byte header length
// rewritten to the end of the JSON object that follows it, so mutations inside the header JSON
// reach the header validation instead of dying at "header length runs past the end". For every
// file that opens, every tensor is read (read_f32 always, read_i64 for integer dtypes), the
// reader's promises are checked independently (offsets inside the data section, byte counts,
// no overlaps, sorted unique names), and the file is written back with nt::write_safetensors and
// re-read: the same tensors, bytes and metadata must come back.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "io/safetensors.h"

namespace {

using nt::fuzz::fail;

uint64_t load_u64_le(std::string_view s) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
  return v;
}

void store_u64_le(uint64_t v, std::string& s) {
  for (size_t i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

bool is_integer(nt::DType d) {
  switch (d) {
    case nt::DType::I64:
    case nt::DType::I32:
    case nt::DType::I16:
    case nt::DType::I8:
    case nt::DType::U8:
    case nt::DType::BOOL:
      return true;
    default:
      return false;
  }
}

// The input with its header length set to cover the first balanced JSON value after byte 8 (and
// the space padding after it); nullopt when there is none or the length is already that.
std::optional<std::string> with_fixed_header_length(std::string_view in) {
  if (in.size() < 9) return std::nullopt;
  size_t i = 8;
  int depth = 0;
  bool in_string = false, escaped = false, closed = false;
  for (; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth <= 0) {
        ++i;
        closed = true;
        break;
      }
    }
  }
  if (!closed) return std::nullopt;
  while (i < in.size() && in[i] == ' ') ++i;
  const uint64_t len = i - 8;
  if (len == load_u64_le(in)) return std::nullopt;
  std::string out(in);
  store_u64_le(len, out);
  return out;
}

void check_and_roundtrip(const nt::SafetensorsFile& f, std::string_view bytes, const std::string& rt_path) {
  const uint64_t header_len = load_u64_le(bytes);
  if (header_len > bytes.size() - 8) fail("opened a file whose header length runs past its end");
  const uint64_t data_size = bytes.size() - 8 - header_len;
  const auto& ts = f.tensors();
  for (size_t i = 0; i < ts.size(); ++i) {
    const nt::TensorInfo& t = ts[i];
    if (i > 0 && !(ts[i - 1].name < t.name)) fail("tensors not sorted by unique name");
    if (t.name == "__metadata__") fail("__metadata__ taken as a tensor");
    if (t.begin > t.end || t.end > data_size) fail("tensor '" + t.name + "' outside the data section");
    const int64_t numel = t.numel();
    if (numel < 0) fail("negative numel");
    if (static_cast<uint64_t>(numel) * nt::dtype_size(t.dtype) != t.end - t.begin)
      fail("tensor '" + t.name + "' byte count differs from numel * dtype size");
    if (f.find(t.name) != &t) fail("find() does not return the tensor");
    if (&f.get(t.name) != &t) fail("get() does not return the tensor");
    const uint8_t* p = f.data(t);
    if (t.end > t.begin &&
        std::memcmp(p, bytes.data() + 8 + header_len + t.begin, t.end - t.begin) != 0)
      fail("data() bytes differ from the file's");
    const std::vector<float> v = f.read_f32(t);
    if (v.size() != static_cast<size_t>(numel)) fail("read_f32 returned the wrong count");
    if (is_integer(t.dtype)) {
      const std::vector<int64_t> w = f.read_i64(t);
      if (w.size() != v.size()) fail("read_i64 returned the wrong count");
      for (size_t k = 0; k < w.size(); ++k)
        if (static_cast<float>(w[k]) != v[k]) fail("read_f32 and read_i64 disagree");
    } else {
      bool threw = false;
      try {
        (void)f.read_i64(t);
      } catch (const nt::Error&) {
        threw = true;
      }
      if (!threw) fail("read_i64 accepted a float dtype");
    }
  }
  // No two non-empty tensors overlap.
  std::vector<const nt::TensorInfo*> by_offset;
  for (const auto& t : ts)
    if (t.end > t.begin) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const nt::TensorInfo* a, const nt::TensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end) fail("overlapping tensors accepted");
  if (f.find(std::string("\x01no such tensor")) != nullptr) fail("find() found a missing tensor");

  // Write back and re-read: what was accepted must survive the writer unchanged.
  std::vector<nt::TensorToWrite> out;
  for (const auto& t : ts) out.push_back({t.name, t.dtype, t.shape, {f.data(t), t.end - t.begin}});
  try {
    nt::write_safetensors(rt_path, out, f.metadata());
  } catch (const nt::Error& e) {
    fail(std::string("write_safetensors refused what the reader accepted: ") + e.what());
  }
  try {
    nt::SafetensorsFile g(rt_path);
    if (g.tensors().size() != ts.size()) fail("round trip changed the tensor count");
    if (g.metadata() != f.metadata()) fail("round trip changed the metadata");
    for (size_t i = 0; i < ts.size(); ++i) {
      const auto& a = ts[i];
      const auto& b = g.tensors()[i];
      if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.end - a.begin != b.end - b.begin)
        fail("round trip changed tensor '" + a.name + "'");
      if (a.end > a.begin && std::memcmp(f.data(a), g.data(b), a.end - a.begin) != 0)
        fail("round trip changed the bytes of '" + a.name + "'");
      if ((b.begin % nt::dtype_size(b.dtype)) != 0) fail("writer misaligned '" + b.name + "'");
    }
  } catch (const nt::Error& e) {
    fail(std::string("the reader refused what the writer wrote: ") + e.what());
  }
  nt::fuzz::remove_file(rt_path);
}

void exercise(const nt::fuzz::ScratchDir& dir, std::string_view bytes) {
  const std::string path = dir.file("in.safetensors");
  nt::fuzz::write_bytes(path, bytes);
  nt::fuzz::expect_only_nt_errors([&] {
    nt::SafetensorsFile f(path);
    check_and_roundtrip(f, bytes, dir.file("rt.safetensors"));
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nt::fuzz::ScratchDir dir("safetensors");
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  exercise(dir, in);
  if (auto fixed = with_fixed_header_length(in)) exercise(dir, *fixed);
  return 0;
}
