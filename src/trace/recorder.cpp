#include "trace/recorder.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "sae/sae.h"
#include "util/error.h"
#include "util/message_text.h"
#include "util/thread_pool.h"

namespace nt {

Positions parse_positions(const std::string& name) {
  if (name == "last") return Positions::Last;
  if (name == "generated") return Positions::Generated;
  if (name == "prompt") return Positions::Prompt;
  if (name == "all") return Positions::All;
  throw Error("unknown positions " + quote_for_message(name) + " (valid: last, generated, prompt, all)");
}

std::string positions_name(Positions p) {
  switch (p) {
    case Positions::Last: return "last";
    case Positions::Generated: return "generated";
    case Positions::Prompt: return "prompt";
    case Positions::All: return "all";
  }
  return "?";
}

Recorder::Recorder(const ModelConfig& config, const Tokenizer& tokenizer, RecorderOptions options,
                   std::vector<int> group_of_seq, int n_groups)
    : layout_(options.sites, config),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      group_of_seq_(std::move(group_of_seq)) {
  if (options_.sites.empty()) throw Error("no site to trace");
  if (options_.settings.empty()) throw Error("no position setting to trace");
  const size_t n_seq = group_of_seq_.size();
  const size_t n_set = options_.settings.size();
  in_flight_.resize(n_set);
  n_tokens_.assign(n_set, std::vector<int64_t>(n_seq, 0));
  sample_offset_.assign(n_set, std::vector<int64_t>(n_seq, -1));
  groups_.assign(n_set, std::vector<TokenStats>(static_cast<size_t>(n_groups), TokenStats(layout_.total)));
  for (auto& v : in_flight_) v.resize(n_seq);
  last_acts_.assign(n_set, std::vector<std::vector<float>>(n_seq));
  window_until_.assign(n_seq, -1);
  step_mask_.resize(n_set);
}

void Recorder::attach(Hooks& hooks) {
  // hook_embed runs first in every step: decide there which rows each setting records.
  hooks.add({HookSite::Embed, -1}, [this](const HookContext& ctx, float*) { begin_step(ctx); });
  std::vector<std::pair<const Sae*, std::vector<int>>> sae_sites;  // each SAE encodes once for all its sites
  for (size_t s = 0; s < layout_.sites.size(); ++s) {
    const TraceSite& site = layout_.sites[s];
    if (!site.is_sae()) {
      for (int l = 0; l < layout_.n_layers[s]; ++l)
        hooks.add({site.hook, l}, [this, s](const HookContext& ctx, float* acts) {
          observe(ctx, static_cast<int>(s), acts, step_rows_.data());
        });
      continue;
    }
    auto it = std::find_if(sae_sites.begin(), sae_sites.end(), [&](const auto& e) { return e.first == site.sae.get(); });
    if (it == sae_sites.end()) it = sae_sites.insert(sae_sites.end(), {site.sae.get(), {}});
    it->second.push_back(static_cast<int>(s));
  }
  for (const auto& entry : sae_sites)  // (no structured binding: clang 14 cannot capture one)
    hooks.add(layout_.sites[static_cast<size_t>(entry.second[0])].point(),
              [this, sae = entry.first, sites = entry.second](const HookContext& ctx, float* acts) {
                observe_sae(ctx, *sae, sites, acts);
              });
}

bool Recorder::wanted(Positions p, const RowInfo& row) const {
  switch (p) {
    case Positions::Last:
    case Positions::Generated: return row.generated;
    case Positions::Prompt: return !row.generated;
    case Positions::All: return true;
  }
  return false;
}

void Recorder::begin_step(const HookContext& ctx) {
  const size_t n = ctx.rows.size();
  // Token selection: a row is selected when its token matches, or when it falls within `window`
  // positions after a match. Rows of one sequence arrive in increasing position order.
  std::vector<char> selected(n, 1);
  if (options_.selector) {
    for (size_t r = 0; r < n; ++r) {
      const RowInfo& row = ctx.rows[r];
      auto& until = window_until_[static_cast<size_t>(row.seq)];
      if (options_.selector->matches(tokenizer_.token_bytes(row.token)))
        until = std::max(until, row.pos + options_.selector->window());
      selected[r] = row.pos <= until;
    }
  }
  for (size_t s = 0; s < options_.settings.size(); ++s) {
    auto& mask = step_mask_[s];
    mask.assign(n, 0);
    for (size_t r = 0; r < n; ++r) {
      const RowInfo& row = ctx.rows[r];
      if (!selected[r] || (options_.skip_first && row.pos == 0) || !wanted(options_.settings[s], row)) continue;
      mask[r] = 1;
      auto& st = in_flight_[s][static_cast<size_t>(row.seq)];
      if (options_.settings[s] == Positions::Last) {  // keep only the latest recorded token
        if (!st) st = std::make_unique<SequenceSums>(0);
        st->count = 1;
        last_acts_[s][static_cast<size_t>(row.seq)].resize(layout_.total);
        continue;
      }
      if (!st) st = std::make_unique<SequenceSums>(layout_.total);
      ++st->count;
    }
  }
  step_any_.assign(n, 0);
  step_rows_.resize(n);
  for (size_t r = 0; r < n; ++r) {
    step_rows_[r] = static_cast<int>(r);
    for (const auto& mask : step_mask_) step_any_[r] |= mask[r];
  }
  step_dump_row_.assign(n, -1);
  if (options_.keep_rows) {
    for (size_t r = 0; r < n; ++r) {
      if (!step_mask_[0][r]) continue;
      step_dump_row_[r] = static_cast<int>(rows_.seq.size());
      rows_.seq.push_back(ctx.rows[r].seq);
      rows_.pos.push_back(ctx.rows[r].pos);
      rows_.token.push_back(ctx.rows[r].token);
      rows_.acts.resize(rows_.acts.size() + layout_.total);
    }
  }
}

void Recorder::observe(const HookContext& ctx, int site, const float* acts, const int* row_at) {
  const size_t width = static_cast<size_t>(layout_.widths[static_cast<size_t>(site)]);
  const size_t offset = layout_.offsets[static_cast<size_t>(site)] +
                        static_cast<size_t>(ctx.point.layer - layout_.first_layer[static_cast<size_t>(site)]) * width;
  // Split by neurons over the pool: each task updates its own slice of every row's statistics
  // (rows of one sequence share a TokenStats, so splitting by row would race).
  // About two even slices per thread, whole 16-float groups, at least 256 neurons each.
  const size_t slices = std::clamp<size_t>(width / 256, 1, 2 * static_cast<size_t>(thread_pool().size()));
  const size_t chunk = ((width + slices - 1) / slices + 15) / 16 * 16;
  thread_pool().parallel_for((width + chunk - 1) / chunk, 1, [&](size_t b, size_t e) {
    const size_t i0 = b * chunk, i1 = std::min(width, e * chunk);
    const int len = static_cast<int>(i1 - i0);
    for (size_t s = 0; s < options_.settings.size(); ++s) {
      const auto& mask = step_mask_[s];
      const bool last = options_.settings[s] == Positions::Last;
      for (size_t r = 0; r < ctx.rows.size(); ++r) {
        if (!mask[r] || row_at[r] < 0) continue;
        const size_t seq = static_cast<size_t>(ctx.rows[r].seq);
        const float* a = acts + static_cast<size_t>(row_at[r]) * width + i0;
        if (last) {
          std::copy_n(a, len, last_acts_[s][seq].data() + offset + i0);
        } else {
          in_flight_[s][seq]->add(offset + i0, a, len);
          groups_[s][static_cast<size_t>(group_of_seq_[seq])].add_spread(offset + i0, a, len);
        }
      }
    }
    if (options_.keep_rows)
      for (size_t r = 0; r < ctx.rows.size(); ++r)
        if (step_dump_row_[r] >= 0 && row_at[r] >= 0)
          std::copy_n(acts + static_cast<size_t>(row_at[r]) * width + i0, len,
                      rows_.acts.data() + static_cast<size_t>(step_dump_row_[r]) * layout_.total + offset + i0);
  });
}

void Recorder::observe_sae(const HookContext& ctx, const Sae& sae, const std::vector<int>& sites, const float* x) {
  std::vector<int> wanted;
  for (size_t r = 0; r < ctx.rows.size(); ++r)
    if (step_any_[r]) wanted.push_back(static_cast<int>(r));
  const size_t d_in = static_cast<size_t>(ctx.width);
  constexpr size_t kChunk = 64;  // rows encoded at once (a prefill step may have thousands)
  std::vector<int> row_at(ctx.rows.size(), -1);
  std::vector<float> in, recons, error;
  SaeEncoding enc;
  for (size_t c0 = 0; c0 < wanted.size(); c0 += kChunk) {
    const size_t n = std::min(kChunk, wanted.size() - c0);
    in.resize(n * d_in);
    std::fill(row_at.begin(), row_at.end(), -1);
    for (size_t k = 0; k < n; ++k) {
      const size_t r = static_cast<size_t>(wanted[c0 + k]);
      row_at[r] = static_cast<int>(k);
      std::copy_n(x + r * d_in, d_in, in.data() + k * d_in);
    }
    sae.encode(in.data(), static_cast<int>(n), enc);
    for (int site : sites) {
      const SaeOutput out = layout_.sites[static_cast<size_t>(site)].output;
      if (out == SaeOutput::Latents) {
        observe_latents(ctx, site, enc.acts.data(), row_at.data());
        continue;
      }
      if (recons.size() != n * d_in) {
        recons.resize(n * d_in);
        sae.decode(enc.acts.data(), static_cast<int>(n), enc.norm_coeff.data(), recons.data());
        error.resize(n * d_in);
        for (size_t i = 0; i < n * d_in; ++i) error[i] = in[i] - recons[i];
      }
      observe(ctx, site, out == SaeOutput::Recons ? recons.data() : error.data(), row_at.data());
    }
    recons.clear();
  }
}

void Recorder::observe_latents(const HookContext& ctx, int site, const float* latents, const int* row_at) {
  const size_t width = static_cast<size_t>(layout_.widths[static_cast<size_t>(site)]);
  const size_t offset = layout_.offsets[static_cast<size_t>(site)];
  std::vector<int> index;
  std::vector<float> value;
  for (size_t r = 0; r < ctx.rows.size(); ++r) {
    if (row_at[r] < 0) continue;
    const float* f = latents + static_cast<size_t>(row_at[r]) * width;
    index.clear();
    value.clear();
    for (size_t i = 0; i < width; ++i)
      if (f[i] != 0.0f) {
        index.push_back(static_cast<int>(i));
        value.push_back(f[i]);
      }
    const int n = static_cast<int>(index.size());
    const size_t seq = static_cast<size_t>(ctx.rows[r].seq);
    for (size_t s = 0; s < options_.settings.size(); ++s) {
      if (!step_mask_[s][r]) continue;
      if (options_.settings[s] == Positions::Last) {
        std::copy_n(f, width, last_acts_[s][seq].data() + offset);
        continue;
      }
      in_flight_[s][seq]->add_sparse(offset, index.data(), value.data(), n);
      groups_[s][static_cast<size_t>(group_of_seq_[seq])].add_spread_sparse(offset, index.data(), value.data(), n);
    }
    if (step_dump_row_[r] >= 0)
      std::copy_n(f, width, rows_.acts.data() + static_cast<size_t>(step_dump_row_[r]) * layout_.total + offset);
  }
}

void Recorder::sequence_done(int seq) {
  for (size_t s = 0; s < options_.settings.size(); ++s) {
    auto& st = in_flight_[s][static_cast<size_t>(seq)];
    auto& last = last_acts_[s][static_cast<size_t>(seq)];
    TokenStats& group = groups_[s][static_cast<size_t>(group_of_seq_[static_cast<size_t>(seq)])];
    SampleSummary out;
    out.mean.assign(layout_.total, 0.0f);
    out.mean_abs.assign(layout_.total, 0.0f);
    out.max.assign(layout_.total, 0.0f);
    out.n_tokens = st ? st->count : 0;
    if (st && !last.empty()) {  // Positions::Last: the statistics of the one kept token
      TokenStats one(layout_.total);
      one.add(0, last.data(), static_cast<int>(layout_.total));
      one.count = 1;
      for (size_t i = 0; i < layout_.total; ++i) {
        out.mean[i] = static_cast<float>(one.mean(i));
        out.mean_abs[i] = static_cast<float>(one.mean_abs(i));
        out.max[i] = one.max[i];
      }
      group.merge(one);
      std::vector<float>().swap(last);
    } else if (st && st->count > 0) {
      for (size_t i = 0; i < layout_.total; ++i) {
        out.mean[i] = static_cast<float>(st->mean(i));
        out.mean_abs[i] = static_cast<float>(st->mean_abs(i));
        out.max[i] = st->max[i];
      }
      // observe() added each token's sumsq and min to the group already.
      group.merge_sums(*st);
    }
    // SAE latents are updated sparsely: a latent inactive at some token had 0 there.
    for (size_t site = 0; site < layout_.sites.size(); ++site) {
      if (!layout_.sites[site].is_features()) continue;
      const size_t begin = layout_.offsets[site], end = begin + layout_.site_size(static_cast<int>(site));
      if (out.n_tokens > 0)
        for (size_t i = begin; i < end; ++i) out.max[i] = std::max(out.max[i], 0.0f);
      group.include_skipped_zeros(begin, end - begin);
    }
    store_sample(s, seq, out);
    st.reset();
  }
}

void Recorder::store_sample(size_t setting, int seq, const SampleSummary& summary) {
  n_tokens_.at(setting).at(static_cast<size_t>(seq)) = summary.n_tokens;
  if (summary.n_tokens == 0) return;
  if (!store_) {
    store_.reset(std::tmpfile());
    if (!store_) throw Error("cannot create the temporary sample store (" + std::string(std::strerror(errno)) + ")");
  }
  const size_t n = layout_.total;
  int64_t& offset = sample_offset_[setting][static_cast<size_t>(seq)];
  if (offset < 0) {
    offset = store_end_;
    store_end_ += static_cast<int64_t>(3 * n * sizeof(float));
  }
  std::FILE* f = store_.get();
  if (std::fseek(f, offset, SEEK_SET) != 0 || std::fwrite(summary.mean.data(), sizeof(float), n, f) != n ||
      std::fwrite(summary.mean_abs.data(), sizeof(float), n, f) != n ||
      std::fwrite(summary.max.data(), sizeof(float), n, f) != n || std::fflush(f) != 0)  // ENOSPC shows at the flush
    throw Error("temporary sample store (an unnamed file in /tmp): write failed (" + std::string(std::strerror(errno)) +
                ")");
}

int64_t Recorder::n_tokens(size_t setting, int seq) const { return n_tokens_.at(setting).at(static_cast<size_t>(seq)); }

SampleSummary Recorder::sample(size_t setting, int seq) const {
  SampleSummary out;
  const size_t n = layout_.total;
  out.n_tokens = n_tokens(setting, seq);
  out.mean.assign(n, 0.0f);
  out.mean_abs.assign(n, 0.0f);
  out.max.assign(n, 0.0f);
  const int64_t offset = sample_offset_[setting][static_cast<size_t>(seq)];
  if (offset < 0) return out;
  std::FILE* f = store_.get();
  if (std::fseek(f, offset, SEEK_SET) != 0 || std::fread(out.mean.data(), sizeof(float), n, f) != n ||
      std::fread(out.mean_abs.data(), sizeof(float), n, f) != n || std::fread(out.max.data(), sizeof(float), n, f) != n)
    throw Error("temporary sample store: read failed");
  return out;
}

float Recorder::sample_value(size_t setting, int seq, SampleStat stat, size_t neuron) const {
  const int64_t offset = sample_offset_.at(setting).at(static_cast<size_t>(seq));
  if (offset < 0) return 0.0f;
  float v = 0.0f;
  const int64_t at = offset + static_cast<int64_t>((static_cast<size_t>(stat) * layout_.total + neuron) * sizeof(float));
  std::FILE* f = store_.get();
  if (std::fseek(f, at, SEEK_SET) != 0 || std::fread(&v, sizeof v, 1, f) != 1)
    throw Error("temporary sample store: read failed");
  return v;
}

void Recorder::restore_sample(size_t setting, int seq, SampleSummary summary) {
  if (summary.mean.size() != layout_.total || summary.mean_abs.size() != layout_.total ||
      summary.max.size() != layout_.total)
    throw Error("restored sample has the wrong number of neurons");
  store_sample(setting, seq, summary);
}

void Recorder::restore_group(size_t setting, int group, TokenStats stats) {
  if (stats.size() != layout_.total) throw Error("restored statistics have the wrong number of neurons");
  groups_.at(setting).at(static_cast<size_t>(group)) = std::move(stats);
}


const TokenStats& Recorder::group(size_t setting, int group) const {
  return groups_.at(setting).at(static_cast<size_t>(group));
}

}  // namespace nt
