#include "steer/intervention.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

bool parse_int(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0;
}

float parse_float(const std::string& s, const std::string& what) {
  try {
    size_t used = 0;
    float v = std::stof(s, &used);
    if (used != s.size() || !std::isfinite(v)) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw Error("malformed number " + quote_for_message(s) + " in intervention mode " + quote_for_message(what));
  }
}

}  // namespace

std::vector<Neuron> parse_neurons(const std::string& text) {
  std::vector<Neuron> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    Neuron n;
    bool ok = false;
    if (!item.empty() && (item[0] == 'L' || item[0] == 'l')) {
      const size_t npos = item.find_first_of("Nn");
      ok = npos != std::string::npos && parse_int(std::string_view(item).substr(1, npos - 1), n.layer) &&
           parse_int(std::string_view(item).substr(npos + 1), n.index);
    } else {
      const size_t colon = item.find(':');
      ok = colon != std::string::npos && parse_int(std::string_view(item).substr(0, colon), n.layer) &&
           parse_int(std::string_view(item).substr(colon + 1), n.index);
    }
    if (!ok) throw Error("malformed neuron " + quote_for_message(item) + " in " + quote_for_message(text) + " (write L11N197 or 11:197, comma-separated)");
    out.push_back(n);
    start = end + 1;
  }
  if (out.empty()) throw Error("no neurons given");
  std::set<Neuron> seen;
  for (const auto& n : out)
    if (!seen.insert(n).second)
      throw Error("neuron L" + std::to_string(n.layer) + "N" + std::to_string(n.index) + " is listed twice");
  return out;
}

void parse_mode(const std::string& text, Intervention& out) {
  const size_t colon = text.find(':');
  const std::string name = text.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : text.substr(colon + 1);
  auto need_arg = [&](InterventionMode m) {
    if (arg.empty()) throw Error("intervention mode " + quote_for_message(name) + " needs a value (e.g. " + name + ":0.5)");
    out.mode = m;
    out.value = parse_float(arg, text);
  };
  if (name == "zero" && arg.empty()) out.mode = InterventionMode::Zero;
  else if (name == "mean" && arg.empty()) out.mode = InterventionMode::Mean;
  else if (name == "scale") need_arg(InterventionMode::Scale);
  else if (name == "set") need_arg(InterventionMode::Set);
  else if (name == "add") need_arg(InterventionMode::Add);
  else throw Error("unknown intervention mode " + quote_for_message(text) + " (valid: zero, mean, scale:F, set:V, add:V)");
}

InterventionWhere parse_where(const std::string& text) {
  if (text == "all") return InterventionWhere::All;
  if (text == "prompt") return InterventionWhere::Prompt;
  if (text == "generated") return InterventionWhere::Generated;
  throw Error("unknown intervention positions " + quote_for_message(text) + " (valid: all, prompt, generated)");
}

std::string neurons_text(const std::vector<Neuron>& neurons) {
  std::string s;
  for (const auto& n : neurons) s += (s.empty() ? "L" : ",L") + std::to_string(n.layer) + "N" + std::to_string(n.index);
  return s;
}

std::string mode_text(InterventionMode mode, float value) {
  switch (mode) {
    case InterventionMode::Zero: return "zero";
    case InterventionMode::Mean: return "mean";
    case InterventionMode::Scale: return "scale:" + std::to_string(value);
    case InterventionMode::Set: return "set:" + std::to_string(value);
    case InterventionMode::Add: return "add:" + std::to_string(value);
  }
  return "?";
}

const char* where_text(InterventionWhere where) {
  return where == InterventionWhere::All      ? "all positions"
         : where == InterventionWhere::Prompt ? "prompt positions"
                                              : "generated positions";
}

std::string Intervention::describe() const {
  return mode_text(mode, value) + " " + site_name(site) + " " + neurons_text(neurons) + " (" + where_text(where) + ")";
}

void validate(const Intervention& iv, const ModelConfig& config) {
  if (!site_is_per_layer(iv.site)) throw Error("interventions need a per-layer site, not " + site_name(iv.site));
  check_site(config, iv.site);
  const int width = site_width(iv.site, config);
  for (const auto& n : iv.neurons) {
    if (n.layer >= config.n_layer)
      throw Error("layer " + std::to_string(n.layer) + " of L" + std::to_string(n.layer) + "N" + std::to_string(n.index) +
                  " is out of range (the model has " + std::to_string(config.n_layer) + " layers)");
    if (n.index >= width)
      throw Error("neuron " + std::to_string(n.index) + " of L" + std::to_string(n.layer) + "N" + std::to_string(n.index) +
                  " is out of range (" + site_name(iv.site) + " has " + std::to_string(width) + " neurons)");
  }
  if (iv.mode == InterventionMode::Mean && iv.means.size() != iv.neurons.size())
    throw Error("mode 'mean' needs the baseline means from a trace (--from-trace)");
}

void add_intervention(Hooks& hooks, const Intervention& iv) {
  // Group the neurons by layer: one hook per layer touched.
  std::map<int, std::vector<std::pair<int, float>>> by_layer;  // layer -> (index, mean)
  for (size_t i = 0; i < iv.neurons.size(); ++i)
    by_layer[iv.neurons[i].layer].emplace_back(iv.neurons[i].index, iv.means.empty() ? 0.0f : iv.means[i]);
  auto seqs = std::make_shared<std::set<int>>(iv.only_seqs.begin(), iv.only_seqs.end());
  for (auto& [layer, targets] : by_layer) {
    hooks.add({iv.site, layer}, [targets = targets, seqs, mode = iv.mode, value = iv.value,
                                               where = iv.where](const HookContext& ctx, float* acts) {
      for (size_t r = 0; r < ctx.rows.size(); ++r) {
        const RowInfo& row = ctx.rows[r];
        if (where == InterventionWhere::Prompt && row.generated) continue;
        if (where == InterventionWhere::Generated && !row.generated) continue;
        if (!seqs->empty() && !seqs->count(row.seq)) continue;
        float* x = acts + r * ctx.width;
        for (const auto& [idx, mean] : targets) {
          switch (mode) {
            case InterventionMode::Zero: x[idx] = 0.0f; break;
            case InterventionMode::Mean: x[idx] = mean; break;
            case InterventionMode::Scale: x[idx] *= value; break;
            case InterventionMode::Set: x[idx] = value; break;
            case InterventionMode::Add: x[idx] += value; break;
          }
        }
      }
    });
  }
}

}  // namespace nt
