#pragma once
// The study report: ONE self-contained HTML file (inline CSS, PNGs as base64 data: URIs, no
// scripts, nothing fetched) with the configuration, the consistency tables per position setting
// and concept, the overlap heatmaps side by side, the generated texts, the neuron pages, and
// optionally steered vs unsteered generations. Every user-provided string is HTML-escaped.
#include <string>
#include <utility>
#include <vector>

#include "analysis/consistency.h"
#include "report/neuron_page.h"

namespace nt {

// One position setting's results ("Last token only", "All generated tokens").
struct PositionSection {
  std::string title;                      // heading; empty: positions_name of the first analysis
  std::string note;                       // optional paragraph under the heading
  std::vector<ConceptAnalysis> analyses;  // one per concept, rendered in this order
};

// An already rendered PNG (heatmap_png_bytes) with its caption.
struct HeatmapView {
  std::string caption;  // e.g. "Last token only"
  std::string png;      // PNG file bytes; empty: a placeholder is shown
  std::string csv;      // optional: the matrix as CSV (heatmap_csv), shown collapsed under the image
};

struct GeneratedText {
  int prompt_index = 0;
  std::string prompt;
  std::string continuation;
  std::string note;  // optional, e.g. "stop: eos, 200 tokens"
};

struct ConceptTexts {
  std::string concept_name;
  std::vector<GeneratedText> texts;
};

// Steered vs unsteered generation of one prompt, shown side by side. The token vectors are the
// generated continuations; tokens from first_divergence_token on are highlighted in both.
struct SteeringView {
  std::string title;  // optional heading, e.g. "violent: top-3 neurons off"
  std::string prompt;
  std::vector<std::string> unsteered_tokens, steered_tokens;
  int first_divergence_token = -1;  // index into both vectors; < 0: the texts are identical
  std::string spec;                 // the steering specification, e.g. "L11N197,L11N373,L11N680 = 0"
  std::vector<std::pair<std::string, std::string>> measures;  // (name, formatted value)
  std::string control_summary;                                // e.g. the random-neuron control's result
};

struct StudyReport {
  std::string title;
  std::string description;        // a paragraph (plain text; blank lines separate paragraphs)
  std::string config_json;        // shown in a collapsible <details><pre>
  std::string model_description;  // e.g. "gpt2 (124M), 12 layers, d_model 768, float32"
  std::vector<std::pair<std::string, std::string>> facts;  // extra overview rows (name, value)
  std::vector<PositionSection> sections;
  std::vector<HeatmapView> overlap_heatmaps;  // shown side by side
  std::string overlap_note;                   // optional paragraph under the heatmaps
  std::vector<ConceptTexts> generated;
  std::vector<NeuronPage> neuron_pages;  // rendered with neuron_page_html, grouped by concept_name
  std::vector<SteeringView> steering;    // empty: no steering section
  std::string steering_note;             // optional paragraph at the top of the steering section
  std::vector<std::string> warnings;     // shown in the overview
  std::string footer;                    // e.g. "neurontrace 0.1.0 · 2025-01-01 12:00"
};

std::string study_report_html(const StudyReport& r);
// Renders and writes with nt::write_file_atomic.
void write_study_report(const std::string& path, const StudyReport& r);

}  // namespace nt
