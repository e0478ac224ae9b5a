#pragma once
// Whether UTF-8 text is already in Unicode Normalization Form C. Tokenizers whose tokenizer.json
// has the "NFC" normalizer (Qwen2) normalize their input first; neurontrace has no Unicode
// normalizer, so it checks instead and refuses text that NFC would change (rare: decomposed
// accents, compatibility ideographs, out-of-order combining marks). Text that passes is exactly
// what the normalizer would have produced.
#include <string_view>

namespace nt {

// True when NFC(text) == text. Bytes that are not valid UTF-8 count as characters NFC leaves alone.
bool is_nfc(std::string_view text);

}  // namespace nt
