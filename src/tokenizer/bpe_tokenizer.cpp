#include "tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <string_view>
#include <utility>

#include "tokenizer/unicode_nfc.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

using nlohmann::json;

constexpr size_t kMaxVocab = 10'000'000;   // sanity bound on vocab entries / ids
constexpr size_t kMaxMerges = 10'000'000;  // sanity bound on merge rules
constexpr size_t kMaxCachedPiece = 64;     // longer pieces are rare repeats: not cached
constexpr size_t kMaxCacheEntries = 1 << 18;
constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---- GPT-2 byte alphabet (bytes_to_unicode) ------------------------------------------------
// Printable bytes 0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF map to the code point of the same value;
// the other 68 bytes, in increasing order, map to U+0100, U+0101, ... (space -> U+0120 'Ġ').
constexpr int kAlphabetCodePoints = 0x100 + 68;

struct ByteAlphabet {
  std::array<std::string, 256> utf8;           // byte -> UTF-8 of its code point
  std::array<int, kAlphabetCodePoints> byte{};  // code point -> byte, -1 when not in the alphabet

  ByteAlphabet() {
    byte.fill(-1);
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      int cp = printable ? b : next++;
      byte[static_cast<size_t>(cp)] = b;
      if (cp < 0x80) {
        utf8[static_cast<size_t>(b)] = std::string(1, static_cast<char>(cp));
      } else {  // all code points here are < 0x800: two bytes
        utf8[static_cast<size_t>(b)] = {static_cast<char>(0xC0 | (cp >> 6)),
                                        static_cast<char>(0x80 | (cp & 0x3F))};
      }
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

// A vocab token (in the byte alphabet) -> the raw bytes it stands for. Code points outside the
// alphabet (possible in hand-made vocabs) are kept as their UTF-8 bytes.
std::string alphabet_to_bytes(std::string_view token) {
  const ByteAlphabet& a = alphabet();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    auto c = static_cast<unsigned char>(token[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + len > token.size()) len = 1;
    uint32_t cp = c;
    if (len == 2) cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(token[i + 1]) & 0x3Fu);
    if (len <= 2 && cp < kAlphabetCodePoints && a.byte[cp] >= 0) {
      out.push_back(static_cast<char>(a.byte[cp]));
    } else {
      out.append(token.substr(i, len));
    }
    i += len;
  }
  return out;
}

json parse_json_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": file not found");
  std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(path + ": malformed JSON (" + escape_for_message(e.what()) + ")");
  }
}

int parse_id(const json& v, const std::string& where) {
  if (!v.is_number_integer()) throw Error(where + " must be an integer token id");
  int64_t id = v.get<int64_t>();
  if (id < 0 || id >= static_cast<int64_t>(kMaxVocab))
    throw Error(where + " has token id " + std::to_string(id) + " out of range [0, " +
                std::to_string(kMaxVocab) + ")");
  return static_cast<int>(id);
}

// What the two file formats have in common, before the merge table is built.
struct Source {
  std::vector<std::pair<std::string, int>> vocab;          // token (alphabet form) -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<std::pair<std::string, int>> added;          // added tokens: literal text -> id
  std::vector<bool> added_normalized;  // per added token: matched in normalized text (else raw)
  bool add_prefix_space = false;
  std::string pattern = kGpt2Pattern;  // pre-tokenizer regex
  bool ignore_merges = false;          // a piece that is a whole vocab token is not merged (Llama-3)
  bool nfc = false;                    // normalizer NFC (Qwen2)
  int template_bos = -1;               // post_processor template's leading special token, -1 if none
};

void read_vocab_object(const json& v, const std::string& path, const std::string& what,
                       Source& src) {
  if (!v.is_object()) throw Error(path + ": " + what + " must be a JSON object of token -> id");
  if (v.size() > kMaxVocab)
    throw Error(path + ": " + what + " has more than " + std::to_string(kMaxVocab) + " entries");
  src.vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it)
    src.vocab.emplace_back(it.key(), parse_id(it.value(), path + ": " + what + " entry"));
}

// merges.txt: optional "#version" first line, then "LEFT RIGHT" per line. Blank lines (e.g. at
// the end) are skipped; a missing final newline and CRLF line ends are tolerated.
void read_merges_txt(const std::string& path, Source& src) {
  if (!std::filesystem::exists(path)) throw Error(path + ": file not found");
  const std::string text = read_file(path);
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line_no == 1 && line.starts_with("#version")) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos)
      throw Error(path + ":" + std::to_string(line_no) +
                  ": expected two tokens separated by one space");
    if (src.merges.size() >= kMaxMerges)
      throw Error(path + ": more than " + std::to_string(kMaxMerges) + " merges");
    src.merges.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
}

struct Merge {
  int rank;
  int result;
};

uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct PcreCodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct PcreMatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

// tokenizer.json (Hugging Face tokenizers): model.vocab, model.merges ("a b" strings or
// ["a", "b"] pairs), added_tokens. Only byte-level BPE with the GPT-2 pattern is accepted.
// `split_layout` is set as soon as the pre-tokenizer is seen to be a Sequence with a Split.
Source read_tokenizer_json(const json& j, const std::string& path, bool& split_layout) {
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  Source src;
  auto model = j.find("model");
  if (model == j.end() || !model->is_object()) throw Error(path + ": missing object 'model'");
  std::string type = "BPE";  // older files omit model.type
  if (auto t = model->find("type"); t != model->end()) {
    if (!t->is_string()) throw Error(path + ": model.type must be a string");
    type = t->get<std::string>();
  }
  if (type != "BPE")
    throw Error(path + ": unsupported tokenizer model type " + quote_for_message(type) +
                " (only byte-level BPE is supported)");

  // Byte-level BPE means a ByteLevel pre-tokenizer: GPT-2's (with its built-in regex), or the
  // Llama-3 / Qwen2 layout, a Sequence of Split(Regex, behavior Isolated) then
  // ByteLevel(use_regex=false), where the Split's regex takes the place of GPT-2's. Anything else
  // (Metaspace/SentencePiece-style BPE, other Split options, more stages) would encode
  // differently, so it is rejected rather than silently mis-tokenized.
  auto pre = j.find("pre_tokenizer");
  std::string pre_type = "none";
  if (pre != j.end() && pre->is_object() && pre->contains("type") && (*pre)["type"].is_string())
    pre_type = (*pre)["type"].get<std::string>();
  const json* byte_level = nullptr;
  if (pre_type == "ByteLevel") {
    if (!pre->value("use_regex", true))
      throw Error(path + ": unsupported ByteLevel pre_tokenizer with use_regex=false");
    byte_level = &*pre;
  } else if (pre_type == "Sequence") {
    if (auto l = pre->find("pretokenizers"); l != pre->end() && l->is_array())
      for (const json& e : *l)
        if (e.is_object() && e.value("type", json()) == "Split") split_layout = true;
    const std::string layout =
        " (supported: Split with a Regex pattern followed by ByteLevel with use_regex=false, as in "
        "Llama-3 and Qwen2)";
    auto list = pre->find("pretokenizers");
    auto type_of = [](const json& e) {
      return e.is_object() && e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>()
                                                                          : std::string("?");
    };
    if (list == pre->end() || !list->is_array() || list->size() != 2 || type_of((*list)[0]) != "Split" ||
        type_of((*list)[1]) != "ByteLevel") {
      std::string types;
      if (list != pre->end() && list->is_array())
        for (const json& e : *list) types += (types.empty() ? "" : ", ") + type_of(e);
      throw Error(path + ": unsupported pre_tokenizer Sequence [" + escape_for_message(types) + "]" + layout);
    }
    const json& split = (*list)[0];
    auto pattern = split.find("pattern");
    if (pattern == split.end() || !pattern->is_object() || !pattern->contains("Regex") ||
        !(*pattern)["Regex"].is_string())
      throw Error(path + ": unsupported Split pre_tokenizer: pattern must be {\"Regex\": ...}" + layout);
    const std::string behavior = split.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated")
      throw Error(path + ": unsupported Split pre_tokenizer behavior " + quote_for_message(behavior) + layout);
    if (split.value("invert", false))
      throw Error(path + ": unsupported Split pre_tokenizer with invert=true" + layout);
    byte_level = &(*list)[1];
    if (byte_level->value("use_regex", true))
      throw Error(path + ": unsupported ByteLevel pre_tokenizer with use_regex=true after a Split" + layout);
    src.pattern = (*pattern)["Regex"].get<std::string>();
  } else {
    throw Error(path + ": unsupported BPE pre_tokenizer " + quote_for_message(pre_type) +
                " (only byte-level BPE is supported: ByteLevel, or Split + ByteLevel)");
  }
  if (auto norm = j.find("normalizer"); norm != j.end() && !norm->is_null()) {
    const std::string norm_type =
        norm->is_object() ? norm->value("type", std::string("?")) : std::string("?");
    if (norm_type != "NFC")
      throw Error(path + ": unsupported normalizer " + quote_for_message(norm_type) +
                  " (only none or NFC is supported with byte-level BPE)");
    src.nfc = true;
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model->find(key);
    if (it != model->end() && it->is_string() && !it->get<std::string>().empty())
      throw Error(path + ": unsupported BPE option model." + key);
  }
  src.ignore_merges = model->value("ignore_merges", false);

  src.add_prefix_space = byte_level->value("add_prefix_space", false);
  auto vocab = model->find("vocab");
  if (vocab == model->end()) throw Error(path + ": missing model.vocab");
  read_vocab_object(*vocab, path, "model.vocab", src);

  auto merges = model->find("merges");
  if (merges == model->end() || !merges->is_array())
    throw Error(path + ": model.merges must be an array");
  if (merges->size() > kMaxMerges)
    throw Error(path + ": more than " + std::to_string(kMaxMerges) + " merges");
  src.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    const std::string where = path + ": model.merges[" + std::to_string(i) + "]";
    if (m.is_string()) {  // "left right"
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() ||
          s.find(' ', sp + 1) != std::string::npos)
        throw Error(where + ": expected two tokens separated by one space");
      src.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      src.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw Error(where + ": expected \"left right\" or [\"left\", \"right\"]");
    }
  }

  if (auto added = j.find("added_tokens"); added != j.end() && !added->is_null()) {
    if (!added->is_array()) throw Error(path + ": added_tokens must be an array");
    for (size_t i = 0; i < added->size(); ++i) {
      const json& a = (*added)[i];
      const std::string where = path + ": added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string())
        throw Error(where + ": expected an object with 'id' and 'content'");
      src.added.emplace_back(a["content"].get<std::string>(), parse_id(a["id"], where));
      // tokenizers' AddedToken: `normalized` defaults to !special
      src.added_normalized.push_back(a.value("normalized", !a.value("special", false)));
    }
  }

  // A post_processor template that starts with a special token adds it (Llama-3's BOS
  // <|begin_of_text|>); it may sit inside a Sequence of processors.
  if (auto post = j.find("post_processor"); post != j.end() && post->is_object()) {
    std::vector<const json*> procs = {&*post};
    if (post->value("type", std::string()) == "Sequence" && post->contains("processors") &&
        (*post)["processors"].is_array())
      for (const json& p : (*post)["processors"]) procs.push_back(&p);
    for (const json* p : procs) {
      if (!p->is_object() || p->value("type", std::string()) != "TemplateProcessing") continue;
      auto single = p->find("single");
      if (single == p->end() || !single->is_array() || single->empty()) continue;
      const json& first = (*single)[0];
      if (!first.is_object() || !first.contains("SpecialToken")) continue;
      const std::string name = first["SpecialToken"].value("id", std::string());
      auto special = p->find("special_tokens");
      if (special != p->end() && special->is_object() && special->contains(name)) {
        const json& ids = (*special)[name]["ids"];
        if (ids.is_array() && ids.size() == 1)
          src.template_bos = parse_id(ids[0], path + ": post_processor special token " + quote_for_message(name));
      }
    }
  }

  return src;
}

// tokenizer_config.json: the names of the BOS / EOS tokens (a string, an AddedToken object with
// "content", or null for none) and add_bos_token. Absent fields stay unset.
struct TokenizerConfig {
  std::optional<std::optional<std::string>> bos_token, eos_token;
  std::optional<bool> add_bos_token;
};

TokenizerConfig read_tokenizer_config(const std::string& path) {
  TokenizerConfig tc;
  if (path.empty() || !std::filesystem::is_regular_file(path)) return tc;
  const json j = parse_json_file(path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  auto name = [&](const char* key) -> std::optional<std::optional<std::string>> {
    auto it = j.find(key);
    if (it == j.end()) return std::nullopt;
    if (it->is_null()) return std::optional<std::string>();
    if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      return std::optional<std::string>((*it)["content"].get<std::string>());
    throw Error(path + ": " + key + " must be a string, an object with \"content\", or null");
  };
  tc.bos_token = name("bos_token");
  tc.eos_token = name("eos_token");
  if (auto it = j.find("add_bos_token"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) throw Error(path + ": add_bos_token must be true or false");
    tc.add_bos_token = it->get<bool>();
  }
  return tc;
}

}  // namespace

// Added tokens found in text as Hugging Face's AddedVocabulary finds them: the leftmost occurrence
// first, the longest one at that position.
class AddedTokenSplitter {
 public:
  // Call finish() once all are added.
  void add(const std::string& content, int id) {
    if (content.empty()) return;
    tokens_.emplace_back(content, id);
    first_byte_[static_cast<unsigned char>(content[0])] = true;
  }
  void finish() {
    std::stable_sort(tokens_.begin(), tokens_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  // Calls text_piece(string_view) for the text between tokens and token(id) for each token, in order.
  template <class TextFn, class TokenFn>
  void split(std::string_view text, TextFn text_piece, TokenFn token) const {
    size_t done = 0;
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (!first_byte_[static_cast<unsigned char>(text[pos])]) continue;
      for (const auto& [content, id] : tokens_) {
        if (text.compare(pos, content.size(), content) != 0) continue;
        if (pos > done) text_piece(text.substr(done, pos - done));
        token(id);
        done = pos + content.size();
        pos = done - 1;
        break;
      }
    }
    if (done < text.size()) text_piece(text.substr(done));
  }

 private:
  std::vector<std::pair<std::string, int>> tokens_;  // longest first
  std::array<bool, 256> first_byte_{};
};

struct BpeTokenizer::Impl {
  std::unordered_map<std::string, int> vocab;  // token (alphabet form) -> id
  std::vector<std::string> id_bytes;           // id -> raw bytes (special tokens: literal text)
  std::array<int, 256> byte_id{};              // byte -> id of its one-symbol token, -1 if none
  std::unordered_map<uint64_t, Merge> merges;  // (left id, right id) -> rank, merged id
  int unk_id = -1;                             // stands in for a byte missing from the vocab
  bool add_prefix_space = false;               // tokenizer.json ByteLevel option
  bool ignore_merges = false;                  // tokenizer.json model.ignore_merges
  bool nfc = false;                            // tokenizer.json normalizer NFC
  AddedTokenSplitter raw_added;                // added tokens matched before normalization
  AddedTokenSplitter normalized_added;         // added tokens matched in normalized text
  std::string source;                          // the file(s) it was read from, for messages
  std::unique_ptr<pcre2_code, PcreCodeDeleter> re;

  // Per-piece results. encode() is const and may run on several threads: guarded by a mutex.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>> cache;

  void build(Source&& src);
  void compile_pattern(const std::string& pattern);
  void bpe_piece(std::string_view piece, std::vector<int>& out) const;
  void encode_piece(std::string_view piece, std::vector<int>& out) const;
  void encode_text(std::string_view text, std::vector<int>& ids) const;
};

void BpeTokenizer::Impl::compile_pattern(const std::string& pattern) {
  // Invalid UTF-8 in prompts: compiled with PCRE2_MATCH_INVALID_UTF, the matcher never fails or
  // crashes on it; invalid bytes simply never match. encode() turns every run of bytes the
  // pattern skipped into its own piece, which byte-level BPE can always represent, so any byte
  // string encodes and decode(encode(t)) == t still holds (Hugging Face cannot take such input).
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off,
                                   nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error(source + ": cannot compile the pre-tokenizer pattern at offset " + std::to_string(err_off) +
                " (" + reinterpret_cast<const char*>(msg) + ")");
  }
  re.reset(code);
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: pcre2_match falls back when absent
}

void BpeTokenizer::Impl::build(Source&& src) {
  int max_id = -1;
  for (const auto& [tok, id] : src.vocab) max_id = std::max(max_id, id);
  for (const auto& [tok, id] : src.added) max_id = std::max(max_id, id);
  id_bytes.assign(static_cast<size_t>(max_id + 1), std::string());
  vocab.reserve(src.vocab.size());
  for (auto& [tok, id] : src.vocab) {
    id_bytes[static_cast<size_t>(id)] = alphabet_to_bytes(tok);
    vocab[std::move(tok)] = id;
  }
  // Added tokens (tokenizer.json) decode to their literal text and are found in prompts.
  for (size_t i = 0; i < src.added.size(); ++i) {
    const auto& [content, id] = src.added[i];
    id_bytes[static_cast<size_t>(id)] = content;
    (src.added_normalized[i] ? normalized_added : raw_added).add(content, id);
  }
  raw_added.finish();
  normalized_added.finish();

  const ByteAlphabet& a = alphabet();
  for (size_t b = 0; b < 256; ++b) {
    auto it = vocab.find(a.utf8[b]);
    byte_id[b] = it == vocab.end() ? -1 : it->second;
  }

  // Merge table over token ids. A merge whose parts or result are not in the vocab can never
  // yield a token, so it is ignored. A repeated pair keeps its last rank, as in Hugging Face.
  merges.reserve(src.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < src.merges.size(); ++rank) {
    const auto& [left, right] = src.merges[rank];
    auto l = vocab.find(left);
    auto r = vocab.find(right);
    if (l == vocab.end() || r == vocab.end()) continue;
    joined.assign(left).append(right);
    auto res = vocab.find(joined);
    if (res == vocab.end()) continue;
    merges[pair_key(l->second, r->second)] = Merge{static_cast<int>(rank), res->second};
  }
  add_prefix_space = src.add_prefix_space;
  ignore_merges = src.ignore_merges;
  nfc = src.nfc;
  compile_pattern(src.pattern);
}

// Byte-level BPE of one pre-tokenized piece: start from one symbol per byte and repeatedly merge
// the adjacent pair of lowest rank (leftmost first among equals) with a heap over a linked list,
// O(n log n), as Hugging Face's tokenizers does (same result as the reference loop for any
// merges.txt produced by BPE training).
void BpeTokenizer::Impl::bpe_piece(std::string_view piece, std::vector<int>& out) const {
  struct Sym {
    int id;
    int prev;
    int next;
  };
  struct Cand {
    int rank;
    int pos;
    int left;
    int right;
    int result;
    bool operator>(const Cand& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  if (ignore_merges) {  // the whole piece as one token when the vocab has it
    std::string key;
    for (unsigned char c : piece) key += alphabet().utf8[c];
    if (auto it = vocab.find(key); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const int n = static_cast<int>(piece.size());
  std::vector<Sym> syms(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    syms[static_cast<size_t>(i)] = {byte_id[static_cast<unsigned char>(piece[static_cast<size_t>(i)])],
                                    i - 1, i + 1 < n ? i + 1 : -1};

  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int pos) {
    if (pos < 0) return;
    const Sym& s = syms[static_cast<size_t>(pos)];
    if (s.next < 0) return;
    int right = syms[static_cast<size_t>(s.next)].id;
    if (s.id < 0 || right < 0) return;
    auto it = merges.find(pair_key(s.id, right));
    if (it != merges.end()) heap.push(Cand{it->second.rank, pos, s.id, right, it->second.result});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym& s = syms[static_cast<size_t>(c.pos)];
    if (s.id != c.left || s.next < 0) continue;  // stale: this symbol changed or was absorbed
    Sym& r = syms[static_cast<size_t>(s.next)];
    if (r.id != c.right) continue;
    s.id = c.result;
    r.id = -2;  // dead
    s.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = c.pos;
    consider(s.prev);
    consider(c.pos);
  }

  for (int i = 0; i >= 0 && i < n; i = syms[static_cast<size_t>(i)].next) {
    int id = syms[static_cast<size_t>(i)].id;
    if (id < 0) {
      // Only a byte whose one-symbol token is missing from the vocab gets here.
      if (unk_id < 0) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(piece[static_cast<size_t>(i)]));
        throw Error(std::string("tokenizer: byte ") + hex + " has no token in the vocab");
      }
      id = unk_id;
    }
    out.push_back(id);
  }
}

void BpeTokenizer::Impl::encode_piece(std::string_view piece, std::vector<int>& out) const {
  if (piece.empty()) return;
  const bool cacheable = piece.size() <= kMaxCachedPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(piece);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  bpe_piece(piece, out);
  if (cacheable) {
    std::vector<int> ids(out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(std::string(piece), std::move(ids));
  }
}

BpeTokenizer::BpeTokenizer() : impl_(std::make_unique<Impl>()) {}
BpeTokenizer::~BpeTokenizer() = default;

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_vocab_merges(const std::string& vocab_json_path,
                                                              const std::string& merges_txt_path) {
  Source src;
  json v = parse_json_file(vocab_json_path);
  read_vocab_object(v, vocab_json_path, "vocab", src);
  v = json();  // free the DOM early
  read_merges_txt(merges_txt_path, src);

  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->impl_->source = vocab_json_path;
  t->impl_->build(std::move(src));
  auto it = t->impl_->vocab.find(kEndOfText);
  t->eos_id_ = t->bos_id_ = (it == t->impl_->vocab.end() ? -1 : it->second);
  t->impl_->unk_id = t->eos_id_;  // GPT2Tokenizer's unk_token is <|endoftext|> too
  return t;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const std::string& path,
                                                                const std::string& tokenizer_config_path) {
  bool split_layout = false;
  try {
    return from_tokenizer_json(path, tokenizer_config_path, split_layout);
  } catch (const SplitLayoutError&) {
    throw;
  } catch (const Error& e) {
    if (split_layout) throw SplitLayoutError(e.what());
    throw;
  }
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const std::string& path,
                                                                const std::string& tokenizer_config_path,
                                                                bool& split_layout) {
  Source src;
  {
    const json j = parse_json_file(path);
    try {
      src = read_tokenizer_json(j, path, split_layout);
    } catch (const json::exception& e) {  // a field of the wrong JSON type
      throw Error(path + ": unexpected structure (" + escape_for_message(e.what()) + ")");
    }
  }
  TokenizerConfig tc;
  try {
    tc = read_tokenizer_config(tokenizer_config_path);
  } catch (const json::exception& e) {
    throw Error(tokenizer_config_path + ": unexpected structure (" + escape_for_message(e.what()) + ")");
  }
  std::vector<std::pair<std::string, int>> added = src.added;
  const int template_bos = src.template_bos;

  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->impl_->source = path;
  t->impl_->build(std::move(src));
  if (template_bos >= t->vocab_size())  // it would become the BOS id: out of range for every table
    throw Error(path + ": post_processor special token id " + std::to_string(template_bos) +
                " is not in the vocab (" + std::to_string(t->vocab_size()) + " ids)");
  // A token name -> id: added tokens first, then the vocab; -1 when absent.
  auto find_token = [&](const std::string& name) {
    for (const auto& [content, id] : added)
      if (content == name) return id;
    auto it = t->impl_->vocab.find(name);
    return it == t->impl_->vocab.end() ? -1 : it->second;
  };
  auto named = [&](const std::optional<std::string>& name, const char* key) {
    if (!name) return -1;  // null in tokenizer_config.json: no such token
    const int id = find_token(*name);
    if (id < 0)
      throw Error(tokenizer_config_path + ": " + key + " " + quote_for_message(*name) + " is not a token of " + path);
    return id;
  };
  // Without tokenizer_config.json (GPT-2): <|endoftext|> is EOS and BOS.
  const int endoftext = find_token(kEndOfText);
  t->eos_id_ = tc.eos_token ? named(*tc.eos_token, "eos_token") : endoftext;
  if (tc.bos_token)
    t->bos_id_ = named(*tc.bos_token, "bos_token");
  else
    t->bos_id_ = template_bos >= 0 ? template_bos : endoftext;
  t->add_bos_ = tc.add_bos_token ? *tc.add_bos_token : template_bos >= 0;
  t->impl_->unk_id = endoftext;
  return t;
}

// As tokenizers does: added tokens that are not normalized are cut out of the raw text; each piece
// between them is normalized (NFC), the normalized added tokens are cut out of it, and what is
// left is pre-tokenized and BPE-encoded piece by piece.
std::vector<int> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  if (text.empty()) return ids;
  ids.reserve(text.size() / 3 + 4);
  auto add_id = [&](int id) { ids.push_back(id); };
  impl_->raw_added.split(
      text,
      [&](std::string_view piece) {
        std::string normalized;
        if (impl_->nfc && !is_nfc(piece)) {
          normalized = to_nfc(piece);
          piece = normalized;
        }
        impl_->normalized_added.split(piece, [&](std::string_view rest) { impl_->encode_text(rest, ids); }, add_id);
      },
      add_id);
  return ids;
}

void BpeTokenizer::Impl::encode_text(std::string_view text, std::vector<int>& ids) const {
  std::string prefixed;
  if (add_prefix_space && text.front() != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.append(" ").append(text);
    text = prefixed;
  }

  std::unique_ptr<pcre2_match_data, PcreMatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(re.get(), nullptr));
  if (!md) throw Error("tokenizer: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    int rc = pcre2_match(re.get(), subject, text.size(), pos, 0, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) {  // only invalid UTF-8 is left
      encode_piece(text.substr(pos), ids);
      break;
    }
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(std::string("tokenizer: pre-tokenizer match failed (") +
                  reinterpret_cast<const char*>(msg) + ")");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    size_t start = ov[0], end = ov[1];
    if (start > pos) encode_piece(text.substr(pos, start - pos), ids);  // invalid UTF-8
    if (end <= start) end = start + 1;  // the pattern never matches empty; never loop forever
    encode_piece(text.substr(start, end - start), ids);
    pos = end;
  }
}

std::string BpeTokenizer::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("token id " + std::to_string(id) + " out of range (vocab size " +
                std::to_string(vocab_size()) + ")");
  return impl_->id_bytes[static_cast<size_t>(id)];
}

std::string BpeTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error("token id " + std::to_string(id) + " out of range (vocab size " +
                  std::to_string(vocab_size()) + ")");
    out += impl_->id_bytes[static_cast<size_t>(id)];
  }
  return out;
}

int BpeTokenizer::vocab_size() const { return static_cast<int>(impl_->id_bytes.size()); }

}  // namespace nt
