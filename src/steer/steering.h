#pragma once
// Steering with a measured effect. For each prompt the model generates, in one batch and with the
// same random stream: the unsteered text, the steered text, and R control texts where the same
// number of neurons, drawn at random from the same site and layers, get the same intervention.
// Measures, per variant:
//   kl              mean next-token KL(unsteered || variant), teacher-forced on the unsteered
//                   continuation (the positions that predict each generated token)
//   hit_rate        concept-word hits per generated word in the variant's own text
//   concept_logprob mean over the same positions of log P(next token starts a concept word)
// and the effect of the traced neurons is placed within the controls' distribution.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/generator.h"
#include "runtime/session.h"
#include "sae/sae.h"
#include "steer/intervention.h"

namespace nt {

// Log-softmax of a logits row of n values, in double (the effect measures' and the SAE fit's).
void log_softmax(const float* x, int n, std::vector<double>& out);

// Steering an SAE's latents instead of neurons (when `sae` is set): the latents get the
// intervention's mode, value and positions with the SAE's reconstruction error kept
// (sae/sae_steering.h add_sae_latent_edit), or, with `direction`, intervention.value x W_dec[i] is
// added at the SAE's hook without encoding (add_sae_direction_add; mode add). The controls steer
// the same number of other latents of the same SAE. intervention.site and neurons are not used.
struct SaeSteering {
  std::shared_ptr<const Sae> sae;
  std::vector<int> latents;
  bool direction = false;
  std::vector<float> latent_means;  // mode mean: the mean of every latent of the SAE ([d_sae])
};

struct SteeringOptions {
  Intervention intervention;  // mode mean: its means are taken from site_means
  SaeSteering sae;
  std::vector<std::string> concept_words;
  int controls = 20;
  uint64_t control_seed = 0;
  // Mode mean: the baseline mean of every neuron of the site ([layer * width + index]), used for
  // the controls' random neurons too.
  std::vector<float> site_means;
  GenerationConfig gen;
};

struct EffectMeasures {
  double kl = 0.0;
  double hit_rate = 0.0;
  double concept_logprob = 0.0;
  int hits = 0;
  int words = 0;
};

struct SteeredPrompt {
  std::string prompt;
  std::vector<int> prompt_ids, unsteered_ids, steered_ids;
  std::string unsteered_text, steered_text;
  int first_divergence = -1;  // index into the generated tokens; -1: identical
  EffectMeasures unsteered, steered;
  std::vector<EffectMeasures> controls;
};

struct ControlSummary {
  std::string measure;
  double effect = 0.0;         // the steered value (kl) or steered - unsteered (hit_rate, concept_logprob)
  double median = 0.0, p5 = 0.0, p95 = 0.0;
  double percentile = 0.0;     // the effect's percent rank among the controls: below counts 1, ties 1/2 (util/quantile.h)
};

struct SteeringResult {
  Intervention intervention;
  SaeSteering sae;            // as given; sae null: neuron steering
  std::string description;    // what was steered, how, where
  // Random control sets; for an SAE, latent i is {0, i}.
  std::vector<std::vector<Neuron>> control_sets;
  std::vector<SteeredPrompt> prompts;
  std::vector<ControlSummary> summary;  // kl, hit_rate, concept_logprob
};

// Random neuron sets for the control: same site, same number per layer, never one of `exclude`.
// Reproducible from `seed`. Throws nt::Error when a layer has too few other neurons.
std::vector<std::vector<Neuron>> random_control_sets(const std::vector<Neuron>& exclude, int width, int count,
                                                     uint64_t seed);

// Concept-word hits in a text: words (letters, digits, apostrophes) equal, case-insensitively, to a
// listed word or to it plus "s".
int count_concept_hits(const std::string& text, const std::vector<std::string>& words, int* total_words);

// The options' rules, checked once for every caller before anything runs: the intervention against
// the model (validate), controls >= 0, and mode mean with the baseline means of the whole site;
// for an SAE: it fits the model, its latents are in range, mode mean has every latent's mean, and
// direction steering has mode add.
// Throws nt::Error / nt::OptionError.
void check_steering_options(const SteeringOptions& options, const ModelConfig& config);

// Throws as check_steering_options does, and nt::Error when there is no prompt.
SteeringResult run_steering(Session& session, const std::vector<std::string>& prompts, const SteeringOptions& options);

}  // namespace nt
