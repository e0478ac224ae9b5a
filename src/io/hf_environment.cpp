#include "io/hf_environment.h"

#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>

namespace nt {

namespace {

// The value of a variable that is set and not empty, else "".
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The first of `names` that is set and not empty, else `fallback`.
std::string first_set(std::initializer_list<const char*> names, const std::string& fallback) {
  for (const char* name : names)
    if (std::string v = env(name); !v.empty()) return v;
  return fallback;
}

// os.path.join for two parts.
std::string join(const std::string& a, const std::string& b) {
  if (!b.empty() && b.front() == '/') return b;
  if (a.empty() || a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string expanded(const std::string& path) { return expand_vars(expand_user(path)); }

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

bool env_flag_true(const std::string& value) {
  std::string up;
  for (char c : value) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return up == "1" || up == "ON" || up == "YES" || up == "TRUE";
}

std::string expand_user(const std::string& path) {
  if (path.empty() || path.front() != '~') return path;
  size_t end = path.find('/', 1);
  if (end == std::string::npos) end = path.size();
  std::string home;
  if (end == 1) {
    if (const char* h = std::getenv("HOME")) {
      home = h;
    } else {
      const passwd* pw = ::getpwuid(::getuid());
      if (!pw || !pw->pw_dir) return path;
      home = pw->pw_dir;
    }
  } else {
    const passwd* pw = ::getpwnam(path.substr(1, end - 1).c_str());
    if (!pw || !pw->pw_dir) return path;
    home = pw->pw_dir;
  }
  while (!home.empty() && home.back() == '/') home.pop_back();
  const std::string out = home + path.substr(end);
  return out.empty() ? "/" : out;
}

std::string expand_vars(const std::string& path) {
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] != '$') {
      out += path[i++];
      continue;
    }
    size_t name_begin = i + 1, name_end = name_begin, next = name_begin;
    if (name_begin < path.size() && path[name_begin] == '{') {
      const size_t close = path.find('}', name_begin);
      if (close == std::string::npos) {  // no closing brace: a literal '$'
        out += path[i++];
        continue;
      }
      name_begin += 1;
      name_end = close;
      next = close + 1;
    } else {
      while (name_end < path.size() && is_name_char(path[name_end])) ++name_end;
      next = name_end;
      if (name_end == name_begin) {  // "$" not followed by a name
        out += path[i++];
        continue;
      }
    }
    const char* value = std::getenv(path.substr(name_begin, name_end - name_begin).c_str());
    out += value ? std::string(value) : path.substr(i, next - i);
    i = next;
  }
  return out;
}

std::string hf_home() {
  const std::string cache_home = first_set({"XDG_CACHE_HOME"}, join(expand_user("~"), ".cache"));
  return expanded(first_set({"HF_HOME"}, join(cache_home, "huggingface")));
}

std::string hf_cache_dir() { return expanded(first_set({"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}, join(hf_home(), "hub"))); }

std::string hf_token_path() { return expanded(first_set({"HF_TOKEN_PATH"}, join(hf_home(), "token"))); }

bool hf_hub_offline() { return env_flag_true(first_set({"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}, "")); }

std::string hf_endpoint() {
  std::string e = env("HF_ENDPOINT");
  while (!e.empty() && (e.back() == '/' || std::isspace(static_cast<unsigned char>(e.back())))) e.pop_back();
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.front()))) e.erase(e.begin());
  return e.empty() ? "https://huggingface.co" : e;
}

}  // namespace nt
