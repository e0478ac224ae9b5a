#include "sae/sae_identity.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "io/sha256.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

void hash_file(const std::filesystem::path& path, Sha256& h) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(quote_for_message(path.string(), 300) + ": cannot read the SAE file");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
}

}  // namespace

nlohmann::json sae_identity(const Sae& sae) {
  namespace fs = std::filesystem;
  const fs::path source = fs::absolute(sae.source());
  std::vector<fs::path> files;
  if (fs::is_directory(source)) {
    for (const auto& e : fs::directory_iterator(source))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(source);
  }
  Sha256 h;
  for (const auto& f : files) {
    h.update(f.filename().string());
    hash_file(f, h);
  }
  return {{"source", source.string()}, {"hook", sae.config().hook_name}, {"d_in", sae.d_in()}, {"d_sae", sae.d_sae()}, {"sha256", h.hex_digest()}};
}

}  // namespace nt
