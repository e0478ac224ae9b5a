#include "atlas/atlas_scan.h"

#include <algorithm>

#include "atlas/document_windows.h"
#include "atlas/unit_update.h"
#include "model/kv_cache.h"
#include "trace/trace_site.h"

namespace nt {

namespace {

struct QueuedWindow {
  int64_t doc;
  std::vector<int> tokens;  // BOS included
  int first_new;            // index in tokens of the first counted token
  int doc_start;            // document position of tokens[bos ? 1 : 0]
};

class Batcher {
 public:
  Batcher(const Session& session, AtlasState& state) : session_(session), state_(state), updater_(state), hooks_(session.model->config()) {
    const ModelConfig& c = session.model->config();
    for (size_t s = 0; s < state.layout.sites.size(); ++s) {
      const TraceSite& site = state.layout.sites[s];
      if (site.is_sae()) {  // the SAE's latents, encoded from its hook's rows
        hooks_.add(site.point(), [this, s, &site](const HookContext& ctx, float* acts) {
          const size_t width = sae_site_values(site, acts, static_cast<int>(ctx.rows.size()), units_);
          updater_.fold(rows_, static_cast<int>(s), site.layer, units_.data(), static_cast<int>(width));
        });
        last_layer_ = std::max(last_layer_, site.layer);
        continue;
      }
      for (int l = 0; l < c.n_layer; ++l) {
        hooks_.add({site.hook, l}, [this, s](const HookContext& ctx, float* acts) {
          updater_.fold(rows_, static_cast<int>(s), ctx.point.layer, acts, ctx.width);
        });
        last_layer_ = std::max(last_layer_, l);
      }
    }
  }

  void add(QueuedWindow w) { queue_.push_back(std::move(w)); }
  size_t queued() const { return queue_.size(); }

  // Runs the first `n` queued windows as one forward step.
  void run(size_t n) {
    n = std::min(n, queue_.size());
    if (n == 0) return;
    const bool bos = session_.tokenizer->add_bos();
    StepBatch batch;
    batch.last_layer = last_layer_;
    rows_ = StepRows{};
    KVCache cache(session_.model->config());
    for (size_t w = 0; w < n; ++w) {
      const QueuedWindow& q = queue_[w];
      const int begin = static_cast<int>(batch.rows.size()), len = static_cast<int>(q.tokens.size());
      cache.open(static_cast<int>(w), len);
      rows_.window_tokens.push_back(std::make_shared<const std::vector<int32_t>>(q.tokens.begin(), q.tokens.end()));
      for (int i = 0; i < len; ++i) {
        const int row = begin + i;
        const int pos = bos && i == 0 ? -1 : q.doc_start + i - (bos ? 1 : 0);
        batch.tokens.push_back(q.tokens[static_cast<size_t>(i)]);
        batch.rows.push_back({static_cast<int>(w), i, false, q.tokens[static_cast<size_t>(i)]});
        if (i >= q.first_new) rows_.counted.push_back(row);
        rows_.doc.push_back(q.doc);
        rows_.pos.push_back(pos);
        rows_.window_begin.push_back(begin);
        rows_.window_end.push_back(begin + len);
        rows_.window.push_back(static_cast<int32_t>(w));
        rows_.hash.push_back(token_hash(q.doc, pos));
      }
    }
    session_.model->forward(batch, cache, &hooks_, nullptr);
    state_.tokens += static_cast<int64_t>(rows_.counted.size());
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
  }

 private:
  const Session& session_;
  AtlasState& state_;
  UnitUpdater updater_;
  Hooks hooks_;
  int last_layer_ = 0;
  StepRows rows_;
  std::vector<float> units_;  // an SAE site's latents for the step's rows
  std::vector<QueuedWindow> queue_;
};

}  // namespace

void scan_corpus(const Session& session, CorpusReader& reader, AtlasState& state, const ScanControl& control,
                 int64_t first_document, int64_t budget) {
  const AtlasSettings& settings = state.settings;
  const bool bos = session.tokenizer->add_bos();
  const int capacity = settings.context - (bos ? 1 : 0);
  const size_t batch = static_cast<size_t>(std::max(1, control.batch_windows));
  Batcher batcher(session, state);
  ScanProgress progress;
  int64_t since_checkpoint = 0;
  while (budget != 0) {
    auto doc = reader.next();
    if (!doc) break;
    progress.documents = doc->index + 1;
    if (doc->index < first_document) continue;
    const bool mine = settings.owns(doc->index);
    if (mine || budget > 0) {  // the budget counts every shard's tokens, in corpus order
      std::vector<int> ids = session.tokenizer->encode(doc->text);
      if (budget > 0) {
        if (static_cast<int64_t>(ids.size()) > budget) ids.resize(static_cast<size_t>(budget));
        budget -= static_cast<int64_t>(ids.size());
      }
      if (mine) {
        for (const DocumentWindow& w : document_windows(static_cast<int>(ids.size()), capacity)) {
          QueuedWindow q{doc->index, {}, w.first_new - w.start + (bos ? 1 : 0), w.start};
          if (bos) q.tokens.push_back(session.tokenizer->bos_id());
          q.tokens.insert(q.tokens.end(), ids.begin() + w.start, ids.begin() + w.end);
          batcher.add(std::move(q));
          while (batcher.queued() >= batch) batcher.run(batch);
        }
        ++state.documents;
      }
    }
    if (control.progress) {
      progress.tokens = state.tokens;
      control.progress(progress);
    }
    // Every N of this shard's own documents: a shard saves its state (as large as a whole scan's)
    // no more often than one process scanning everything would.
    if (mine && control.checkpoint_every > 0 && ++since_checkpoint >= control.checkpoint_every && control.checkpoint) {
      batcher.run(batcher.queued());  // a checkpoint is a batch boundary in every run
      control.checkpoint(state, doc->index + 1, budget);
      since_checkpoint = 0;
    }
  }
  batcher.run(batcher.queued());
}

}  // namespace nt
