#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

using json = nlohmann::json;

// A header longer than this is treated as corrupt rather than parsed.
constexpr uint64_t kMaxHeaderLen = 100ull * 1000 * 1000;

constexpr DType kAllDTypes[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                                DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};

bool parse_dtype(std::string_view name, DType* out) {
  for (DType d : kAllDTypes) {
    if (name == dtype_name(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

uint64_t load_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_u64_le(uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Loads one little-endian element of type T from a possibly unaligned address.
template <typename T>
T load_le(const uint8_t* p) {
  T v;
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    std::memcpy(&v, p, sizeof(T));
  } else {
    uint8_t tmp[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); ++i) tmp[i] = p[sizeof(T) - 1 - i];
    std::memcpy(&v, tmp, sizeof(T));
  }
  return v;
}

// numel = product(shape), false on overflow of int64.
bool checked_numel(const std::vector<int64_t>& shape, int64_t* out) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return false;
    n *= d;
  }
  *out = n;
  return true;
}

// numel * element size in bytes, false on overflow of size_t.
bool checked_nbytes(const std::vector<int64_t>& shape, DType dtype, size_t* out) {
  int64_t n = 0;
  if (!checked_numel(shape, &n)) return false;
  const size_t es = dtype_size(dtype);
  const uint64_t un = static_cast<uint64_t>(n);
  if (un > std::numeric_limits<size_t>::max() / es) return false;
  *out = static_cast<size_t>(un) * es;
  return true;
}

bool is_integer_dtype(DType d) {
  switch (d) {
    case DType::I64:
    case DType::I32:
    case DType::I16:
    case DType::I8:
    case DType::U8:
    case DType::BOOL:
      return true;
    default:
      return false;
  }
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 2;
    case DType::I8:
    case DType::U8:
    case DType::BOOL:
      return 1;
  }
  return 1;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Half-precision conversions

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // signed zero
    } else {
      // Subnormal: value = mant * 2^-24; normalise into an f32.
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf or NaN (payload kept)
    if (mant != 0) bits |= 0x00400000u;        // keep NaNs NaN (quiet)
  } else {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // NaN stays NaN (quiet)
  }
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

// ---------------------------------------------------------------------------------------------
// Reader

namespace {

// Everything the header parse produces; kept apart so the constructor can unmap on failure.
struct ParsedHeader {
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(escape_for_message(path, 1000) + ": " + what);
}

ParsedHeader parse_header(const std::string& path, const uint8_t* header, size_t header_len,
                          size_t data_size) {
  // Parse, recording duplicate keys at any depth (nlohmann keeps the last one silently).
  std::vector<std::set<std::string>> key_stack;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      key_stack.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!key_stack.empty()) key_stack.pop_back();
    } else if (event == json::parse_event_t::key) {
      if (!key_stack.empty() && parsed.is_string() &&
          !key_stack.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  json root;
  try {
    const char* first = reinterpret_cast<const char*>(header);
    root = json::parse(first, first + header_len, callback);
  } catch (const json::exception& e) {
    fail(path, "malformed header JSON (" + escape_for_message(e.what()) + ")");
  }
  if (!duplicate.empty()) fail(path, "malformed header JSON (duplicate key " + quote_for_message(duplicate) + ")");
  if (!root.is_object()) {
    fail(path, std::string("header is not a JSON object (it is ") + root.type_name() + ")");
  }

  ParsedHeader out;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          fail(path, "__metadata__ value for " + quote_for_message(m.key()) + " is not a string");
        }
        out.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    const std::string who = "tensor " + quote_for_message(name) + ": ";
    if (!entry.is_object()) fail(path, who + "entry is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!entry.contains(field)) fail(path, who + "missing field " + quote_for_message(field));
    }

    TensorInfo info;
    info.name = name;
    const json& jd = entry["dtype"];
    if (!jd.is_string()) fail(path, who + "dtype is not a string");
    const std::string& dname = jd.get_ref<const std::string&>();
    if (!parse_dtype(dname, &info.dtype)) fail(path, who + "unsupported dtype " + quote_for_message(dname));

    const json& js = entry["shape"];
    if (!js.is_array()) fail(path, who + "shape is not an array");
    for (const json& d : js) {
      if (d.is_number_unsigned()) {
        const uint64_t v = d.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail(path, who + "shape dimension " + std::to_string(v) + " is too large");
        }
        info.shape.push_back(static_cast<int64_t>(v));
      } else if (d.is_number_integer()) {
        const int64_t v = d.get<int64_t>();
        if (v < 0) fail(path, who + "negative dimension " + std::to_string(v) + " in shape");
        info.shape.push_back(v);
      } else {
        fail(path, who + "shape must be an array of integers (got " + escape_for_message(d.dump()) + ")");
      }
    }

    const json& jo = entry["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
        !jo[1].is_number_unsigned()) {
      fail(path, who + "data_offsets must be two non-negative integers (got " +
                     escape_for_message(jo.dump()) + ")");
    }
    const uint64_t b = jo[0].get<uint64_t>();
    const uint64_t e = jo[1].get<uint64_t>();
    if (b > e || e > data_size) {
      fail(path, who + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                     "] out of range (data section is " + std::to_string(data_size) + " bytes)");
    }
    info.begin = static_cast<size_t>(b);
    info.end = static_cast<size_t>(e);

    size_t need = 0;
    if (!checked_nbytes(info.shape, info.dtype, &need)) {
      fail(path, who + "shape " + shape_str(info.shape) + " of " + dtype_name(info.dtype) +
                     " overflows the byte count");
    }
    if (need != info.end - info.begin) {
      fail(path, who + "shape " + shape_str(info.shape) + " of " + dtype_name(info.dtype) +
                     " needs " + std::to_string(need) + " bytes but data_offsets span " +
                     std::to_string(info.end - info.begin));
    }
    out.tensors.push_back(std::move(info));
  }

  // Overlap check: walk by start offset, remembering the tensor reaching furthest so far.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : out.tensors) {
    if (t.end > t.begin) by_offset.push_back(&t);  // empty tensors occupy no bytes
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    if (a->begin != b->begin) return a->begin < b->begin;
    if (a->end != b->end) return a->end < b->end;
    return a->name < b->name;
  });
  const TensorInfo* reach = nullptr;
  for (const TensorInfo* t : by_offset) {
    if (reach && t->begin < reach->end) {
      fail(path, "tensors " + quote_for_message(reach->name) + " and " + quote_for_message(t->name) + " overlap");
    }
    if (!reach || t->end > reach->end) reach = t;
  }

  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, std::string("cannot stat (") + std::strerror(err) + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "truncated file (" + std::to_string(size) +
                   " bytes, need at least 8 for the header length)");
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (m == MAP_FAILED) fail(path, std::string("cannot map (") + std::strerror(map_err) + ")");
  map_ = static_cast<const uint8_t*>(m);
  map_size_ = size;

  try {
    const uint64_t header_len = load_u64_le(map_);
    if (header_len > kMaxHeaderLen) {
      fail(path, "header length " + std::to_string(header_len) + " is absurdly large (limit " +
                     std::to_string(kMaxHeaderLen) + " bytes)");
    }
    if (header_len > size - 8) {
      fail(path, "header length " + std::to_string(header_len) +
                     " runs past the end of the file (" + std::to_string(size) + " bytes)");
    }
    data_start_ = 8 + static_cast<size_t>(header_len);
    ParsedHeader parsed =
        parse_header(path, map_ + 8, static_cast<size_t>(header_len), size - data_start_);
    tensors_ = std::move(parsed.tensors);
    metadata_ = std::move(parsed.metadata);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, const std::string& n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

const TensorInfo& SafetensorsFile::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(path_, "missing tensor " + quote_for_message(name));
  return *t;
}

const uint8_t* SafetensorsFile::data(const TensorInfo& info) const {
  if (info.begin > info.end || info.end > map_size_ - data_start_) {
    fail(path_, "tensor " + quote_for_message(info.name) + ": data_offsets out of range for this file");
  }
  return map_ + data_start_ + info.begin;
}

std::vector<float> SafetensorsFile::read_f32(const TensorInfo& info) const {
  const uint8_t* p = data(info);
  const size_t es = dtype_size(info.dtype);
  const size_t n = (info.end - info.begin) / es;
  std::vector<float> out(n);
  switch (info.dtype) {
    case DType::F32:
      for (size_t i = 0; i < n; ++i) out[i] = load_le<float>(p + 4 * i);
      break;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<double>(p + 8 * i));
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(load_le<uint16_t>(p + 2 * i));
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load_le<uint16_t>(p + 2 * i));
      break;
    case DType::I64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<int64_t>(p + 8 * i));
      break;
    case DType::I32:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<int32_t>(p + 4 * i));
      break;
    case DType::I16:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<int16_t>(p + 2 * i));
      break;
    case DType::I8:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(static_cast<int8_t>(p[i]));
      break;
    case DType::U8:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]);
      break;
    case DType::BOOL:
      for (size_t i = 0; i < n; ++i) out[i] = p[i] != 0 ? 1.0f : 0.0f;
      break;
  }
  return out;
}

std::vector<int64_t> SafetensorsFile::read_i64(const TensorInfo& info) const {
  if (!is_integer_dtype(info.dtype)) {
    fail(path_, "tensor " + quote_for_message(info.name) + ": expected an integer dtype, got " +
                    dtype_name(info.dtype));
  }
  const uint8_t* p = data(info);
  const size_t es = dtype_size(info.dtype);
  const size_t n = (info.end - info.begin) / es;
  std::vector<int64_t> out(n);
  switch (info.dtype) {
    case DType::I64:
      for (size_t i = 0; i < n; ++i) out[i] = load_le<int64_t>(p + 8 * i);
      break;
    case DType::I32:
      for (size_t i = 0; i < n; ++i) out[i] = load_le<int32_t>(p + 4 * i);
      break;
    case DType::I16:
      for (size_t i = 0; i < n; ++i) out[i] = load_le<int16_t>(p + 2 * i);
      break;
    case DType::I8:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(p[i]);
      break;
    case DType::U8:
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    case DType::BOOL:
      for (size_t i = 0; i < n; ++i) out[i] = p[i] != 0 ? 1 : 0;
      break;
    default:
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writer

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Validate, then lay out by (element size descending, name) so every offset is aligned to
  // its element size.
  std::vector<const TensorToWrite*> order;
  std::set<std::string> names;
  for (const auto& t : tensors) {
    const std::string who = "tensor " + quote_for_message(t.name) + ": ";
    if (t.name == "__metadata__") fail(path, who + "name is reserved");
    if (!names.insert(t.name).second) fail(path, "duplicate tensor name " + quote_for_message(t.name));
    for (int64_t d : t.shape) {
      if (d < 0) fail(path, who + "negative dimension " + std::to_string(d) + " in shape");
    }
    size_t need = 0;
    if (!checked_nbytes(t.shape, t.dtype, &need)) {
      fail(path, who + "shape " + shape_str(t.shape) + " overflows the byte count");
    }
    if (t.bytes.size() != need) {
      fail(path, who + "shape " + shape_str(t.shape) + " of " + dtype_name(t.dtype) + " needs " +
                     std::to_string(need) + " bytes but " + std::to_string(t.bytes.size()) +
                     " were given");
    }
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    const size_t sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
    if (sa != sb) return sa > sb;
    return a->name < b->name;
  });

  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  size_t offset = 0;
  for (const TensorToWrite* t : order) {
    const size_t end = offset + t->bytes.size();
    header[t->name] = {{"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {static_cast<uint64_t>(offset), static_cast<uint64_t>(end)}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(path, "cannot encode header (" + escape_for_message(e.what()) + ")");
  }
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  std::string content(8, '\0');
  store_u64_le(text.size(), content.data());
  content.reserve(8 + text.size() + offset);
  content += text;
  for (const TensorToWrite* t : order) {
    content.append(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  }
  write_file_atomic(path, content);
}

}  // namespace nt
