#include "tokenizer/spm_tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 '▁', sentencepiece's space


// "<0xAB>" -> 0xAB; -1 when `piece` is not of that form.
int byte_piece_value(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = piece[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else return -1;
  }
  return v;
}

std::string replace_spaces(const std::string& piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      i += kSpace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at s[i] (strict: no overlongs, surrogates or code points
// above U+10FFFF), 0 when the byte there does not start one.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace

struct SpmTokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  std::string path;
  std::vector<std::string> id_bytes;  // id -> token_bytes(id)
  std::vector<char> kind;             // id -> 'n' normal/user-defined, 'b' byte, 'c' control/unknown
  std::vector<int> byte_id;           // byte -> id of its <0xXX> piece, -1 if none
  std::vector<int> n_replacement;     // id -> U+FFFDs in a piece made of nothing else, else 0
  bool dummy_prefix = true;           // the model's normalizer adds '▁' in front (Llama; not Gemma)

  std::vector<int> encode_invalid_utf8(std::string_view text) const;
};

// sentencepiece turns each byte that is not valid UTF-8 into U+FFFD. To keep such bytes, they
// are replaced by U+FFFD here first (remembering which U+FFFD stood for which byte), and every
// U+FFFD of the result that stood for a byte -- a piece made of U+FFFDs, or the byte-fallback
// tokens EF BF BD -- becomes that byte's <0xXX> token. (A U+FFFD merged into a piece with other
// characters stays as it is; the Llama vocabulary has none.)
std::vector<int> SpmTokenizer::Impl::encode_invalid_utf8(std::string_view text) const {
  std::string clean;
  std::vector<int> source;  // per U+FFFD in `clean`: the invalid byte, or -1 for a real U+FFFD
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n == 0) {
      clean += kReplacement;
      source.push_back(static_cast<unsigned char>(text[i]));
      ++i;
      continue;
    }
    if (text.compare(i, n, kReplacement) == 0) source.push_back(-1);
    clean.append(text, i, n);
    i += n;
  }
  std::vector<int> ids;
  const sentencepiece::util::Status st = sp.Encode(clean, &ids);
  if (!st.ok()) throw Error(path + ": encoding failed (" + escape_for_message(st.ToString()) + ")");
  const int fffd_id = sp.PieceToId(std::string(kReplacement));
  const bool fffd_is_piece = fffd_id >= 0 && kind[static_cast<size_t>(fffd_id)] == 'n' &&
                             id_bytes[static_cast<size_t>(fffd_id)] == kReplacement;
  std::vector<int> out;
  out.reserve(ids.size() + 8);
  size_t next = 0;  // index into `source`
  auto emit = [&](int src) {
    if (src >= 0 && byte_id[static_cast<size_t>(src)] >= 0) {
      out.push_back(byte_id[static_cast<size_t>(src)]);
    } else if (fffd_is_piece) {
      out.push_back(fffd_id);
    } else {
      for (char c : kReplacement) out.push_back(byte_id[static_cast<unsigned char>(c)]);
    }
  };
  for (size_t k = 0; k < ids.size(); ++k) {
    const int id = ids[k];
    const auto i = static_cast<size_t>(id);
    if (n_replacement[i] > 0 && next + static_cast<size_t>(n_replacement[i]) <= source.size()) {
      for (int r = 0; r < n_replacement[i]; ++r) emit(source[next++]);
    } else if (kind[i] == 'b' && k + 2 < ids.size() &&
               id_bytes[i] + id_bytes[static_cast<size_t>(ids[k + 1])] +
                       id_bytes[static_cast<size_t>(ids[k + 2])] == kReplacement &&
               next < source.size()) {
      emit(source[next++]);
      k += 2;
    } else {
      out.push_back(id);
    }
  }
  return out;
}

SpmTokenizer::SpmTokenizer() : impl_(std::make_unique<Impl>()) {}
SpmTokenizer::~SpmTokenizer() = default;

std::unique_ptr<SpmTokenizer> SpmTokenizer::from_file(const std::string& model_path,
                                                      const std::string& tokenizer_config_path) {
  if (!std::filesystem::is_regular_file(model_path)) throw Error(model_path + ": file not found");
  std::unique_ptr<SpmTokenizer> t(new SpmTokenizer());
  Impl& im = *t->impl_;
  im.path = model_path;
  // Loaded from memory: sentencepiece's own file reading reports errors less clearly.
  const sentencepiece::util::Status st = im.sp.LoadFromSerializedProto(read_file(model_path));
  if (!st.ok())
    throw Error(model_path + ": not a SentencePiece model (" + escape_for_message(st.ToString()) + ")");
  const int n = im.sp.GetPieceSize();
  if (n <= 0) throw Error(model_path + ": SentencePiece model has no pieces");
  im.id_bytes.resize(static_cast<size_t>(n));
  im.kind.resize(static_cast<size_t>(n));
  im.byte_id.assign(256, -1);
  im.n_replacement.assign(static_cast<size_t>(n), 0);
  for (int id = 0; id < n; ++id) {
    const std::string& piece = im.sp.IdToPiece(id);
    const auto i = static_cast<size_t>(id);
    const int byte = im.sp.IsByte(id) ? byte_piece_value(piece) : -1;
    if (byte >= 0) {
      im.id_bytes[i] = std::string(1, static_cast<char>(byte));
      im.kind[i] = 'b';
      im.byte_id[static_cast<size_t>(byte)] = id;
    } else if (im.sp.IsControl(id) || im.sp.IsUnknown(id)) {
      im.id_bytes[i] = piece;
      im.kind[i] = 'c';
    } else {
      im.id_bytes[i] = replace_spaces(piece);
      im.kind[i] = 'n';
      int count = 0;
      size_t pos = 0;
      while (pos < piece.size() && piece.compare(pos, kReplacement.size(), kReplacement) == 0) {
        ++count;
        pos += kReplacement.size();
      }
      if (pos == piece.size()) im.n_replacement[i] = count;
    }
  }
  // The normalizer spec's add_dummy_prefix, seen from what it does: "a" starts with '▁' or not.
  std::vector<std::string> pieces;
  if (im.sp.Encode("a", &pieces).ok() && !pieces.empty())
    im.dummy_prefix = pieces[0].starts_with("\xE2\x96\x81");
  t->bos_id_ = im.sp.bos_id();
  t->eos_id_ = im.sp.eos_id();
  if (t->bos_id_ >= n) t->bos_id_ = -1;
  if (t->eos_id_ >= n) t->eos_id_ = -1;

  if (!tokenizer_config_path.empty() && std::filesystem::is_regular_file(tokenizer_config_path)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(tokenizer_config_path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(tokenizer_config_path + ": malformed JSON (" + escape_for_message(e.what()) + ")");
    }
    if (j.is_object()) {
      if (auto it = j.find("add_bos_token"); it != j.end() && !it->is_null()) {
        if (!it->is_boolean()) throw Error(tokenizer_config_path + ": add_bos_token must be true or false");
        t->add_bos_ = it->get<bool>();
      }
    }
  }
  return t;
}

std::vector<int> SpmTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  if (text.empty()) return ids;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n == 0) return impl_->encode_invalid_utf8(text);
    i += n;
  }
  const sentencepiece::util::Status st = impl_->sp.Encode(text, &ids);
  if (!st.ok()) throw Error(impl_->path + ": encoding failed (" + escape_for_message(st.ToString()) + ")");
  return ids;
}

std::string SpmTokenizer::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("token id " + std::to_string(id) + " out of range (vocab size " +
                std::to_string(vocab_size()) + ")");
  return impl_->id_bytes[static_cast<size_t>(id)];
}

std::string SpmTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  bool first = true;  // no token other than a control token seen yet
  for (int id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error("token id " + std::to_string(id) + " out of range (vocab size " +
                  std::to_string(vocab_size()) + ")");
    const auto i = static_cast<size_t>(id);
    const char kind = impl_->kind[i];
    if (kind == 'c' && id != impl_->sp.unk_id()) continue;  // <s>, </s>: invisible
    const std::string& bytes = impl_->id_bytes[i];
    if (first && impl_->dummy_prefix && kind == 'n' && !bytes.empty() && bytes[0] == ' ')
      out.append(bytes, 1, std::string::npos);
    else
      out += bytes;
    first = false;
  }
  return out;
}

int SpmTokenizer::vocab_size() const { return static_cast<int>(impl_->id_bytes.size()); }

}  // namespace nt
