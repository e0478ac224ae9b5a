#pragma once
// Unicode Normalization Form C, through ICU (libicu): what a tokenizer.json "NFC" normalizer does
// to text before it is tokenized (GPT-NeoX / Pythia, Qwen2).
#include <string>
#include <string_view>

namespace nt {

// True when NFC(text) == text. Bytes that are not valid UTF-8 count as characters NFC leaves alone.
bool is_nfc(std::string_view text);

// NFC(text). Bytes that are not valid UTF-8 are kept as they are (each run of valid UTF-8 between
// them is normalized on its own), so byte-level BPE still sees every byte of the input.
std::string to_nfc(std::string_view text);

}  // namespace nt
