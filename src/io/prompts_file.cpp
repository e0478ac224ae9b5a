#include "io/prompts_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

std::vector<std::string> load_prompts(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": prompts file not found");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed JSON (" + escape_for_message(e.what()) + ")");
  }
  const nlohmann::json* list = &j;
  if (j.is_object()) {
    auto it = j.find("prompts");
    if (it == j.end()) throw Error(path + ": expected {\"prompts\": [...]}");
    list = &*it;
  }
  if (!list->is_array()) throw Error(path + ": \"prompts\" must be an array of strings");
  std::vector<std::string> prompts;
  for (size_t i = 0; i < list->size(); ++i) {
    if (!(*list)[i].is_string()) throw Error(path + ": prompt " + std::to_string(i) + " is not a string");
    prompts.push_back((*list)[i].get<std::string>());
  }
  if (prompts.empty()) throw Error(path + ": the prompt list is empty");
  return prompts;
}

}  // namespace nt
