#include "io/model_resolver.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "io/hub_download.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace fs = std::filesystem;

std::string hf_cache_dir() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) return c;
  if (const char* h = std::getenv("HF_HOME"); h && *h) return std::string(h) + "/hub";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/huggingface/hub";
}

std::string hf_repo_dir(const std::string& repo_id) {
  std::string name = "models--";
  for (char c : repo_id) {
    if (c == '/') name += "--";
    else name += c;
  }
  return hf_cache_dir() + "/" + name;
}

std::string resolve_model(const std::string& name_or_path) {
  if (name_or_path.empty()) throw Error("no model given");
  if (fs::is_directory(name_or_path)) return name_or_path;
  const bool looks_like_path = name_or_path[0] == '/' || name_or_path[0] == '.' ||
                               name_or_path.find("//") != std::string::npos ||
                               std::count(name_or_path.begin(), name_or_path.end(), '/') > 1;
  if (looks_like_path) throw Error(name_or_path + ": model directory not found");
  const std::string repo = hf_repo_dir(name_or_path);
  const std::string snapshots = repo + "/snapshots";
  std::string revision;
  const std::string ref = repo + "/refs/main";
  if (fs::exists(ref)) {
    revision = read_file(ref);
    while (!revision.empty() && (revision.back() == '\n' || revision.back() == '\r' || revision.back() == ' '))
      revision.pop_back();
    if (revision.empty() || revision.find('/') != std::string::npos || revision == "..")
      throw Error(ref + ": malformed revision");
  } else if (fs::is_directory(snapshots)) {
    // No refs/main: take the most recently written snapshot.
    fs::file_time_type newest{};
    for (const auto& e : fs::directory_iterator(snapshots)) {
      if (!e.is_directory()) continue;
      if (revision.empty() || e.last_write_time() > newest) {
        newest = e.last_write_time();
        revision = e.path().filename().string();
      }
    }
  }
  const std::string dir = snapshots + "/" + revision;
  if (!revision.empty() && fs::is_directory(dir)) {
    if (!fs::exists(dir + "/config.json"))
      throw Error(dir + ": cached snapshot of '" + name_or_path + "' has no config.json (incomplete download?)");
    return dir;
  }
  if (hf_hub_offline())
    throw Error("model '" + name_or_path + "' not found: not a folder, and not in the Hugging Face cache (looked in " +
                repo + "); HF_HUB_OFFLINE is set, so it is not downloaded: unset HF_HUB_OFFLINE to download it from " +
                hf_endpoint() + ", or download it first, e.g. `huggingface-cli download " + name_or_path +
                "`, or give the path of a model folder");
  // Not in the cache: fetch it from the Hub into the cache (io/hub_download.h).
  try {
    return hub_download_model(name_or_path);
  } catch (const Error& e) {
    throw Error("model '" + name_or_path + "' is not a folder and not in the Hugging Face cache (" + repo +
                "); downloading it failed: " + e.what());
  }
}

}  // namespace nt
