#pragma once
// The Hugging Face environment, read as the Python `huggingface_hub` library reads it
// (huggingface_hub/constants.py), so both tools use the same cache, token and offline switch:
//   HF_HOME        $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
//   cache folder   $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else HF_HOME/hub
//   token file     $HF_TOKEN_PATH, else HF_HOME/token
// Each path has `~` and `$VAR` / `${VAR}` expanded as Python's os.path.expanduser and
// os.path.expandvars do (an unset variable stays as written). One difference: a variable set to
// the empty string counts as unset here (Python would use "" and end in a relative folder).
#include <string>

namespace nt {

// A switch such as HF_HUB_OFFLINE: true for 1, ON, YES, TRUE in any case, exactly (no spaces).
bool env_flag_true(const std::string& value);
// `path` with a leading `~` or `~user` replaced by the home folder (os.path.expanduser).
std::string expand_user(const std::string& path);
// `path` with each `$NAME` or `${NAME}` of a set variable replaced by its value (os.path.expandvars).
std::string expand_vars(const std::string& path);

std::string hf_home();
std::string hf_cache_dir();
std::string hf_token_path();
// HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE when HF_HUB_OFFLINE is unset or empty, is true.
bool hf_hub_offline();
// $HF_ENDPOINT without trailing '/', else "https://huggingface.co".
std::string hf_endpoint();

}  // namespace nt
