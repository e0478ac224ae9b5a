#include "io/model_config.h"
#include "io/model_weights.h"
#include "model/gemma2.h"
#include "model/gpt2.h"
#include "model/gpt_neox.h"
#include "model/llama.h"
#include "model/model.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

std::vector<HookSite> model_hook_sites(const ModelConfig& config) {
  switch (config.arch) {
    case Arch::Gpt2:
      return gpt2_hook_sites(config);
    case Arch::Llama:
      return llama_hook_sites(config);
    case Arch::GptNeox:
      return gpt_neox_hook_sites(config);
    case Arch::Gemma2:
      return gemma2_hook_sites(config);
  }
  throw Error("architecture " + quote_for_message(config.model_type) + " is not implemented");
}

std::unique_ptr<Model> load_model(const std::string& model_dir, WeightFormat format) {
  ModelConfig config = load_model_config(model_dir);
  auto weights = std::make_unique<ModelWeights>(model_dir);
  switch (config.arch) {
    case Arch::Gpt2:
      return load_gpt2(config, std::move(weights), format);
    case Arch::Llama:
      return load_llama(config, std::move(weights), format);
    case Arch::GptNeox:
      return load_gpt_neox(config, std::move(weights), format);
    case Arch::Gemma2:
      return load_gemma2(config, std::move(weights), format);
  }
  throw Error(model_dir + "/config.json: architecture " + quote_for_message(config.model_type) + " is not implemented");
}

}  // namespace nt
