// The atlas's HTML on a hand-built state: the histogram's axis labels and token texts that split a
// UTF-8 character across tokens (the index and summary.csv show the whole character, never U+FFFD).
#include <gtest/gtest.h>

#include <limits>

#include "atlas/atlas_html.h"
#include "atlas/atlas_output.h"
#include "atlas/histogram_bins.h"
#include "io/model_config.h"
#include "report/base64.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string model_dir() { return nt::test::shared_path("fixtures/models/gpt2-tiny"); }

// A state of gpt2-tiny's mlp.hook_post with unit 0 given tokens -2, 0.5 and 3 (the histogram's
// extremes and 0 in between) and one top record over `window` with its maximum at `index`.
nt::AtlasState state_with(const std::vector<int32_t>& window, int index) {
  nt::AtlasSettings settings;
  nt::AtlasState s(settings, nt::atlas_layout(settings, nt::load_model_config(model_dir())));
  s.tokens = 3;
  s.min[0] = -2;
  s.max[0] = 3;
  for (float x : {-2.0f, 0.5f, 3.0f}) ++s.histogram[static_cast<size_t>(nt::histogram_bin(x))];
  nt::ContextRecord r{3, 0, index, index, 0, std::make_shared<const std::vector<int32_t>>(window),
                      std::vector<float>(window.size(), 1.0f)};
  s.top[0].push_back(r);
  return s;
}

TEST(AtlasHtml, HistogramAxisNamesBothEndsAndZero) {
  auto tok = nt::load_tokenizer(model_dir());
  const nt::AtlasState s = state_with(tok->encode("a b"), 0);
  const std::string page = nt::atlas_unit_html(s, 0, *tok, {});
  EXPECT_NE(page.find("text-anchor=start>-2</text>"), std::string::npos);
  EXPECT_NE(page.find("text-anchor=end>3</text>"), std::string::npos);
  EXPECT_NE(page.find("text-anchor=middle>0</text>"), std::string::npos);
}

TEST(AtlasHtml, IndexShowsACharacterSplitAcrossTokensWhole) {
  auto tok = nt::load_tokenizer(model_dir());
  // Find a character the tokenizer splits, and the token that holds only its start.
  for (const std::string ch : {"\xe4\xb8\xad", "\xe2\x80\x94", "\xc3\xa9", "\xf0\x9f\x98\x80"}) {
    const std::vector<int> ids = tok->encode("x" + ch + "y");
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const std::string t = tok->token_bytes(ids[i]);
      if (nt::sanitize_utf8(t) == t) continue;  // whole characters only
      const std::vector<int32_t> window(ids.begin(), ids.end());
      const nt::AtlasState s = state_with(window, static_cast<int>(i));
      const std::string data = nt::atlas_index_data(s, *tok);
      EXPECT_EQ(data.find("\xef\xbf\xbd"), std::string::npos) << data.substr(0, 300);
      EXPECT_NE(data.find(ch), std::string::npos) << data.substr(0, 300);
      // summary.csv's top_token, unit 0's row: the whole character too.
      nt::test::TempDir dir;
      nt::write_atlas(dir.path(), s, *tok, {});
      const std::string csv = nt::test::read_text(dir.file("summary.csv"));
      const std::string row0 = csv.substr(csv.find('\n') + 1, csv.find('\n', csv.find('\n') + 1) - csv.find('\n') - 1);
      EXPECT_EQ(row0.find("\xef\xbf\xbd"), std::string::npos) << row0;
      EXPECT_NE(row0.find(ch), std::string::npos) << row0;
      return;
    }
  }
  FAIL() << "gpt2-tiny's tokenizer splits none of the test characters";
}

}  // namespace
