#define PCRE2_CODE_UNIT_WIDTH 8
#include "trace/token_selector.h"

#include <pcre2.h>

#include <algorithm>
#include <cctype>

#include "util/error.h"
#include "util/message_text.h"
#include "util/option_error.h"

namespace nt {

namespace {

std::string lower_trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  std::string out = s.substr(b, e - b);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

TokenSelector::TokenSelector(std::vector<std::string> words, const std::string& regex, int window)
    : regex_(regex), window_(window) {
  if (window < 0) throw OptionError("trace.select_window", "must be >= 0 (got " + std::to_string(window) + ")");
  for (auto& w : words) {
    std::string t = lower_trimmed(w);
    if (!t.empty()) words_.push_back(t);
  }
  if (!regex.empty()) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.c_str()), regex.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF, &err,
                                     &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof buf);
      throw Error("invalid --select-regex " + quote_for_message(regex) + " at offset " + std::to_string(offset) + ": " +
                  reinterpret_cast<char*>(buf));
    }
    code_ = code;
  }
  if (words_.empty() && !code_) throw Error("token selection needs a word list or a regex");
}

TokenSelector::~TokenSelector() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

bool TokenSelector::matches(const std::string& text) const {
  if (!words_.empty()) {
    const std::string t = lower_trimmed(text);
    if (!t.empty())
      for (const auto& w : words_)
        if (t == w || (t.size() >= 3 && w.compare(0, t.size(), t) == 0)) return true;
  }
  if (code_) {
    auto* code = static_cast<pcre2_code*>(code_);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    if (rc >= 0) return true;
  }
  return false;
}

std::string TokenSelector::describe() const {
  std::string s;
  if (!words_.empty()) {
    s += "words ";
    for (size_t i = 0; i < words_.size(); ++i) s += (i ? "," : "") + words_[i];
  }
  if (code_) s += std::string(s.empty() ? "" : "; ") + "regex " + regex_;
  if (window_ > 0) s += "; window " + std::to_string(window_);
  return s;
}

}  // namespace nt
