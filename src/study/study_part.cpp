#include "study/study_part.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/sha256.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

using json = nlohmann::json;

std::string manifest_path(const std::string& dir) { return dir + "/part.json"; }

// The first field two parts disagree on, with both values; "" when they agree.
std::string difference(const StudyPart& a, const StudyPart& b) {
  const std::pair<const char*, std::pair<std::string, std::string>> fields[] = {
      {"shard count", {std::to_string(a.shard.count), std::to_string(b.shard.count)}},
      {"model fingerprint", {a.fingerprint, b.fingerprint}},
      {"study config", {a.config_path + " " + a.config_hash, b.config_path + " " + b.config_hash}},
      {"weights", {a.weights, b.weights}},
      {"neurontrace version", {a.version, b.version}}};
  for (const auto& [name, values] : fields)
    if (values.first != values.second)
      return std::string(name) + " (" + quote_for_message(values.first) + " vs " + quote_for_message(values.second) + ")";
  return "";
}

}  // namespace

std::string study_config_hash(const StudyConfig& cfg) { return sha256_hex(cfg.raw.dump()).substr(0, 16); }

std::vector<int> shard_groups(const std::vector<size_t>& prompts_per_group, const Shard& shard) {
  const std::vector<int> shard_of = assign_shards(prompts_per_group, shard.count);
  std::vector<int> groups;
  for (size_t g = 0; g < shard_of.size(); ++g)
    if (shard_of[g] == shard.index) groups.push_back(static_cast<int>(g));
  return groups;
}

void write_study_part(const StudyPart& p) {
  const json j = {{"kind", "study-part"},         {"shard", p.shard.index},       {"shards", p.shard.count},
                  {"config", p.config_path},      {"config_hash", p.config_hash}, {"model", p.model_path},
                  {"fingerprint", p.fingerprint}, {"weights", p.weights},         {"neurontrace_version", p.version},
                  {"groups", p.groups}};
  write_file_atomic(manifest_path(p.dir), j.dump(1) + "\n");
}

StudyPart read_study_part(const std::string& dir) {
  const std::string path = manifest_path(dir);
  if (!std::filesystem::exists(path)) throw Error(dir + ": not a finished study shard (no part.json)");
  StudyPart p;
  p.dir = dir;
  try {
    const json j = json::parse(read_file(path));
    if (j.at("kind") != "study-part") throw Error(path + ": not a study part");
    p.shard = {j.at("shard").get<int>(), j.at("shards").get<int>()};
    p.config_path = j.at("config").get<std::string>();
    p.config_hash = j.at("config_hash").get<std::string>();
    p.model_path = j.at("model").get<std::string>();
    p.fingerprint = j.at("fingerprint").get<std::string>();
    p.weights = j.at("weights").get<std::string>();
    p.version = j.at("neurontrace_version").get<std::string>();
    p.groups = j.at("groups").get<std::vector<int>>();
  } catch (const json::exception& e) {
    throw Error(path + ": malformed part manifest (" + escape_for_message(e.what()) + ")");
  }
  if (p.shard.count < 1 || p.shard.index < 0 || p.shard.index >= p.shard.count)
    throw Error(path + ": shard " + p.shard.text() + " is out of range");
  return p;
}

void check_study_parts(const std::vector<StudyPart>& parts) {
  if (parts.empty()) throw Error("study merge: no parts given");
  for (const auto& p : parts) {
    const std::string diff = difference(parts.front(), p);
    if (!diff.empty()) throw Error("study merge: " + parts.front().dir + " and " + p.dir + " differ in " + diff);
  }
  const int n = parts.front().shard.count;
  std::vector<const StudyPart*> by_shard(static_cast<size_t>(n), nullptr);
  for (const auto& p : parts) {
    const StudyPart*& seen = by_shard[static_cast<size_t>(p.shard.index)];
    if (seen) throw Error("study merge: shard " + p.shard.text() + " given twice (" + seen->dir + " and " + p.dir + ")");
    seen = &p;
  }
  std::string missing;
  for (int i = 0; i < n; ++i)
    if (!by_shard[static_cast<size_t>(i)]) missing += (missing.empty() ? "" : ", ") + Shard{i, n}.text();
  if (!missing.empty()) throw Error("study merge: missing shard " + missing + " (parts given: " + std::to_string(parts.size()) + ")");
}

}  // namespace nt
