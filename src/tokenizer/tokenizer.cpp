#include "tokenizer/tokenizer.h"

namespace nt {

std::string decode_continuation(const Tokenizer& tokenizer, const std::vector<int>& context,
                                const std::vector<int>& ids) {
  if (context.empty()) return tokenizer.decode(ids);
  std::vector<int> all = context;
  all.insert(all.end(), ids.begin(), ids.end());
  const std::string whole = tokenizer.decode(all);
  const std::string head = tokenizer.decode(context);
  if (whole.compare(0, head.size(), head) == 0) return whole.substr(head.size());
  // The context's last bytes merged with the continuation's (a split UTF-8 character): fall back
  // to the tokens' own bytes.
  std::string out;
  for (int id : ids) out += tokenizer.token_bytes(id);
  return out;
}

}  // namespace nt
