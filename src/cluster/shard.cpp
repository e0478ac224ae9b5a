#include "cluster/shard.h"

#include <algorithm>
#include <charconv>
#include <numeric>

#include "util/message_text.h"
#include "util/option_error.h"

namespace nt {

namespace {

bool parse_int(const std::string& s, int& value) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  return !s.empty() && ec == std::errc() && ptr == end;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  Shard s;
  if (slash == std::string::npos || !parse_int(text.substr(0, slash), s.index) ||
      !parse_int(text.substr(slash + 1), s.count) || s.count < 1 || s.index < 0 || s.index >= s.count)
    throw OptionError("shard", "expected I/N with 0 <= I < N (got " + quote_for_message(text) + ")");
  return s;
}

std::vector<int> assign_shards(const std::vector<size_t>& weights, int count) {
  const double total = static_cast<double>(std::accumulate(weights.begin(), weights.end(), size_t{0}));
  std::vector<int> shard_of(weights.size(), 0);
  double before = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double midpoint = before + 0.5 * static_cast<double>(weights[i]);
    if (total > 0) shard_of[i] = std::min(count - 1, static_cast<int>(midpoint * count / total));
    before += static_cast<double>(weights[i]);
  }
  return shard_of;
}

}  // namespace nt
