// Layout per unit: int32 top count, int32 sample count, then each record: float value, int64 doc,
// int32 pos, int32 index, uint64 hash, int32 window length L, L int32 tokens, L float activations.
#include "atlas/record_bytes.h"

#include <cstring>
#include <memory>
#include <type_traits>

#include "util/error.h"

namespace nt {

namespace {

constexpr size_t kRecordFixedBytes = 4 + 8 + 4 + 4 + 8 + 4;

template <class T>
void put(std::string& out, const T& v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_record(std::string& out, const ContextRecord& r) {
  put(out, r.value);
  put(out, r.doc);
  put(out, r.pos);
  put(out, r.index);
  put(out, r.hash);
  put(out, static_cast<int32_t>(r.tokens->size()));
  out.append(reinterpret_cast<const char*>(r.tokens->data()), r.tokens->size() * sizeof(int32_t));
  out.append(reinterpret_cast<const char*>(r.acts.data()), r.acts.size() * sizeof(float));
}

// Reads the bytes in order; any read past their end throws.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string from) : bytes_(bytes), from_(std::move(from)) {}
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  template <class T>
  std::vector<T> get_array(size_t n) {
    std::vector<T> v(n);
    if (n > 0) std::memcpy(v.data(), take(n * sizeof(T)), n * sizeof(T));
    return v;
  }
  bool done() const { return at_ == bytes_.size(); }
  Error bad() const { return Error(from_ + ": malformed atlas records"); }

 private:
  const char* take(size_t n) {
    if (n > bytes_.size() - at_) throw bad();
    const char* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }
  std::string_view bytes_;
  std::string from_;
  size_t at_ = 0;
};

std::vector<ContextRecord> get_records(ByteReader& in, int32_t count, int context) {
  std::vector<ContextRecord> records;
  for (int32_t i = 0; i < count; ++i) {
    ContextRecord r;
    r.value = in.get<float>();
    r.doc = in.get<int64_t>();
    r.pos = in.get<int32_t>();
    r.index = in.get<int32_t>();
    r.hash = in.get<uint64_t>();
    const int32_t length = in.get<int32_t>();
    if (length < 1 || length > context || r.index < 0 || r.index >= length) throw in.bad();
    r.tokens = std::make_shared<const std::vector<int32_t>>(in.get_array<int32_t>(static_cast<size_t>(length)));
    r.acts = in.get_array<float>(static_cast<size_t>(length));
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace

std::string records_to_bytes(const AtlasState& state, size_t begin, size_t end) {
  std::string out;
  for (size_t u = begin; u < end; ++u) {
    put(out, static_cast<int32_t>(state.top[u].size()));
    put(out, static_cast<int32_t>(state.samples[u].size()));
    for (const auto& r : state.top[u]) put_record(out, r);
    for (const auto& r : state.samples[u]) put_record(out, r);
  }
  return out;
}

size_t max_record_bytes_per_unit(const AtlasSettings& s) {
  return 8 + static_cast<size_t>(s.top_k + s.samples) * (kRecordFixedBytes + 8 * static_cast<size_t>(s.context));
}

void merge_records_bytes(AtlasState& state, size_t begin, size_t end, std::string_view bytes, const std::string& from) {
  ByteReader in(bytes, from);
  for (size_t u = begin; u < end; ++u) {
    const int32_t top = in.get<int32_t>(), samples = in.get<int32_t>();
    if (top < 0 || top > state.settings.top_k || samples < 0 || samples > state.settings.samples) throw in.bad();
    const std::vector<ContextRecord> top_records = get_records(in, top, state.settings.context);
    state.merge_records(u, top_records, get_records(in, samples, state.settings.context));
  }
  if (!in.done()) throw in.bad();
}

}  // namespace nt
