// Tests for the safetensors reader/writer (src/io/safetensors.h).
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "test_support.h"
#include "util/error.h"

using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;

namespace {

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// u64 header length | header | data, built byte by byte.
std::string raw_file(const std::string& header, const std::string& data = "") {
  return u64_le(header.size()) + header + data;
}

template <typename T>
std::span<const uint8_t> as_bytes(const std::vector<T>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T)};
}

// Opens `path`, expects nt::Error whose message names the path, contains `phrase`, is one line.
void expect_error(const std::string& path, const std::string& phrase) {
  try {
    nt::SafetensorsFile f(path);
    FAIL() << "expected nt::Error containing '" << phrase << "' for " << path;
  } catch (const nt::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(phrase), std::string::npos) << "message: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message: " << msg;
  }
}

// Writes `contents` into a temp file and expects the reader to reject it.
void expect_bad_file(const std::string& contents, const std::string& phrase) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  write_text(path, contents);
  expect_error(path, phrase);
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Fixtures

TEST(Safetensors, ReadsGpt2TinyModel) {
  nt::SafetensorsFile f(shared_path("fixtures/models/gpt2-tiny/model.safetensors"));
  const nt::TensorInfo& wte = f.get("wte.weight");
  EXPECT_EQ(wte.dtype, nt::DType::F32);
  EXPECT_EQ(wte.shape, (std::vector<int64_t>{50257, 64}));
  EXPECT_EQ(wte.numel(), 50257 * 64);
  EXPECT_EQ(wte.end - wte.begin, static_cast<size_t>(50257 * 64 * 4));
  ASSERT_EQ(f.metadata().count("format"), 1u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_NE(f.find("h.0.attn.bias"), nullptr);
  EXPECT_EQ(f.find("no.such.tensor"), nullptr);
  EXPECT_EQ(f.find("__metadata__"), nullptr);
  // Sorted by name.
  for (size_t i = 1; i < f.tensors().size(); ++i) {
    EXPECT_LT(f.tensors()[i - 1].name, f.tensors()[i].name);
  }
  std::vector<float> w = f.read_f32(wte);
  ASSERT_EQ(w.size(), static_cast<size_t>(50257 * 64));
  for (size_t i = 0; i < w.size(); i += 997) EXPECT_TRUE(std::isfinite(w[i]));
  EXPECT_THROW(f.read_i64(wte), nt::Error);
}

TEST(Safetensors, ReadsGoldenInputIds) {
  nt::SafetensorsFile f(shared_path("fixtures/models/gpt2-tiny/goldens/prompt_0.safetensors"));
  const nt::TensorInfo& ids = f.get("input_ids");
  EXPECT_EQ(ids.dtype, nt::DType::I64);
  EXPECT_EQ(ids.shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(f.read_i64(ids), (std::vector<int64_t>{15496, 11, 616, 1438, 318}));
  std::vector<float> as_f = f.read_f32(ids);
  EXPECT_EQ(as_f, (std::vector<float>{15496, 11, 616, 1438, 318}));
  EXPECT_TRUE(f.metadata().empty());
}

TEST(Safetensors, MissingTensorErrorNamesFileAndTensor) {
  const std::string path = shared_path("fixtures/models/gpt2-tiny/goldens/prompt_0.safetensors");
  nt::SafetensorsFile f(path);
  try {
    f.get("nope");
    FAIL() << "expected nt::Error";
  } catch (const nt::Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": missing tensor 'nope'");
  }
}

// ----------------------------------------------------------------------------------------------
// Round trips

TEST(Safetensors, RoundTripAllWrittenDtypes) {
  TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  const std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 3.0e7f, -1.0e-3f, 42.0f};
  const std::vector<int64_t> i64 = {0, -1, std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min()};
  const std::vector<float> bf_src = {1.0f, -3.5f, 0.15625f};
  std::vector<uint16_t> bf16;
  for (float v : bf_src) bf16.push_back(nt::f32_to_bf16(v));
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3800};
  const std::vector<uint8_t> b = {1, 0, 1};  // odd byte count forces unaligned successors

  nt::write_safetensors(path,
                    {{"a.f32", nt::DType::F32, {2, 3}, as_bytes(f32)},
                     {"b.i64", nt::DType::I64, {4}, as_bytes(i64)},
                     {"c.bf16", nt::DType::BF16, {3}, as_bytes(bf16)},
                     {"d.f16", nt::DType::F16, {5, 1}, as_bytes(f16)},
                     {"e.bool", nt::DType::BOOL, {3}, as_bytes(b)},
                     {"f.scalar", nt::DType::F32, {}, as_bytes(std::vector<float>{7.0f})},
                     {"g.empty", nt::DType::F32, {0, 4}, {}}},
                    {{"format", "pt"}, {"note", "round trip"}});

  // Header layout: length prefix, padding to a multiple of 8.
  const std::string raw = nt::test::read_text(path);
  ASSERT_GE(raw.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(raw[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(raw.find(".tmp."), std::string::npos);

  nt::SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "round trip");

  const auto& ta = f.get("a.f32");
  EXPECT_EQ(ta.dtype, nt::DType::F32);
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f.read_f32(ta), f32);
  EXPECT_EQ(std::memcmp(f.data(ta), f32.data(), f32.size() * 4), 0);

  const auto& tb = f.get("b.i64");
  EXPECT_EQ(tb.dtype, nt::DType::I64);
  EXPECT_EQ(f.read_i64(tb), i64);
  EXPECT_EQ(tb.begin % 8, 0u);

  const auto& tc = f.get("c.bf16");
  EXPECT_EQ(tc.dtype, nt::DType::BF16);
  EXPECT_EQ(f.read_f32(tc), bf_src);  // all exactly representable in bf16

  const auto& td = f.get("d.f16");
  EXPECT_EQ(td.dtype, nt::DType::F16);
  EXPECT_EQ(td.shape, (std::vector<int64_t>{5, 1}));
  std::vector<float> hv = f.read_f32(td);
  ASSERT_EQ(hv.size(), 5u);
  EXPECT_EQ(hv[0], 1.0f);
  EXPECT_EQ(hv[1], -2.0f);
  EXPECT_EQ(hv[2], 65504.0f);
  EXPECT_EQ(hv[3], 5.960464477539063e-08f);
  EXPECT_EQ(hv[4], 0.5f);

  EXPECT_EQ(f.read_i64(f.get("e.bool")), (std::vector<int64_t>{1, 0, 1}));
  const auto& ts = f.get("f.scalar");
  EXPECT_TRUE(ts.shape.empty());
  EXPECT_EQ(ts.numel(), 1);
  EXPECT_EQ(f.read_f32(ts), (std::vector<float>{7.0f}));
  const auto& te = f.get("g.empty");
  EXPECT_EQ(te.numel(), 0);
  EXPECT_TRUE(f.read_f32(te).empty());
}

TEST(Safetensors, WriteOmitsEmptyMetadataAndOverwrites) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  const std::vector<float> v = {1, 2};
  nt::write_safetensors(path, {{"x", nt::DType::F32, {2}, as_bytes(v)}}, {{"k", "v"}});
  nt::write_safetensors(path, {{"y", nt::DType::F32, {2}, as_bytes(v)}});
  EXPECT_EQ(nt::test::read_text(path).find("__metadata__"), std::string::npos);
  nt::SafetensorsFile f(path);
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(f.find("x"), nullptr);
  EXPECT_EQ(f.read_f32(f.get("y")), v);
}

TEST(Safetensors, WriteRejectsWrongByteCount) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const std::vector<float> v = {1, 2, 3};
  try {
    nt::write_safetensors(path, {{"x", nt::DType::F32, {2, 2}, as_bytes(v)}});
    FAIL() << "expected nt::Error";
  } catch (const nt::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("tensor 'x'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("needs 16 bytes"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Safetensors, WriteRejectsDuplicateNames) {
  TempDir dir;
  const std::vector<float> v = {1};
  EXPECT_THROW(nt::write_safetensors(dir.file("d.safetensors"),
                                 {{"x", nt::DType::F32, {1}, as_bytes(v)},
                                  {"x", nt::DType::F32, {1}, as_bytes(v)}}),
               nt::Error);
}

TEST(Safetensors, ReadsUnalignedData) {
  // A header whose length is not a multiple of 8 puts F32 data at an odd address.
  const std::string header = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  float vals[2] = {3.25f, -7.5f};
  std::string data(1, '\x7f');
  data.append(reinterpret_cast<const char*>(vals), sizeof vals);
  TempDir dir;
  const std::string path = dir.file("u.safetensors");
  write_text(path, raw_file(header, data));
  nt::SafetensorsFile f(path);
  EXPECT_EQ(f.read_f32(f.get("t")), (std::vector<float>{3.25f, -7.5f}));
}

TEST(Safetensors, ReadsOtherIntegerAndFloatDtypes) {
  const std::string header =
      R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},)"
      R"("c":{"dtype":"I16","shape":[1],"data_offsets":[12,14]},)"
      R"("d":{"dtype":"I8","shape":[1],"data_offsets":[14,15]},)"
      R"("e":{"dtype":"U8","shape":[1],"data_offsets":[15,16]}})";
  std::string data(16, '\0');
  const double d = -0.5;
  const int32_t i32 = -100000;
  const int16_t i16 = -300;
  std::memcpy(&data[0], &d, 8);
  std::memcpy(&data[8], &i32, 4);
  std::memcpy(&data[12], &i16, 2);
  data[14] = static_cast<char>(-5);
  data[15] = static_cast<char>(200);
  TempDir dir;
  const std::string path = dir.file("o.safetensors");
  write_text(path, raw_file(header, data));
  nt::SafetensorsFile f(path);
  EXPECT_EQ(f.read_f32(f.get("a")), (std::vector<float>{-0.5f}));
  EXPECT_THROW(f.read_i64(f.get("a")), nt::Error);
  EXPECT_EQ(f.read_i64(f.get("b")), (std::vector<int64_t>{-100000}));
  EXPECT_EQ(f.read_i64(f.get("c")), (std::vector<int64_t>{-300}));
  EXPECT_EQ(f.read_i64(f.get("d")), (std::vector<int64_t>{-5}));
  EXPECT_EQ(f.read_i64(f.get("e")), (std::vector<int64_t>{200}));
  EXPECT_EQ(f.read_f32(f.get("e")), (std::vector<float>{200.0f}));
}

TEST(Safetensors, ReadI64ErrorNamesFileAndTensor) {
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  TempDir dir;
  const std::string path = dir.file("f.safetensors");
  write_text(path, raw_file(header, std::string(4, '\0')));
  nt::SafetensorsFile f(path);
  try {
    f.read_i64(f.get("w"));
    FAIL() << "expected nt::Error";
  } catch (const nt::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("tensor 'w'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("F32"), std::string::npos) << msg;
  }
}

// ----------------------------------------------------------------------------------------------
// Half-precision conversions

TEST(HalfPrecision, F16KnownValues) {
  EXPECT_EQ(nt::f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(nt::f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(nt::f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(nt::f16_to_f32(0x0001), 5.960464477539063e-08f);
  EXPECT_EQ(nt::f16_to_f32(0x03FF), 6.097555160522461e-05f);  // largest subnormal
  EXPECT_EQ(nt::f16_to_f32(0x0400), 6.103515625e-05f);        // smallest normal
  EXPECT_EQ(nt::f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(nt::f16_to_f32(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(nt::f16_to_f32(0x8000)));
  EXPECT_EQ(nt::f16_to_f32(0x8000), 0.0f);
  EXPECT_EQ(nt::f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(nt::f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(nt::f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(nt::f16_to_f32(0x7C01)));
  EXPECT_TRUE(std::isnan(nt::f16_to_f32(0xFC01)));
}

TEST(HalfPrecision, Bf16Conversions) {
  EXPECT_EQ(nt::bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(nt::bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(nt::bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(nt::bf16_to_f32(0x7FC0)));
  EXPECT_EQ(nt::f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(nt::f32_to_bf16(-2.0f), 0xC000);
  // Round to nearest, ties to even.
  EXPECT_EQ(nt::f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(nt::f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(nt::f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);  // above half
  EXPECT_EQ(nt::f32_to_bf16(std::bit_cast<float>(0x3F807FFFu)), 0x3F80);  // below half
  EXPECT_EQ(nt::f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(nt::f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to inf
  // NaN stays NaN, even one whose payload lives only in the low 16 bits.
  EXPECT_TRUE(std::isnan(nt::bf16_to_f32(nt::f32_to_bf16(std::bit_cast<float>(0x7F800001u)))));
  EXPECT_TRUE(std::isnan(nt::bf16_to_f32(nt::f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::signbit(nt::bf16_to_f32(nt::f32_to_bf16(-0.0f))));
}

TEST(Safetensors, DtypeNamesAndSizes) {
  EXPECT_STREQ(nt::dtype_name(nt::DType::F32), "F32");
  EXPECT_STREQ(nt::dtype_name(nt::DType::BF16), "BF16");
  EXPECT_STREQ(nt::dtype_name(nt::DType::BOOL), "BOOL");
  EXPECT_EQ(nt::dtype_size(nt::DType::F64), 8u);
  EXPECT_EQ(nt::dtype_size(nt::DType::I64), 8u);
  EXPECT_EQ(nt::dtype_size(nt::DType::F32), 4u);
  EXPECT_EQ(nt::dtype_size(nt::DType::F16), 2u);
  EXPECT_EQ(nt::dtype_size(nt::DType::BF16), 2u);
  EXPECT_EQ(nt::dtype_size(nt::DType::U8), 1u);
  EXPECT_EQ(nt::dtype_size(nt::DType::BOOL), 1u);
}

// ----------------------------------------------------------------------------------------------
// Bad inputs: one test per failure the reader must report.

TEST(SafetensorsBadInput, MissingFile) {
  TempDir dir;
  expect_error(dir.file("absent.safetensors"), "cannot open");
}

TEST(SafetensorsBadInput, EmptyFile) { expect_bad_file("", "truncated file (0 bytes"); }

TEST(SafetensorsBadInput, TruncatedLengthPrefix) {
  expect_bad_file(std::string("\x10\0\0\0\0", 5), "truncated file (5 bytes, need at least 8 for the header length)");
}

TEST(SafetensorsBadInput, HeaderLengthPastEndOfFile) {
  std::string contents = u64_le(123456) + std::string(992, ' ');
  expect_bad_file(contents, "header length 123456 runs past the end of the file (1000 bytes)");
}

TEST(SafetensorsBadInput, HeaderLengthAbsurdlyLarge) {
  expect_bad_file(u64_le(200ull * 1000 * 1000) + "{}      ", "absurdly large");
  expect_bad_file(u64_le(~0ull) + "{}      ", "absurdly large");
}

TEST(SafetensorsBadInput, MalformedJson) {
  expect_bad_file(raw_file(R"({"a": {"dtype": "F32",)"), "malformed header JSON (");
}

TEST(SafetensorsBadInput, EmptyHeader) { expect_bad_file(raw_file(""), "malformed header JSON"); }

TEST(SafetensorsBadInput, DuplicateKey) {
  expect_bad_file(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                           "xx"),
                  "duplicate key 'a'");
}

TEST(SafetensorsBadInput, HeaderNotAnObject) {
  expect_bad_file(raw_file("[1, 2, 3]"), "header is not a JSON object");
}

TEST(SafetensorsBadInput, EntryNotAnObject) {
  expect_bad_file(raw_file(R"({"x": 5})"), "tensor 'x': entry is not a JSON object");
}

TEST(SafetensorsBadInput, UnsupportedDtype) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", "z"),
                  "tensor 'x': unsupported dtype 'Q4'");
}

TEST(SafetensorsBadInput, DtypeNotAString) {
  expect_bad_file(raw_file(R"({"x":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
                           std::string(4, '\0')),
                  "tensor 'x': dtype is not a string");
}

TEST(SafetensorsBadInput, MissingDtype) {
  expect_bad_file(raw_file(R"({"x":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')),
                  "tensor 'x': missing field 'dtype'");
}

TEST(SafetensorsBadInput, MissingShape) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","data_offsets":[0,4]}})", std::string(4, '\0')),
                  "tensor 'x': missing field 'shape'");
}

TEST(SafetensorsBadInput, MissingDataOffsets) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')),
                  "tensor 'x': missing field 'data_offsets'");
}

TEST(SafetensorsBadInput, NegativeDimension) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,4]}})",
                           std::string(4, '\0')),
                  "tensor 'x': negative dimension -1 in shape");
}

TEST(SafetensorsBadInput, NonIntegerDimension) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
                           std::string(4, '\0')),
                  "tensor 'x': shape must be an array of integers");
}

TEST(SafetensorsBadInput, ShapeNotAnArray) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":4,"data_offsets":[0,4]}})",
                           std::string(4, '\0')),
                  "tensor 'x': shape is not an array");
}

TEST(SafetensorsBadInput, ShapeProductOverflows) {
  expect_bad_file(
      raw_file(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
               std::string(4, '\0')),
      "tensor 'x': shape [4294967296, 4294967296] of F32 overflows");
  // Fits int64 elements, but not bytes.
  expect_bad_file(
      raw_file(R"({"x":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})",
               std::string(8, '\0')),
      "tensor 'x': shape [4611686018427387904] of F64 overflows");
}

TEST(SafetensorsBadInput, DataOffsetsMalformed) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "z"),
                  "tensor 'x': data_offsets must be two non-negative integers");
  expect_bad_file(raw_file(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "z"),
                  "tensor 'x': data_offsets must be two non-negative integers");
}

TEST(SafetensorsBadInput, DataOffsetsPastEnd) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           std::string(4, '\0')),
                  "tensor 'x': data_offsets [0, 8] out of range (data section is 4 bytes)");
}

TEST(SafetensorsBadInput, DataOffsetsReversed) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})",
                           std::string(4, '\0')),
                  "tensor 'x': data_offsets [4, 0] out of range (data section is 4 bytes)");
}

TEST(SafetensorsBadInput, ShapeDisagreesWithOffsets) {
  expect_bad_file(raw_file(R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                           std::string(24, '\0')),
                  "tensor 'x': shape [2, 3] of F32 needs 24 bytes but data_offsets span 20");
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  expect_bad_file(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           std::string(8, '\0')),
                  "tensors 'a' and 'b' overlap");
  // A tensor inside a large one, after a smaller one that starts later than the large one.
  expect_bad_file(raw_file(R"({"big":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},)"
                           R"("s1":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}})",
                           std::string(10, '\0')),
                  "tensors 'big' and 's1' overlap");
}

TEST(SafetensorsBadInput, MetadataNotAnObject) {
  expect_bad_file(raw_file(R"({"__metadata__": "pt"})"), "__metadata__ is not a JSON object");
}

TEST(SafetensorsBadInput, MetadataValueNotAString) {
  expect_bad_file(raw_file(R"({"__metadata__": {"format": "pt", "n": 3}})"),
                  "__metadata__ value for 'n' is not a string");
}

TEST(SafetensorsBadInput, DirectoryIsNotAFile) {
  TempDir dir;
  expect_error(dir.path(), "not a regular file");
}

TEST(SafetensorsBadInput, MessageStaysOnOneLineForOddNames) {
  // A tensor name with a newline is escaped in the message.
  expect_bad_file(raw_file("{\"a\\nb\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", "z"),
                  "tensor 'a\\nb': unsupported dtype 'Q4'");
}

TEST(Safetensors, ZeroSizedTensorsDoNotOverlap) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("c":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}})";
  TempDir dir;
  const std::string path = dir.file("z.safetensors");
  write_text(path, raw_file(header, std::string(4, '\0')));
  nt::SafetensorsFile f(path);
  EXPECT_EQ(f.tensors().size(), 3u);
}

TEST(Safetensors, HeaderOnlyFileWithNoTensors) {
  TempDir dir;
  const std::string path = dir.file("h.safetensors");
  write_text(path, raw_file("{}      "));
  nt::SafetensorsFile f(path);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
}
