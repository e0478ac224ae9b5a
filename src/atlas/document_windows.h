#pragma once
// How a document's tokens are cut into the windows the model sees. A window holds at most
// `capacity` document tokens (the context, less one when the tokenizer prepends BOS, which then
// opens every window). The first window starts at the document's first token; each next window
// repeats the previous window's last capacity/4 tokens as left context, so no token is seen
// without context, and only its new tokens are counted in the statistics.
#include <cstdint>
#include <vector>

namespace nt {

struct DocumentWindow {
  int start = 0;      // first document token in the window
  int first_new = 0;  // first token counted (earlier ones are left context)
  int end = 0;        // one past the last
};

// Throws nt::Error when capacity < 2.
std::vector<DocumentWindow> document_windows(int n_tokens, int capacity);

}  // namespace nt
