#include "tokenizer/unicode_nfc.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include "util/error.h"

namespace nt {

namespace {

const icu::Normalizer2& nfc() {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || n == nullptr)
    throw Error(std::string("ICU: cannot load the NFC normalizer (") + u_errorName(status) + ")");
  return *n;
}

// Calls f(run, valid) for the maximal runs of valid and of invalid UTF-8 in text, in order.
template <class F>
void for_each_utf8_run(std::string_view text, F f) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t n = static_cast<int32_t>(text.size());
  int32_t run_start = 0;
  bool run_valid = true;
  for (int32_t i = 0; i < n;) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(s, i, n, c);
    const bool valid = c >= 0;
    if (valid != run_valid && start > run_start) {
      f(text.substr(static_cast<size_t>(run_start), static_cast<size_t>(start - run_start)), run_valid);
      run_start = start;
    }
    run_valid = valid;
  }
  if (n > run_start) f(text.substr(static_cast<size_t>(run_start)), run_valid);
}

}  // namespace

bool is_nfc(std::string_view text) {
  bool normalized = true;
  for_each_utf8_run(text, [&](std::string_view run, bool valid) {
    if (!valid || !normalized) return;
    UErrorCode status = U_ZERO_ERROR;
    const auto u = icu::UnicodeString::fromUTF8(icu::StringPiece(run.data(), static_cast<int32_t>(run.size())));
    normalized = nfc().isNormalized(u, status) && U_SUCCESS(status);
  });
  return normalized;
}

std::string to_nfc(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for_each_utf8_run(text, [&](std::string_view run, bool valid) {
    if (!valid) {
      out.append(run);
      return;
    }
    UErrorCode status = U_ZERO_ERROR;
    const auto u = icu::UnicodeString::fromUTF8(icu::StringPiece(run.data(), static_cast<int32_t>(run.size())));
    const icu::UnicodeString normalized = nfc().normalize(u, status);
    if (U_FAILURE(status)) throw Error(std::string("ICU: NFC normalization failed (") + u_errorName(status) + ")");
    normalized.toUTF8String(out);
  });
  return out;
}

}  // namespace nt
