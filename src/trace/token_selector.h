#pragma once
// Token-selective tracing: record only tokens whose text matches a word list or a regular
// expression, optionally with a window of the next w tokens after each match.
//  * words: a token matches when its text, stripped of surrounding whitespace and lower-cased,
//    equals a listed word, or is a piece of at least 3 characters that starts one ("viol" for
//    "violence", since BPE may split a word).
//  * regex: PCRE2 (UTF, caseless), searched in the token's text.
#include <memory>
#include <string>
#include <vector>

namespace nt {

class TokenSelector {
 public:
  TokenSelector(std::vector<std::string> words, const std::string& regex, int window);
  ~TokenSelector();
  TokenSelector(const TokenSelector&) = delete;
  TokenSelector& operator=(const TokenSelector&) = delete;
  bool matches(const std::string& token_text) const;
  int window() const { return window_; }
  std::string describe() const;

 private:
  std::vector<std::string> words_;
  std::string regex_;
  int window_;
  void* code_ = nullptr;  // pcre2_code*
};

}  // namespace nt
