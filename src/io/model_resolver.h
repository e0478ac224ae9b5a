#pragma once
// Where a model named on the command line lives. A path to a folder is used as it is; otherwise
// the name ("gpt2", "TinyLlama/TinyLlama-1.1B-Chat-v1.0") is looked up in the Hugging Face cache
// (io/hf_environment.h says which folder), so a researcher's existing downloads are used as they are:
//   models--ORG--NAME/refs/main -> revision; models--ORG--NAME/snapshots/<revision>/
#include <string>

namespace nt {

// The cache folder of a repository ("<cache>/models--ORG--NAME").
std::string hf_repo_dir(const std::string& repo_id);
// The cached snapshot folder of a repository (refs/main's revision, else the newest snapshot), or
// "" when the cache has none.
std::string hf_cached_snapshot(const std::string& repo_id);
// The first file a cached snapshot folder lacks for neurontrace to load it — config.json, the
// weights (model.safetensors, or the index and each shard it lists) — or "" when none is missing.
std::string missing_snapshot_file(const std::string& snapshot_dir);
// Returns the folder to load. A name missing from the cache, or whose cached snapshot lacks a file
// (a download the Python tools or neurontrace left half done), is downloaded (io/hub_download.h)
// unless offline (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE); throws nt::Error saying where it looked,
// what is missing and how to download.
std::string resolve_model(const std::string& name_or_path);

}  // namespace nt
