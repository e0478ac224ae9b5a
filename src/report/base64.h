#pragma once
// Encodings for putting content into reports: base64 (RFC 4648, '=' padded) for inlining PNGs as
// data: URIs, and UTF-8 repair for text that may hold partial characters (a byte-level BPE token
// can end in the middle of a multi-byte character).
#include <string>
#include <string_view>
#include <vector>

namespace nt {

std::string base64_encode(std::string_view bytes);

// `text` with every invalid UTF-8 sequence (stray continuation bytes, truncated or overlong
// sequences, surrogates, > U+10FFFF) replaced by U+FFFD; valid text comes back unchanged.
std::string sanitize_utf8(std::string_view text);

// Per-token texts of a byte-level tokenizer, ready for display: a character split across tokens
// is moved whole into the token that completes it (the earlier token keeps its complete
// characters only), then every text goes through sanitize_utf8. Same length as `tokens`.
std::vector<std::string> repair_token_texts(const std::vector<std::string>& tokens);

}  // namespace nt
