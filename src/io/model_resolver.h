#pragma once
// Where a model named on the command line lives. A path to a folder is used as it is; otherwise
// the name ("gpt2", "TinyLlama/TinyLlama-1.1B-Chat-v1.0") is looked up in the Hugging Face cache,
// so a researcher's existing downloads are used as they are:
//   $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
//   models--ORG--NAME/refs/main -> revision; models--ORG--NAME/snapshots/<revision>/
#include <string>

namespace nt {

std::string hf_cache_dir();
// The cache folder of a repository ("<cache>/models--ORG--NAME").
std::string hf_repo_dir(const std::string& repo_id);
// Returns the folder to load. A name missing from the cache is downloaded (io/hub_download.h)
// unless HF_HUB_OFFLINE is set; throws nt::Error saying where it looked and how to download.
std::string resolve_model(const std::string& name_or_path);

}  // namespace nt
