#include "util/message_text.h"

#include <algorithm>
#include <cstdint>

namespace nt {

namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // "…"

// Length of the valid UTF-8 sequence at the start of `s` (1..4), or 0 when it is not one
// (a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, or cut short).
size_t utf8_length(std::string_view s, char32_t* code_point) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = b(0);
  size_t n;
  char32_t cp;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2, cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3, cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4, cp = lead & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  *code_point = cp;
  return n;
}

// Characters a terminal may act on rather than show: C0 controls, DEL, C1 controls (U+009B is
// a one-character CSI), and the bidirectional overrides and isolates that reorder what is shown.
bool is_control(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

std::string hex_escape(const char* prefix, uint32_t value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = prefix;
  for (int d = digits - 1; d >= 0; --d) out += kHex[(value >> (4 * d)) & 15];
  return out;
}

// The output for one character (or one invalid byte) at the start of `s`; sets *used.
std::string escape_one(std::string_view s, size_t* used) {
  char32_t cp = 0;
  const size_t n = utf8_length(s, &cp);
  if (n == 0) {
    *used = 1;
    return hex_escape("\\x", static_cast<uint8_t>(s[0]), 2);
  }
  *used = n;
  if (!is_control(cp)) return std::string(s.substr(0, n));
  if (cp == '\n') return "\\n";
  if (cp == '\r') return "\\r";
  if (cp == '\t') return "\\t";
  return cp < 0x80 ? hex_escape("\\x", cp, 2) : hex_escape("\\u", cp, 4);
}

}  // namespace

std::string escape_for_message(std::string_view text, size_t max_len) {
  std::string out;
  out.reserve(std::min(text.size(), max_len) + kEllipsis.size());
  for (size_t i = 0; i < text.size();) {
    size_t used = 0;
    const std::string piece = escape_one(text.substr(i), &used);
    if (out.size() + piece.size() > max_len) {
      out += kEllipsis;
      break;
    }
    out += piece;
    i += used;
  }
  return out;
}

std::string quote_for_message(std::string_view text, size_t max_len) {
  std::string out = "'";
  out += escape_for_message(text, max_len);
  out += '\'';
  return out;
}

}  // namespace nt
