#include "runtime/session.h"

#include "io/model_resolver.h"
#include "util/error.h"

namespace nt {

Session open_session(const std::string& model, WeightFormat format) {
  const std::string model_dir = resolve_model(model);
  Session s;
  s.model_dir = model_dir;
  s.model = load_model(model_dir, format);
  s.tokenizer = load_tokenizer(model_dir);
  if (s.tokenizer->vocab_size() > s.model->config().vocab_size)
    throw Error(model_dir + ": tokenizer has " + std::to_string(s.tokenizer->vocab_size()) +
                " tokens but the model only " + std::to_string(s.model->config().vocab_size));
  return s;
}

std::vector<int> Session::encode_prompt(const std::string& text, size_t index) const {
  if (text.empty()) throw Error("prompt " + std::to_string(index) + " is empty");
  std::vector<int> ids;
  if (tokenizer->add_bos() && tokenizer->bos_id() >= 0) ids.push_back(tokenizer->bos_id());
  for (int id : tokenizer->encode(text)) ids.push_back(id);
  const int n_ctx = model->config().n_ctx;
  if (static_cast<int>(ids.size()) > n_ctx)
    throw Error("prompt " + std::to_string(index) + " has " + std::to_string(ids.size()) +
                " tokens, more than the model's context of " + std::to_string(n_ctx));
  return ids;
}

std::vector<std::vector<int>> Session::encode_prompts(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int>> out;
  out.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) out.push_back(encode_prompt(texts[i], i));
  return out;
}

}  // namespace nt
