#include "atlas/atlas_output.h"

#include <fmt/format.h>

#include <cmath>

#include "atlas/unit_record.h"
#include "report/base64.h"
#include "util/atomic_file.h"

namespace nt {

void write_atlas(const std::string& dir, const AtlasState& s, const Tokenizer& tokenizer) {
  make_directories(dir);
  const UnitRecordWriter records(tokenizer);
  save_atlas_state(dir + "/atlas.safetensors", s);
  std::string csv = "site,layer,index,mean,std,min,max,density,top_token\n";
  for (size_t site = 0; site < s.layout.sites.size(); ++site) make_directories(dir + "/units/" + site_name(s.layout.sites[site]));
  for (size_t u = 0; u < s.layout.total; ++u) {
    const NeuronId id = s.layout.id(u);
    const std::string site = site_name(s.layout.sites[static_cast<size_t>(id.site)]);
    write_file_atomic(dir + "/units/" + site + "/" + neuron_label(id.layer, id.index) + ".json", records.json(s, u));
    std::string top_token;
    if (!s.top[u].empty()) {
      const auto& r = s.top[u].front();
      top_token = repair_token_texts({tokenizer.token_bytes(r.tokens[static_cast<size_t>(r.index)])})[0];
    }
    std::string quoted = "\"";
    for (char c : top_token) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    csv += fmt::format("{},{},{},{:.9g},{:.9g},{:.9g},{:.9g},{:.9g},{}\"\n", site, id.layer, id.index, s.moments[u].mean,
                       std::sqrt(s.variance(u)), s.min[u], s.max[u],
                       static_cast<double>(s.positive[u]) / static_cast<double>(std::max<int64_t>(1, s.tokens)), quoted);
  }
  write_file_atomic(dir + "/summary.csv", csv);
}

}  // namespace nt
