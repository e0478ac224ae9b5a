#pragma once
// Overlap heatmaps: a square concept x concept matrix rendered to PNG with cairo (viridis-like
// colour map, the value written in every cell, a colour scale bar, labels, a title), and the
// same matrix as CSV.
#include <string>
#include <vector>

namespace nt {

struct Heatmap {
  std::string title;
  std::vector<std::string> labels;          // n labels: rows and columns, in order
  std::vector<std::vector<double>> values;  // n x n, values[row][col]; NaN cells are drawn grey with "–"
  std::string value_format = "%.0f";       // printf format of one double: %[flags][width][.prec](f|e|g); %d rounds
  double vmin = 0.0, vmax = 0.0;            // colour range; vmax <= vmin: taken from the finite values
  std::string scale_label;                  // optional caption written along the colour bar
};

// PNG file contents. Throws nt::Error when `values` is not n x n for n = labels.size() >= 1.
std::string heatmap_png_bytes(const Heatmap& h);
// Renders and writes the PNG with nt::write_file_atomic.
void write_heatmap_png(const std::string& path, const Heatmap& h);
// CSV: a header row ("", label...), then one row per label (label, values...); values in
// shortest round-trip form, NaN as empty.
std::string heatmap_csv(const Heatmap& h);

// The colour map (viridis, interpolated from a small table) at t in [0, 1] (clamped): r, g, b in [0, 1].
struct Rgb {
  double r = 0, g = 0, b = 0;
};
Rgb viridis(double t);

}  // namespace nt
