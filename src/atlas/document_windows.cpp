#include "atlas/document_windows.h"

#include <algorithm>

#include "util/error.h"

namespace nt {

std::vector<DocumentWindow> document_windows(int n_tokens, int capacity) {
  if (capacity < 2) throw Error("--context: too small for a window (at least 2 tokens, 3 with BOS)");
  const int left = capacity / 4;
  std::vector<DocumentWindow> windows;
  int next = 0;  // first token not yet counted
  while (next < n_tokens) {
    const int start = next == 0 ? 0 : next - left;
    const int end = std::min(n_tokens, start + capacity);
    windows.push_back({start, next, end});
    next = end;
  }
  return windows;
}

}  // namespace nt
