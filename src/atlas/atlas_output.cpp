#include "atlas/atlas_output.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "atlas/atlas_html.h"
#include "atlas/unit_record.h"
#include "report/base64.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

void write_plain(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw Error(quote_for_message(path, 300) + ": cannot write (" + std::strerror(errno) + ")");
}

// Flushes the file system holding `dir` (every file just written) to disk.
void sync_folder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  const bool ok = fd >= 0 && ::syncfs(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) throw Error(quote_for_message(dir, 300) + ": cannot sync (" + std::strerror(errno) + ")");
}

}  // namespace

void write_atlas(const std::string& dir, const AtlasState& s, const Tokenizer& tokenizer,
                 const std::vector<LogitEffect>& effects) {
  static const LogitEffect none;
  make_directories(dir);
  const UnitRecordWriter records(tokenizer);
  save_atlas_state(dir + "/atlas.safetensors", s, {{"complete", true}});
  std::string csv = "site,layer,index,mean,std,min,max,density,top_token\n";
  // Tens of thousands of small files: written into a staging folder without a sync each, synced
  // once, then renamed to units/ in one step, so units/ is always a whole set.
  const std::string staging = dir + "/units.tmp." + std::to_string(::getpid());
  std::filesystem::remove_all(staging);
  for (size_t site = 0; site < s.layout.sites.size(); ++site) make_directories(staging + "/" + s.layout.sites[site].name());
  for (size_t u = 0; u < s.layout.total; ++u) {
    const NeuronId id = s.layout.id(u);
    const std::string site = s.layout.sites[static_cast<size_t>(id.site)].name();
    const LogitEffect& effect = effects.empty() ? none : effects[u];
    const std::string name = staging + "/" + site + "/" + s.layout.label(id);
    write_plain(name + ".json", records.json(s, u, effect));
    write_plain(name + ".html", atlas_unit_html(s, u, tokenizer, effect));
    std::string top_token;
    if (!s.top[u].empty()) {
      const auto& r = s.top[u].front();
      top_token = sanitize_utf8(whole_characters(*r.tokens, static_cast<size_t>(r.index), tokenizer));
    }
    std::string quoted = "\"";
    for (char c : top_token) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    csv += fmt::format("{},{},{},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{}\"\n", site, id.layer, id.index, s.moments[u].mean,
                       std::sqrt(s.variance(u)), s.min[u], s.max[u],
                       s.density(u), quoted);
  }
  sync_folder(staging);
  std::filesystem::remove_all(dir + "/units");
  std::filesystem::rename(staging, dir + "/units");
  write_file_atomic(dir + "/summary.csv", csv);
  write_file_atomic(dir + "/index-data.js", atlas_index_data(s, tokenizer));
  write_file_atomic(dir + "/index.html", atlas_index_html(s));
}

}  // namespace nt
