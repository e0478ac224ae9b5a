// Report rendering: heatmap PNG/CSV, neuron pages (HTML + NeuronRecord JSON), the study report
// (self-contained HTML) and, where Chromium is installed, a screenshot of the report that must
// not be blank. Set NT_REPORT_SAMPLE_DIR to keep the sample heatmap, report and screenshot.
#include <cairo.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cctype>
#include <set>

#include "report/base64.h"
#include "report/heatmap.h"
#include "report/html_report.h"
#include "report/neuron_page.h"
#include "test_support.h"
#include "util/error.h"

namespace {

using namespace nt;

struct PngInfo {
  bool valid = false;
  uint32_t width = 0, height = 0;
};

PngInfo png_info(const std::string& png) {
  PngInfo info;
  static const std::string kMagic = "\x89PNG\r\n\x1a\n";
  if (png.size() < 24 || png.compare(0, 8, kMagic) != 0 || png.compare(12, 4, "IHDR") != 0) return info;
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(png[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(png[at + 3]));
  };
  info.valid = true;
  info.width = be32(16);
  info.height = be32(20);
  return info;
}

// Distinct colours and the standard deviation of the grey level of a PNG file (cairo decoder).
struct PixelStats {
  bool ok = false;
  int width = 0, height = 0;
  size_t distinct = 0;
  double grey_std = 0.0;
};

PixelStats pixel_stats(const std::string& path) {
  PixelStats st;
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return st;
  }
  cairo_surface_flush(s);
  st.ok = true;
  st.width = cairo_image_surface_get_width(s);
  st.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  std::set<uint32_t> colours;
  double sum = 0.0, sum2 = 0.0;
  size_t n = 0;
  for (int y = 0; y < st.height; ++y) {
    const uint32_t* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (int x = 0; x < st.width; ++x) {
      const uint32_t p = row[x] & 0xFFFFFFu;
      if (colours.size() < 100000) colours.insert(p);
      const double g = (((p >> 16) & 255) + ((p >> 8) & 255) + (p & 255)) / 3.0;
      sum += g;
      sum2 += g * g;
      ++n;
    }
  }
  cairo_surface_destroy(s);
  st.distinct = colours.size();
  const double mean = n ? sum / n : 0.0;
  st.grey_std = n ? std::sqrt(std::max(0.0, sum2 / n - mean * mean)) : 0.0;
  return st;
}

std::string sample_dir() {
  const char* d = std::getenv("NT_REPORT_SAMPLE_DIR");
  if (!d || !*d) return "";
  std::filesystem::create_directories(d);
  return d;
}

Heatmap sample_heatmap(const std::string& title) {
  Heatmap h;
  h.title = title;
  h.labels = {"tulip", "vietnam", "hanoi", "violent"};
  h.values = {{10, 6, 5, 6}, {6, 10, 6, 6}, {5, 6, 10, 4}, {6, 6, 4, 10}};
  h.value_format = "%.0f";
  h.vmin = 0;
  h.vmax = 10;
  h.scale_label = "shared top-10 neurons";
  return h;
}

ConceptAnalysis sample_analysis(const std::string& name, Positions pos, std::vector<std::pair<int, int>> neurons) {
  ConceptAnalysis a;
  a.concept_name = name;
  a.positions = pos;
  SiteConsistency sc;
  sc.site = HookSite::ResidPost;
  sc.max_occurrences = 10;
  int rank = 1;
  for (auto [l, n] : neurons) {
    ConsistencyRow r;
    r.rank = rank;
    r.neuron = NeuronId{0, l, n};
    r.occurrences = std::max(1, 8 - rank / 2);
    r.percent = 10.0 * r.occurrences;
    r.mean_score = 1.5 / rank;
    r.concept_mean = 2.0 + 0.1 * n / 100.0;
    r.baseline_mean = 1.1;
    r.cohens_d = 2.4 / rank;
    r.frac_above_p95 = 0.1 * r.occurrences;
    sc.rows.push_back(r);
    ++rank;
  }
  a.sites.push_back(sc);
  return a;
}

NeuronPage sample_page(const std::string& concept_name, int layer, int neuron) {
  NeuronPage p;
  p.concept_name = concept_name;
  p.site = "hook_resid_post";
  p.positions = "generated";
  p.layer = layer;
  p.neuron = neuron;
  p.occurrences = 7;
  p.max_occurrences = 10;
  p.concept_mean = 3.1416;
  p.baseline_mean = 1.25;
  p.cohens_d = 1.87;
  const std::vector<std::pair<std::string, float>> toks = {
      {"Tul", 0.4f}, {"ips", 2.9f}, {" bloom", 1.7f}, {" in", -0.3f}, {" spring", 0.9f}, {" across", 0.1f},
      {" the", -0.8f}, {" Netherlands", 2.2f}, {".", 0.0f}, {"\n", -1.5f}, {"Fields", 1.1f}, {" of", -0.2f},
      {" red", 1.9f}, {" &", 0.3f}, {" yellow", 1.4f}, {" <flowers>", 0.5f}};
  for (int r = 0; r < 2; ++r) {
    ActivationRecord rec;
    rec.prompt_index = 3 + r;
    rec.prompt_group = "concept";
    for (const auto& [t, a] : toks) rec.tokens.push_back({t, a * (r == 0 ? 1.0f : 0.7f)});
    rec.max_activation = 2.9f * (r == 0 ? 1.0f : 0.7f);
    p.top_records.push_back(rec);
  }
  return p;
}

StudyReport sample_report(bool with_steering) {
  StudyReport r;
  r.title = "Concept neurons in GPT-2: tulip, vietnam, hanoi, violent";
  r.description =
      "Which residual-stream neurons fire consistently for a concept while GPT-2 generates?\n\n"
      "Scores are normalized against a baseline of neutral prompts (activation_concept - activation_baseline).";
  r.config_json = "{\n  \"model\": \"gpt2\",\n  \"concepts\": [\"tulip\", \"vietnam\"],\n  \"note\": \"<b>&\"\n}";
  r.model_description = "gpt2 (124M): 12 layers, d_model 768";
  r.facts = {{"Prompts per concept", "10"}, {"Baseline prompts", "5"}, {"Max new tokens", "64"}};
  const std::vector<std::pair<std::string, std::vector<std::pair<int, int>>>> concepts = {
      {"tulip", {{11, 87}, {11, 447}, {11, 365}, {11, 127}, {11, 266}, {11, 442}, {11, 373}, {11, 314}, {11, 756}, {11, 680}}},
      {"vietnam", {{11, 314}, {11, 756}, {11, 706}, {11, 479}, {11, 365}, {11, 447}, {11, 680}, {11, 86}, {10, 756}, {11, 266}}},
      {"hanoi", {{11, 365}, {11, 756}, {10, 756}, {11, 314}, {11, 479}, {11, 706}, {9, 756}, {11, 459}, {11, 447}, {11, 87}}},
      {"violent", {{11, 680}, {11, 314}, {11, 447}, {11, 679}, {11, 706}, {11, 266}, {11, 64}, {11, 87}, {11, 373}, {11, 540}}}};
  for (Positions pos : {Positions::Last, Positions::Generated}) {
    PositionSection s;
    s.title = pos == Positions::Last ? "Last token only" : "All generated tokens";
    for (const auto& [name, neurons] : concepts) s.analyses.push_back(sample_analysis(name, pos, neurons));
    r.sections.push_back(s);
  }
  r.sections[0].analyses[3].warnings.push_back("2 of 10 prompts stopped at EOS after < 5 tokens");
  Heatmap last = sample_heatmap("Last token only");
  Heatmap all = sample_heatmap("All generated tokens");
  all.values = {{10, 3, 4, 2}, {3, 10, 6, 1}, {4, 6, 10, 1}, {2, 1, 1, 10}};
  r.overlap_heatmaps = {{"Last token only", heatmap_png_bytes(last), heatmap_csv(last)},
                        {"All generated tokens", heatmap_png_bytes(all), heatmap_csv(all)}};
  r.overlap_note = "Shared neurons among the top 10 of each pair of concepts.";
  for (const auto& [name, neurons] : concepts) {
    ConceptTexts ct;
    ct.concept_name = name;
    ct.texts.push_back({0, "Tell me about " + name + ".", " It is a topic with a long history; see http://example.com.",
                        "stop: length, 64 tokens"});
    ct.texts.push_back({1, "Write a sentence about " + name + ".", "\nHere is one:\n  indented line", ""});
    r.generated.push_back(ct);
  }
  r.neuron_pages = {sample_page("tulip", 11, 87), sample_page("tulip", 11, 447), sample_page("vietnam", 11, 314)};
  if (with_steering) {
    SteeringView v;
    v.title = "violent: top-3 neurons off";
    v.prompt = "What role do firearms play in patterns of violent violence in different countries?";
    v.unsteered_tokens = {"\n\n", "In", " the", " United", " States", ",", " firearms", " are", " a", " major",
                          " commercial", " product", "."};
    v.steered_tokens = {"\n\n", "In", " the", " United", " States", ",", " firearms", " are", " a", " major",
                        " factor", " in", " violent", " crime", "."};
    v.first_divergence_token = 10;
    v.spec = "L11N197,L11N373,L11N680 = 0";
    v.measures = {{"Token agreement", "10 / 13"}, {"Concept-word rate (unsteered → steered)", "0.00 → 0.20"}};
    v.control_summary = "3 random layer-11 neurons off: first divergence at token 31.";
    r.steering.push_back(v);
    r.steering_note = "Zeroing the concept's top neurons while generating, compared with the unsteered text.";
  }
  r.warnings = {"The baseline has only 5 prompts."};
  r.footer = "neurontrace test sample";
  return r;
}

// cairo and fontconfig keep font caches and the parsed font configuration until told otherwise;
// releasing them at exit keeps LeakSanitizer (NT_SANITIZE builds) quiet. FcFini is looked up at
// run time: fontconfig is loaded by cairo, but the tests do not link it directly.
class CairoCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    cairo_debug_reset_static_data();
    if (void* fc_fini = ::dlsym(RTLD_DEFAULT, "FcFini")) reinterpret_cast<void (*)()>(fc_fini)();
  }
};
const auto* const kCairoCleanup = ::testing::AddGlobalTestEnvironment(new CairoCleanup);

// ----------------------------------------------------------------------------- base64 / utf-8

TEST(Base64, KnownVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(Utf8, InvalidSequencesAreReplaced) {
  EXPECT_EQ(sanitize_utf8("plain caf\xC3\xA9 \xE2\x86\xB5"), "plain caf\xC3\xA9 \xE2\x86\xB5");
  EXPECT_EQ(sanitize_utf8("a\xE2\x86"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated 3-byte sequence
  EXPECT_EQ(sanitize_utf8("\x80x"), "\xEF\xBF\xBDx");                  // stray continuation byte
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");    // overlong
}

TEST(Utf8, CharactersSplitAcrossTokensAreRejoined) {
  const std::vector<std::string> raw = {"caf", "\xC3", "\xA9!", "x\xE2\x86", "\x92 y", "\xE2"};
  const std::vector<std::string> want = {"caf", "", "\xC3\xA9!", "x", "\xE2\x86\x92 y", "\xEF\xBF\xBD"};
  EXPECT_EQ(repair_token_texts(raw), want);

  NeuronPage p;
  p.top_records.push_back({0, "concept", {{"caf", 0.1f}, {"\xC3", 0.2f}, {"\xA9", 0.9f}}, 0.9f});
  EXPECT_NE(neuron_page_html(p).find("\xC3\xA9</span>"), std::string::npos);
  const nlohmann::json j = neuron_record_json(p);
  EXPECT_EQ(j["most_positive_activation_records"][0]["tokens"][2], "\xC3\xA9");
  EXPECT_EQ(j["most_positive_activation_records"][0]["activations"].size(), 3u);
}

// ----------------------------------------------------------------------------- heatmap

TEST(Heatmap, PngIsValidWithSaneSize) {
  const Heatmap h = sample_heatmap("Overlap of top-10 neurons (last token)");
  const std::string png = heatmap_png_bytes(h);
  const PngInfo info = png_info(png);
  ASSERT_TRUE(info.valid);
  // 4 cells of 120 px plus labels and the colour bar.
  EXPECT_GE(info.width, 480u + 100u);
  EXPECT_LE(info.width, 1400u);
  EXPECT_GE(info.height, 480u);
  EXPECT_LE(info.height, 1400u);
  EXPECT_GT(png.size(), 2000u);

  test::TempDir dir;
  const std::string path = dir.file("overlap.png");
  write_heatmap_png(path, h);
  EXPECT_EQ(test::read_text(path), png);  // deterministic, written whole
  const PixelStats st = pixel_stats(path);
  ASSERT_TRUE(st.ok);
  EXPECT_EQ(static_cast<uint32_t>(st.width), info.width);
  EXPECT_GT(st.distinct, 50u);
  if (const std::string keep = sample_dir(); !keep.empty()) write_heatmap_png(keep + "/heatmap.png", h);
}

TEST(Heatmap, SmallAndLargeMatrices) {
  Heatmap one;
  one.title = "one";
  one.labels = {"x"};
  one.values = {{3.0}};
  const PngInfo a = png_info(heatmap_png_bytes(one));
  ASSERT_TRUE(a.valid);
  EXPECT_GE(a.width, 400u);
  EXPECT_GE(a.height, 400u);

  Heatmap big;
  big.title = "Jaccard overlap, many concepts with long names";
  big.value_format = "%.2f";
  big.vmin = 0.0;
  big.vmax = 1.0;
  for (int i = 0; i < 14; ++i) big.labels.push_back("concept number " + std::to_string(i) + " with a long name");
  big.values.assign(14, std::vector<double>(14, 0.0));
  for (int i = 0; i < 14; ++i)
    for (int j = 0; j < 14; ++j) big.values[i][j] = i == j ? 1.0 : 1.0 / (1 + std::abs(i - j));
  big.values[2][3] = NAN;
  const PngInfo b = png_info(heatmap_png_bytes(big));
  ASSERT_TRUE(b.valid);
  EXPECT_LE(b.width, 1800u);
  EXPECT_LE(b.height, 1800u);
  if (const std::string keep = sample_dir(); !keep.empty()) write_heatmap_png(keep + "/heatmap_big.png", big);
}

TEST(Heatmap, OddValueFormatsAndRangesRender) {
  for (const char* f : {"%d", "%5.1f%%", "%s", "", "%.3e", "%n", "%.2f %.2f"}) {
    Heatmap h = sample_heatmap(std::string("format ") + f);
    h.value_format = f;
    h.vmin = h.vmax = 0.0;  // range from the data
    EXPECT_TRUE(png_info(heatmap_png_bytes(h)).valid) << f;
  }
  Heatmap flat = sample_heatmap("all equal");
  flat.values.assign(4, std::vector<double>(4, 2.0));
  flat.vmin = flat.vmax = 0.0;
  EXPECT_TRUE(png_info(heatmap_png_bytes(flat)).valid);
  Heatmap nan = sample_heatmap("all NaN, label \xE2\x86");
  nan.values.assign(4, std::vector<double>(4, NAN));
  nan.vmin = nan.vmax = 0.0;
  EXPECT_TRUE(png_info(heatmap_png_bytes(nan)).valid);
}

TEST(Heatmap, RejectsMalformedMatrix) {
  Heatmap h = sample_heatmap("bad");
  h.values.pop_back();
  EXPECT_THROW(heatmap_png_bytes(h), Error);
  h = sample_heatmap("bad");
  h.values[1].push_back(1.0);
  EXPECT_THROW(heatmap_png_bytes(h), Error);
  h.labels.clear();
  h.values.clear();
  EXPECT_THROW(heatmap_png_bytes(h), Error);
}

TEST(Heatmap, Csv) {
  Heatmap h = sample_heatmap("t");
  h.labels[3] = "violent, \"gun\"";
  h.values[0][1] = 0.25;
  h.values[2][0] = NAN;
  EXPECT_EQ(heatmap_csv(h),
            ",tulip,vietnam,hanoi,\"violent, \"\"gun\"\"\"\n"
            "tulip,10,0.25,5,6\n"
            "vietnam,6,10,6,6\n"
            "hanoi,,6,10,4\n"
            "\"violent, \"\"gun\"\"\",6,6,4,10\n");
}

TEST(Heatmap, ViridisEnds) {
  const Rgb lo = viridis(0.0), hi = viridis(1.0), mid = viridis(0.5);
  EXPECT_NEAR(lo.r, 68 / 255.0, 1e-9);
  EXPECT_NEAR(hi.g, 231 / 255.0, 1e-9);
  EXPECT_GT(hi.r + hi.g, lo.r + lo.g);  // dark purple to bright yellow
  EXPECT_GT(mid.g, mid.r);              // teal in the middle
}

// ----------------------------------------------------------------------------- neuron pages

TEST(NeuronPage, EscapesTextAndAttributes) {
  NeuronPage p = sample_page("tu<l>ip & \"co\"", 11, 447);
  p.site = "hook_resid_post<x>";
  p.top_records[0].tokens.push_back({"<script>alert('x')</script>", 1.0f});
  p.top_records[0].tokens.push_back({"a\xE2\x86", 0.5f});  // partial UTF-8 character
  const std::string html = neuron_page_html(p);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("tu&lt;l&gt;ip &amp; &quot;co&quot;"), std::string::npos);
  EXPECT_NE(html.find("hook_resid_post&lt;x&gt;"), std::string::npos);
  EXPECT_NE(html.find(" &amp;"), std::string::npos);             // token " &"
  EXPECT_NE(html.find(" &lt;flowers&gt;"), std::string::npos);    // token " <flowers>"
  EXPECT_NE(html.find("a\xEF\xBF\xBD"), std::string::npos);       // repaired
  EXPECT_NE(html.find("L11N447"), std::string::npos);
  EXPECT_NE(html.find("title=\"2.9\""), std::string::npos);       // exact value
  EXPECT_NE(html.find("\xE2\x86\xB5</span>\n"), std::string::npos);  // newline token: mark + break
  EXPECT_NE(html.find("7 / 10 (70%)"), std::string::npos);
  EXPECT_NE(html.find("1.87"), std::string::npos);
}

TEST(NeuronPage, ColourPositiveWarmNegativeCool) {
  auto rgb = [](const std::string& hex) {
    EXPECT_EQ(hex.size(), 7u);
    return std::array<int, 3>{std::stoi(hex.substr(1, 2), nullptr, 16), std::stoi(hex.substr(3, 2), nullptr, 16),
                              std::stoi(hex.substr(5, 2), nullptr, 16)};
  };
  EXPECT_EQ(activation_colour(0.0f, 3.0f), "#ffffff");
  EXPECT_EQ(activation_colour(1.0f, 0.0f), "#ffffff");
  const auto pos = rgb(activation_colour(3.0f, 3.0f)), neg = rgb(activation_colour(-3.0f, 3.0f));
  EXPECT_GT(pos[0], pos[2] + 100);  // red
  EXPECT_GT(neg[2], neg[0] + 60);   // blue
  const auto weak = rgb(activation_colour(0.5f, 3.0f)), strong = rgb(activation_colour(2.5f, 3.0f));
  EXPECT_GT(weak[1] + weak[2], strong[1] + strong[2]);  // stronger is more saturated
  EXPECT_EQ(activation_colour(9.0f, 3.0f), activation_colour(3.0f, 3.0f));  // saturates
  const std::string html = neuron_page_html(sample_page("tulip", 11, 87));
  EXPECT_NE(html.find("background:" + activation_colour(2.9f, 2.9f)), std::string::npos);
  EXPECT_NE(html.find("background:" + activation_colour(-1.5f, 2.9f)), std::string::npos);
}

TEST(NeuronPage, NeuronRecordJsonShape) {
  NeuronPage p = sample_page("tulip", 11, 87);
  std::swap(p.top_records[0], p.top_records[1]);  // weaker first: the JSON sorts
  const nlohmann::json j = neuron_record_json(p);
  for (const char* key : {"dataclass_name", "neuron_id", "random_sample", "random_sample_by_quantile",
                          "quantile_boundaries", "mean", "variance", "skewness", "kurtosis",
                          "most_positive_activation_records"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["dataclass_name"], "NeuronRecord");
  EXPECT_EQ(j["neuron_id"]["layer_index"], 11);
  EXPECT_EQ(j["neuron_id"]["neuron_index"], 87);
  EXPECT_EQ(j["neuron_id"]["dataclass_name"], "NeuronId");
  EXPECT_TRUE(j["random_sample"].is_array());
  EXPECT_TRUE(j["random_sample"].empty());
  EXPECT_TRUE(j["random_sample_by_quantile"].is_null());
  EXPECT_TRUE(j["quantile_boundaries"].is_null());
  const auto& recs = j["most_positive_activation_records"];
  ASSERT_EQ(recs.size(), 2u);
  for (const auto& r : recs) {
    EXPECT_EQ(r["dataclass_name"], "ActivationRecord");
    ASSERT_TRUE(r["tokens"].is_array());
    ASSERT_TRUE(r["activations"].is_array());
    EXPECT_EQ(r["tokens"].size(), r["activations"].size());
    EXPECT_TRUE(r["tokens"][0].is_string());
    EXPECT_TRUE(r["activations"][0].is_number());
  }
  EXPECT_EQ(recs[0]["tokens"][1], "ips");
  EXPECT_NEAR(recs[0]["activations"][1].get<double>(), 2.9, 1e-6);  // strongest record first
  EXPECT_NEAR(recs[1]["activations"][1].get<double>(), 2.9 * 0.7, 1e-6);
  EXPECT_TRUE(j["mean"].is_number());
  EXPECT_GT(j["variance"].get<double>(), 0.0);
  EXPECT_TRUE(j["skewness"].is_number());
  EXPECT_TRUE(j["kurtosis"].is_number());
  EXPECT_NO_THROW((void)j.dump());

  NeuronPage empty;
  empty.layer = 3;
  empty.neuron = 5;
  empty.top_records.push_back({0, "concept", {{"\xE2\x86", 1.0f}}, 1.0f});  // invalid UTF-8 token
  const nlohmann::json e = neuron_record_json(empty);
  EXPECT_NO_THROW((void)e.dump());  // would throw on invalid UTF-8
  EXPECT_NEAR(e["mean"].get<double>(), 1.0, 1e-9);
  EXPECT_TRUE(e["variance"].is_null());
  EXPECT_TRUE(e["skewness"].is_null());
  EXPECT_TRUE(e["kurtosis"].is_null());
}

// ----------------------------------------------------------------------------- study report

// Every src= / href= value in the document.
std::vector<std::string> links(const std::string& html) {
  // A plain scan of the tags (std::regex recurses per character and overflows the stack on
  // data: URIs). User text is escaped, so every raw '<' starts a real tag.
  std::vector<std::string> out;
  for (size_t lt = html.find('<'); lt != std::string::npos; lt = html.find('<', lt + 1)) {
    const size_t gt = html.find('>', lt);
    if (gt == std::string::npos) break;
    std::string tag = html.substr(lt, gt - lt);
    std::string lower = tag;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const std::string a : {"src", "href"}) {
      for (size_t at = lower.find(a); at != std::string::npos; at = lower.find(a, at + 1)) {
        if (!std::isspace(static_cast<unsigned char>(lower[at - 1]))) continue;
        size_t i = at + a.size();
        while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
        if (i >= lower.size() || lower[i] != '=') continue;
        ++i;
        while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
        if (i >= lower.size()) continue;
        const char q = lower[i];
        size_t begin = i, end;
        if (q == '"' || q == '\'') {
          begin = i + 1;
          end = lower.find(q, begin);
          if (end == std::string::npos) end = lower.size();
        } else {
          end = i;
          while (end < lower.size() && !std::isspace(static_cast<unsigned char>(lower[end]))) ++end;
        }
        out.push_back(tag.substr(begin, end - begin));
      }
    }
    lt = gt;
  }
  return out;
}

TEST(HtmlReport, SelfContained) {
  const std::string html = study_report_html(sample_report(true));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  const auto refs = links(html);
  EXPECT_FALSE(refs.empty());
  size_t images = 0;
  for (const auto& ref : refs) {
    EXPECT_TRUE(ref.rfind("#", 0) == 0 || ref.rfind("data:image/png;base64,", 0) == 0) << ref.substr(0, 80);
    EXPECT_EQ(ref.find("http://"), std::string::npos);
    EXPECT_EQ(ref.find("https://"), std::string::npos);
    if (ref.rfind("data:image/png;base64,", 0) == 0) ++images;
  }
  EXPECT_EQ(images, 2u);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  // Every anchor link points at an id of the document.
  for (const auto& ref : refs) {
    if (ref.rfind("#", 0) != 0) continue;
    EXPECT_NE(html.find("id=\"" + ref.substr(1) + "\""), std::string::npos) << ref;
  }
}

TEST(HtmlReport, ContainsConceptsTablesTextsAndPages) {
  const StudyReport r = sample_report(false);
  const std::string html = study_report_html(r);
  for (const char* c : {"tulip", "vietnam", "hanoi", "violent"}) EXPECT_NE(html.find(c), std::string::npos) << c;
  for (const char* h : {"Rank", "Layer", "Neuron", "Occurrences", "Mean score", "Concept mean", "Baseline mean",
                        "Cohen&#39;s&nbsp;d", "&gt;p95"})
    EXPECT_NE(html.find(h), std::string::npos) << h;
  // 2 sections x 4 concepts x 10 rows.
  size_t rows = 0;
  for (size_t at = html.find("<tr><td>"); at != std::string::npos; at = html.find("<tr><td>", at + 1)) ++rows;
  EXPECT_EQ(rows, 80u);
  EXPECT_NE(html.find("<tr><td>1</td><td>11</td><td>87</td><td>8</td>"), std::string::npos);  // tulip rank 1
  EXPECT_NE(html.find("Last token only"), std::string::npos);
  EXPECT_NE(html.find("All generated tokens"), std::string::npos);
  EXPECT_NE(html.find("<b>Tell me about tulip.</b>"), std::string::npos);
  EXPECT_NE(html.find("L11N447"), std::string::npos);
  EXPECT_NE(html.find("<details><summary>Configuration</summary><pre>"), std::string::npos);
  EXPECT_NE(html.find("&quot;note&quot;: &quot;&lt;b&gt;&amp;&quot;"), std::string::npos);  // config escaped
  EXPECT_NE(html.find("2 of 10 prompts stopped at EOS after &lt; 5 tokens"), std::string::npos);
  EXPECT_EQ(html.find("id=\"steering\""), std::string::npos);  // no steering section without steering
  EXPECT_EQ(html.find("href=\"#steering\""), std::string::npos);
}

TEST(HtmlReport, SteeringSideBySide) {
  const std::string html = study_report_html(sample_report(true));
  EXPECT_NE(html.find("id=\"steering\""), std::string::npos);
  EXPECT_NE(html.find("href=\"#steering\""), std::string::npos);
  EXPECT_NE(html.find("L11N197,L11N373,L11N680 = 0"), std::string::npos);
  EXPECT_NE(html.find("<h4>Unsteered</h4>"), std::string::npos);
  EXPECT_NE(html.find("<h4>Steered</h4>"), std::string::npos);
  // Tokens before the divergence are plain, the rest highlighted.
  EXPECT_NE(html.find(" a major<span class=\"divmark\""), std::string::npos);
  EXPECT_NE(html.find("<span class=\"diverged\"> commercial product.</span>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"diverged\"> factor in violent crime.</span>"), std::string::npos);
  EXPECT_NE(html.find("Concept-word rate (unsteered → steered)"), std::string::npos);
  EXPECT_NE(html.find("3 random layer-11 neurons off"), std::string::npos);
}

TEST(HtmlReport, EscapesUserText) {
  StudyReport r = sample_report(true);
  r.title = "<script>x</script>";
  r.sections[0].analyses[0].concept_name = "a<b>&\"c\"";
  r.generated[0].texts[0].continuation = "</div><img src=\"https://evil.example/x.png\">";
  r.steering[0].steered_tokens.push_back("<iframe src='http://x'>");
  const std::string html = study_report_html(r);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<iframe"), std::string::npos);
  EXPECT_NE(html.find("a&lt;b&gt;&amp;&quot;c&quot;"), std::string::npos);
  for (const auto& ref : links(html)) EXPECT_EQ(ref.find("://"), std::string::npos) << ref;
}

TEST(HtmlReport, WritesFile) {
  test::TempDir dir;
  const StudyReport r = sample_report(true);
  write_study_report(dir.file("report.html"), r);
  EXPECT_EQ(test::read_text(dir.file("report.html")), study_report_html(r));
}

TEST(HtmlReport, ChromiumScreenshotIsNotBlank) {
  const std::string chromium = "/usr/bin/chromium";
  if (!std::filesystem::exists(chromium)) GTEST_SKIP() << "chromium not installed (" << chromium << ")";
  test::TempDir dir;
  const std::string html_path = dir.file("report.html");
  const std::string png_path = dir.file("screenshot.png");
  const std::string profile = dir.file("profile");
  std::filesystem::create_directories(profile);
  write_study_report(html_path, sample_report(true));
  const std::string cmd = "timeout 60 " + chromium +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                          " --disable-background-networking --disable-component-update --disable-sync"
                          " --disable-dev-shm-usage --hide-scrollbars --user-data-dir='" +
                          profile + "' --screenshot='" + png_path + "' --window-size=1280,2000 'file://" + html_path +
                          "' > '" + dir.file("chromium.log") + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(std::filesystem::exists(png_path))
      << "chromium exit " << rc << ", log:\n" << test::read_text(dir.file("chromium.log"));
  const PixelStats st = pixel_stats(png_path);
  ASSERT_TRUE(st.ok) << "screenshot is not a PNG cairo can read";
  EXPECT_EQ(st.width, 1280);
  EXPECT_EQ(st.height, 2000);
  EXPECT_GT(st.distinct, 200u) << "screenshot looks blank";
  EXPECT_GT(st.grey_std, 10.0) << "screenshot looks blank";
  if (const std::string keep = sample_dir(); !keep.empty()) {
    std::filesystem::copy_file(png_path, keep + "/report_screenshot.png",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(html_path, keep + "/report.html", std::filesystem::copy_options::overwrite_existing);
  }
}

// Figures against the baseline that were not measured show a dash, not zeros; a tiny negative
// value shows as 0.0000, not -0.0000.
TEST(HtmlReport, UnmeasuredBaselineFiguresShowADash) {
  StudyReport r = sample_report(false);
  ConsistencyRow& row = r.sections[0].analyses[0].sites[0].rows[0];
  row.baseline_mean.reset();
  row.cohens_d.reset();
  row.frac_above_p95.reset();
  r.sections[0].analyses[0].sites[0].rows[1].baseline_mean = -1e-7;
  const std::string html = study_report_html(r);
  const size_t at = html.find("<tr><td>1</td><td>11</td><td>87</td>");
  ASSERT_NE(at, std::string::npos);
  const std::string tr = html.substr(at, html.find("</tr>", at) - at);
  size_t dashes = 0;
  for (size_t i = tr.find("&ndash;"); i != std::string::npos; i = tr.find("&ndash;", i + 1)) ++dashes;
  EXPECT_EQ(dashes, 3u) << tr;  // baseline mean, Cohen's d, >p95
  EXPECT_EQ(tr.find("0.0000"), std::string::npos) << tr;
  EXPECT_EQ(html.find("-0.0000"), std::string::npos);

  NeuronPage page = sample_page("tulip", 11, 87);
  page.baseline_mean.reset();
  page.cohens_d.reset();
  const std::string np = neuron_page_html(page);
  EXPECT_NE(np.find("Baseline mean</dt><dd>&ndash;"), std::string::npos) << np.substr(0, 1500);
}

}  // namespace
