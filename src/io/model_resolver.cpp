#include "io/model_resolver.h"

#include <algorithm>
#include <filesystem>

#include "io/hf_environment.h"
#include "io/hub_download.h"
#include "io/model_weights.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace fs = std::filesystem;

namespace {

bool looks_like_path(const std::string& s) {
  return s[0] == '/' || s[0] == '.' || s.find("//") != std::string::npos || std::count(s.begin(), s.end(), '/') > 1;
}

// The revision refs/main names, else the most recently written snapshot, else "".
std::string cached_revision(const std::string& repo) {
  const std::string ref = repo + "/refs/main";
  if (fs::exists(ref)) {
    std::string revision = read_file(ref);
    while (!revision.empty() && (revision.back() == '\n' || revision.back() == '\r' || revision.back() == ' '))
      revision.pop_back();
    if (revision.empty() || revision.find('/') != std::string::npos || revision == "..")
      throw Error(ref + ": malformed revision");
    return revision;
  }
  std::string revision;
  std::error_code ec;
  if (!fs::is_directory(repo + "/snapshots", ec)) return revision;
  fs::file_time_type newest{};
  for (const auto& e : fs::directory_iterator(repo + "/snapshots", ec)) {
    if (!e.is_directory()) continue;
    if (revision.empty() || e.last_write_time() > newest) {
      newest = e.last_write_time();
      revision = e.path().filename().string();
    }
  }
  return revision;
}

}  // namespace

std::string hf_repo_dir(const std::string& repo_id) {
  std::string name = "models--";
  for (char c : repo_id) {
    if (c == '/') name += "--";
    else name += c;
  }
  return hf_cache_dir() + "/" + name;
}

std::string hf_cached_snapshot(const std::string& repo_id) {
  const std::string repo = hf_repo_dir(repo_id);
  const std::string revision = cached_revision(repo);
  std::error_code ec;
  if (revision.empty() || !fs::is_directory(repo + "/snapshots/" + revision, ec)) return "";
  return repo + "/snapshots/" + revision;
}

std::string missing_snapshot_file(const std::string& dir) {
  // fs::exists follows the snapshot's symlinks: a link whose blob is not there yet is missing.
  if (!fs::exists(dir + "/config.json")) return "config.json";
  if (fs::exists(dir + "/model.safetensors")) return "";
  const std::string index = "model.safetensors.index.json";
  if (!fs::exists(dir + "/" + index)) return "model.safetensors";
  for (const auto& shard : safetensors_index_shards(dir + "/" + index))
    if (!fs::exists(dir + "/" + shard)) return shard;
  return "";
}

std::string resolve_model(const std::string& name_or_path) {
  if (name_or_path.empty()) throw Error("no model given");
  if (fs::is_directory(name_or_path)) return name_or_path;
  if (looks_like_path(name_or_path)) throw Error(name_or_path + ": model directory not found");
  const std::string repo = hf_repo_dir(name_or_path);
  const std::string revision = cached_revision(repo);
  const std::string dir = repo + "/snapshots/" + revision;
  std::string missing;  // what the cached snapshot lacks
  if (!revision.empty() && fs::is_directory(dir)) {
    missing = missing_snapshot_file(dir);
    if (missing.empty()) return dir;
  }
  if (hf_hub_offline()) {
    const std::string where =
        missing.empty() ? "not a folder, and not in the Hugging Face cache (looked in " + repo + ")"
                        : "its cached snapshot " + dir + " has no " + missing + " (incomplete download?)";
    throw Error("model " + quote_for_message(name_or_path) + " not found: " + where +
                "; offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE), so it is not downloaded: unset "
                "them to download it from " + hf_endpoint() + ", or download it first, e.g. `huggingface-cli download " +
                name_or_path + "`, or give the path of a model folder");
  }
  // Not in the cache, or only partly: fetch what is missing from the Hub (io/hub_download.h).
  try {
    return hub_download_model(name_or_path);
  } catch (const Error& e) {
    const std::string where = missing.empty() ? "is not a folder and not in the Hugging Face cache (" + repo + ")"
                                              : "has an incomplete cached snapshot (no " + missing + " in " + dir + ")";
    throw Error("model " + quote_for_message(name_or_path) + " " + where + "; downloading it failed: " + e.what());
  }
}

}  // namespace nt
