#include "sae/npy.h"

#include <cstring>
#include <limits>
#include <string_view>

#include "util/error.h"

namespace nt {

namespace {

// Reads the header dict: a cursor over its text with the few token kinds numpy writes.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& where) : text_(text), where_(where) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_ + ": malformed .npy header: " + what);
  }
  void skip_spaces() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool accept(char c) {
    skip_spaces();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }
  std::string quoted() {
    skip_spaces();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a quoted string");
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    for (unsigned char c : s)
      if (c < 0x20 || c >= 0x7f) fail("non-printable character in a string");
    pos_ = end + 1;
    return s;
  }
  bool boolean() {
    skip_spaces();
    for (auto [word, value] : {std::pair{std::string_view("False"), false}, std::pair{std::string_view("True"), true}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False");
  }
  int64_t dimension() {
    skip_spaces();
    int64_t v = 0;
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
      v = v * 10 + (text_[pos_++] - '0');
    }
    if (pos_ == start) fail("expected a dimension");
    return v;
  }
  std::vector<int64_t> shape() {
    expect('(');
    std::vector<int64_t> dims;
    if (accept(')')) return dims;
    for (;;) {
      dims.push_back(dimension());
      if (accept(')')) {
        if (dims.size() == 1) fail("a 1-d shape needs a trailing comma");
        return dims;
      }
      expect(',');
      if (accept(')')) return dims;
      if (dims.size() > 32) fail("too many dimensions");
    }
  }
  void end() {
    skip_spaces();
    if (pos_ != text_.size()) fail("unexpected text after the dict");
  }

 private:
  std::string_view text_;
  const std::string& where_;
  size_t pos_ = 0;
};

struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

Header parse_header(std::string_view text, const std::string& where) {
  if (text.empty() || text.back() != '\n') throw Error(where + ": malformed .npy header: not ended by a newline");
  text.remove_suffix(1);
  HeaderParser p(text, where);
  Header h;
  bool seen_descr = false, seen_order = false, seen_shape = false;
  p.expect('{');
  while (!p.accept('}')) {
    const std::string key = p.quoted();
    p.expect(':');
    if (key == "descr" && !seen_descr) {
      h.descr = p.quoted();
      seen_descr = true;
    } else if (key == "fortran_order" && !seen_order) {
      h.fortran_order = p.boolean();
      seen_order = true;
    } else if (key == "shape" && !seen_shape) {
      h.shape = p.shape();
      seen_shape = true;
    } else {
      p.fail("unexpected or repeated key '" + key + "'");
    }
    if (!p.accept(',')) {
      p.expect('}');
      break;
    }
  }
  p.end();
  if (!seen_descr || !seen_order || !seen_shape) p.fail("needs 'descr', 'fortran_order' and 'shape'");
  return h;
}

uint32_t read_le(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& where) {
  static constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    throw Error(where + ": not a .npy array (no \\x93NUMPY magic)");
  const int major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2) || minor != 0)
    throw Error(where + ": unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor) +
                " (1.0 and 2.0 are read)");
  const size_t prefix = major == 1 ? 10 : 12;
  if (bytes.size() < prefix) throw Error(where + ": truncated .npy header");
  const size_t header_len = read_le(bytes.data() + 8, major == 1 ? 2 : 4);
  if (header_len > bytes.size() - prefix) throw Error(where + ": .npy header longer than the file");
  const Header h = parse_header(
      std::string_view(reinterpret_cast<const char*>(bytes.data() + prefix), header_len), where);
  if (h.descr != "<f4") throw Error(where + ": .npy dtype '" + h.descr + "' is not supported (little-endian float32 '<f4' is)");
  if (h.fortran_order) throw Error(where + ": .npy array in Fortran order is not supported (C order is)");

  uint64_t count = 1;
  for (int64_t d : h.shape) {
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / 8 / static_cast<uint64_t>(d))
      throw Error(where + ": .npy shape " + shape_text(h.shape) + " is too large");
    count *= static_cast<uint64_t>(d);
  }
  const size_t data_bytes = bytes.size() - prefix - header_len;
  if (count * sizeof(float) != data_bytes)
    throw Error(where + ": .npy data is " + std::to_string(data_bytes) + " bytes, shape " + shape_text(h.shape) +
                " of float32 needs " + std::to_string(count * sizeof(float)));
  NpyArray a;
  a.shape = h.shape;
  a.data.resize(count);
  if (count) std::memcpy(a.data.data(), bytes.data() + prefix + header_len, data_bytes);
  return a;
}

}  // namespace nt
