#include "report/heatmap.h"

#include <cairo.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>

#include "report/base64.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace {

// matplotlib's viridis at 10 evenly spaced points (the common 10-colour palette).
constexpr unsigned char kViridis[][3] = {{68, 1, 84},    {72, 40, 120},   {62, 74, 137},  {49, 104, 142},
                                         {38, 130, 142}, {31, 158, 137},  {53, 183, 121}, {109, 205, 89},
                                         {180, 222, 44}, {253, 231, 37}};
constexpr int kViridisN = sizeof(kViridis) / sizeof(kViridis[0]);

constexpr double kPad = 18.0;
constexpr const char* kFont = "sans-serif";
constexpr size_t kMaxLabelChars = 28;

using CairoPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;
using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

// A printf conversion for one double, or empty when `fmt` is not one we accept.
struct ValueFormat {
  std::string spec;    // validated, e.g. "%.2f"
  bool round = false;  // %d / %i: rounds, printed with %.0f
};

ValueFormat parse_value_format(const std::string& f) {
  // Accept: any literal text, exactly one %[flags][width][.prec](f|F|e|E|g|G|d|i), "%%" escapes.
  std::string spec;
  bool round = false;
  int conversions = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      spec += f[i];
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '%') {
      spec += "%%";
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < f.size() && std::string_view("-+ #0").find(f[j]) != std::string_view::npos) ++j;
    while (j < f.size() && std::isdigit(static_cast<unsigned char>(f[j]))) ++j;
    const size_t width_end = j;  // end of flags and width
    if (j < f.size() && f[j] == '.') {
      ++j;
      while (j < f.size() && std::isdigit(static_cast<unsigned char>(f[j]))) ++j;
    }
    if (j >= f.size()) return {"%.2f", false};
    const char conv = f[j];
    if (std::string_view("fFeEgG").find(conv) != std::string_view::npos) {
      spec += f.substr(i, j - i + 1);
    } else if (conv == 'd' || conv == 'i') {
      spec += f.substr(i, width_end - i) + ".0f";  // flags and width kept; rounded, no decimals
      round = true;
    } else {
      return {"%.2f", false};
    }
    ++conversions;
    i = j;
  }
  if (conversions != 1) return {"%.2f", false};
  return {spec, round};
}

std::string format_value(const ValueFormat& vf, double v) {
  if (std::isnan(v)) return "\xE2\x80\x93";  // en dash
  if (vf.round) v = std::round(v);
  char buf[128];
  const int n = std::snprintf(buf, sizeof buf, vf.spec.c_str(), v);
  if (n < 0) return "?";
  return std::string(buf, static_cast<size_t>(std::min<int>(n, sizeof buf - 1)));
}

// At most kMaxLabelChars code points, with an ellipsis when cut; always valid UTF-8.
std::string display_label(const std::string& label) {
  const std::string s = sanitize_utf8(label);
  size_t chars = 0, i = 0;
  while (i < s.size()) {
    if (chars == kMaxLabelChars - 1) {
      // Cut here if more than one code point remains.
      size_t rest = 0;
      for (size_t k = i; k < s.size(); ++k)
        if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) ++rest;
      if (rest > 1) return s.substr(0, i) + "\xE2\x80\xA6";
      return s;
    }
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    ++chars;
  }
  return s;
}

void set_font(cairo_t* cr, double size, bool bold) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Draws `s` with its horizontal anchor at x (align: 0 left, 0.5 centre, 1 right) and its
// visual vertical centre at y.
void draw_text(cairo_t* cr, const std::string& s, double x, double y, double align) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  cairo_move_to(cr, x - align * e.x_advance, y + (fe.ascent - fe.descent) / 2.0);
  cairo_show_text(cr, s.c_str());
}

// "Nice" tick values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, double& step) {
  const double range = hi - lo;
  const double raw = range / 5.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  step = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

cairo_status_t append_png(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

Rgb viridis(double t) {
  if (!(t >= 0.0)) t = 0.0;  // NaN too
  if (t > 1.0) t = 1.0;
  const double x = t * (kViridisN - 1);
  const int i = std::min(static_cast<int>(x), kViridisN - 2);
  const double f = x - i;
  auto ch = [&](int c) { return ((1.0 - f) * kViridis[i][c] + f * kViridis[i + 1][c]) / 255.0; };
  return {ch(0), ch(1), ch(2)};
}

std::string heatmap_png_bytes(const Heatmap& h) {
  const size_t n = h.labels.size();
  if (n == 0) throw Error("heatmap '" + h.title + "': no labels");
  if (h.values.size() != n) throw Error(fmt::format("heatmap '{}': {} labels but {} rows", h.title, n, h.values.size()));
  for (size_t r = 0; r < n; ++r)
    if (h.values[r].size() != n)
      throw Error(fmt::format("heatmap '{}': row {} has {} values, expected {}", h.title, r, h.values[r].size(), n));

  // Colour range.
  double vmin = h.vmin, vmax = h.vmax;
  if (!(vmax > vmin)) {
    vmin = INFINITY;
    vmax = -INFINITY;
    for (const auto& row : h.values)
      for (double v : row)
        if (std::isfinite(v)) {
          vmin = std::min(vmin, v);
          vmax = std::max(vmax, v);
        }
    if (!std::isfinite(vmin)) vmin = 0.0, vmax = 1.0;
    if (!(vmax > vmin)) vmax = vmin + 1.0;
  }
  const ValueFormat vf = parse_value_format(h.value_format);

  // Sizes.
  const double cell = std::clamp(std::floor(960.0 / static_cast<double>(n)), 44.0, 120.0);
  const double grid = cell * static_cast<double>(n);
  const double label_size = cell >= 70 ? 15.0 : 13.0;
  const double value_size = std::clamp(cell * 0.22, 11.0, 24.0);
  const double title_size = 19.0;
  const double tick_size = 13.0;
  const double bar_w = 22.0, bar_gap = 26.0;

  std::vector<std::string> labels;
  for (const auto& l : h.labels) labels.push_back(display_label(l));
  const std::string title = sanitize_utf8(h.title);
  const std::string scale_label = sanitize_utf8(h.scale_label);

  // Measure on a scratch surface.
  SurfacePtr scratch(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1), cairo_surface_destroy);
  CairoPtr m(cairo_create(scratch.get()), cairo_destroy);
  set_font(m.get(), label_size, false);
  cairo_font_extents_t lfe;
  cairo_font_extents(m.get(), &lfe);
  const double label_h = lfe.ascent + lfe.descent;
  std::vector<double> label_w;
  double max_label_w = 0.0;
  for (const auto& l : labels) {
    label_w.push_back(text_width(m.get(), l));
    max_label_w = std::max(max_label_w, label_w.back());
  }
  const bool rotate = max_label_w > cell - 10.0;
  const double c45 = std::numbers::sqrt2 / 2.0;

  // Column labels under the grid: horizontal when they fit a cell, else rotated by 45 degrees
  // with their end at the column's centre.
  double col_labels_h = label_h + 10.0;
  double left_needed = 0.0;  // how far rotated labels reach left of the grid
  if (rotate) {
    col_labels_h = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double reach_down = label_w[i] * c45 + label_h * c45 + 10.0;
      col_labels_h = std::max(col_labels_h, reach_down);
      const double reach_left = label_w[i] * c45 + label_h / 2.0 * c45 - (static_cast<double>(i) + 0.5) * cell;
      left_needed = std::max(left_needed, reach_left);
    }
  }
  const double row_labels_w = max_label_w + 10.0;

  set_font(m.get(), tick_size, false);
  double tick_step = 1.0;
  const std::vector<double> ticks = nice_ticks(vmin, vmax, tick_step);
  double tick_w = 0.0;
  for (double t : ticks) tick_w = std::max(tick_w, text_width(m.get(), tick_label(t, tick_step)));
  cairo_font_extents_t tfe;
  cairo_font_extents(m.get(), &tfe);
  const double scale_label_w = scale_label.empty() ? 0.0 : tfe.ascent + tfe.descent + 10.0;

  set_font(m.get(), title_size, true);
  const double title_w = text_width(m.get(), title);
  cairo_font_extents_t tife;
  cairo_font_extents(m.get(), &tife);
  const double title_h = title.empty() ? 0.0 : tife.ascent + tife.descent + 14.0;

  const double x0 = kPad + std::max(row_labels_w, left_needed);
  const double y0 = kPad + title_h;
  double content_w = x0 + grid + bar_gap + bar_w + 8.0 + tick_w + scale_label_w + kPad;
  double content_h = y0 + grid + col_labels_h + kPad;
  double width = std::max({content_w, title_w + 2 * kPad, 400.0});
  double height = std::max(content_h, 400.0);
  const double ox = std::floor((width - content_w) / 2.0);  // centres narrow content
  const double oy = std::floor((height - content_h) / 2.0);

  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(std::ceil(width)),
                                                static_cast<int>(std::ceil(height))),
                     cairo_surface_destroy);
  CairoPtr c(cairo_create(surface.get()), cairo_destroy);
  cairo_t* cr = c.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  // Title, centred over the grid when it fits, else over the image.
  if (!title.empty()) {
    set_font(cr, title_size, true);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.12);
    double cx = ox + x0 + grid / 2.0;
    cx = std::clamp(cx, kPad + title_w / 2.0, width - kPad - title_w / 2.0);
    draw_text(cr, title, cx, oy + kPad + (tife.ascent + tife.descent) / 2.0, 0.5);
  }

  cairo_translate(cr, ox, oy);

  // Cells.
  for (size_t r = 0; r < n; ++r) {
    for (size_t col = 0; col < n; ++col) {
      const double v = h.values[r][col];
      const double x = x0 + static_cast<double>(col) * cell, y = y0 + static_cast<double>(r) * cell;
      Rgb rgb{0.85, 0.85, 0.85};
      if (std::isfinite(v)) rgb = viridis((v - vmin) / (vmax - vmin));
      cairo_set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
      cairo_rectangle(cr, x, y, cell, cell);
      cairo_fill(cr);
      const double lum = 0.2126 * rgb.r + 0.7152 * rgb.g + 0.0722 * rgb.b;
      if (lum > 0.5) cairo_set_source_rgb(cr, 0.08, 0.08, 0.1);
      else cairo_set_source_rgb(cr, 1, 1, 1);
      set_font(cr, value_size, true);
      std::string text = format_value(vf, v);
      // Shrink the value's font if it does not fit its cell.
      const double tw = text_width(cr, text);
      if (tw > cell - 8.0) cairo_set_font_size(cr, value_size * (cell - 8.0) / tw);
      draw_text(cr, text, x + cell / 2.0, y + cell / 2.0, 0.5);
    }
  }
  // Thin white separators and a frame.
  cairo_set_line_width(cr, 1.0);
  cairo_set_source_rgb(cr, 1, 1, 1);
  for (size_t i = 1; i < n; ++i) {
    const double p = static_cast<double>(i) * cell;
    cairo_move_to(cr, x0 + p, y0);
    cairo_line_to(cr, x0 + p, y0 + grid);
    cairo_move_to(cr, x0, y0 + p);
    cairo_line_to(cr, x0 + grid, y0 + p);
  }
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.38);
  cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, grid - 1.0, grid - 1.0);
  cairo_stroke(cr);

  // Row labels (right-aligned left of the grid) and column labels (under it).
  set_font(cr, label_size, false);
  cairo_set_source_rgb(cr, 0.12, 0.12, 0.14);
  for (size_t i = 0; i < n; ++i)
    draw_text(cr, labels[i], x0 - 8.0, y0 + (static_cast<double>(i) + 0.5) * cell, 1.0);
  for (size_t i = 0; i < n; ++i) {
    const double cx = x0 + (static_cast<double>(i) + 0.5) * cell;
    if (!rotate) {
      draw_text(cr, labels[i], cx, y0 + grid + 6.0 + label_h / 2.0, 0.5);
    } else {
      cairo_save(cr);
      cairo_translate(cr, cx + label_h / 2.0 * c45, y0 + grid + 6.0 + label_h / 2.0 * c45);
      cairo_rotate(cr, -std::numbers::pi / 4.0);
      draw_text(cr, labels[i], 0.0, 0.0, 1.0);
      cairo_restore(cr);
    }
  }

  // Colour bar with ticks.
  const double bx = x0 + grid + bar_gap;
  const int steps = static_cast<int>(grid);
  for (int s = 0; s < steps; ++s) {
    const Rgb rgb = viridis(1.0 - (s + 0.5) / steps);
    cairo_set_source_rgb(cr, rgb.r, rgb.g, rgb.b);
    cairo_rectangle(cr, bx, y0 + s, bar_w, 1.0);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.38);
  cairo_rectangle(cr, bx + 0.5, y0 + 0.5, bar_w - 1.0, grid - 1.0);
  cairo_stroke(cr);
  set_font(cr, tick_size, false);
  for (double t : ticks) {
    const double y = std::round(y0 + grid - (t - vmin) / (vmax - vmin) * grid) + 0.5;
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.38);
    cairo_move_to(cr, bx + bar_w, y);
    cairo_line_to(cr, bx + bar_w + 5.0, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.12, 0.12, 0.14);
    draw_text(cr, tick_label(t, tick_step), bx + bar_w + 8.0, y, 0.0);
  }
  if (!scale_label.empty()) {
    cairo_save(cr);
    cairo_translate(cr, bx + bar_w + 8.0 + tick_w + 8.0 + (tfe.ascent + tfe.descent) / 2.0, y0 + grid / 2.0);
    cairo_rotate(cr, std::numbers::pi / 2.0);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.33);
    draw_text(cr, scale_label, 0.0, 0.0, 0.5);
    cairo_restore(cr);
  }

  cairo_surface_flush(surface.get());
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    throw Error(fmt::format("heatmap '{}': cairo: {}", h.title, cairo_status_to_string(cairo_status(cr))));
  std::string png;
  const cairo_status_t st = cairo_surface_write_to_png_stream(surface.get(), append_png, &png);
  if (st != CAIRO_STATUS_SUCCESS)
    throw Error(fmt::format("heatmap '{}': cannot encode PNG: {}", h.title, cairo_status_to_string(st)));
  return png;
}

void write_heatmap_png(const std::string& path, const Heatmap& h) { write_file_atomic(path, heatmap_png_bytes(h)); }

std::string heatmap_csv(const Heatmap& h) {
  auto field = [](const std::string& raw) {
    const std::string s = sanitize_utf8(raw);
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"') q += '"';
      q += ch;
    }
    return q + "\"";
  };
  std::string out;
  for (const auto& l : h.labels) {
    out += ',';
    out += field(l);
  }
  out += "\n";
  for (size_t r = 0; r < h.labels.size(); ++r) {
    out += field(h.labels[r]);
    for (size_t c = 0; c < h.labels.size(); ++c) {
      out += ",";
      if (r < h.values.size() && c < h.values[r].size() && !std::isnan(h.values[r][c]))
        out += fmt::format("{}", h.values[r][c]);
    }
    out += "\n";
  }
  return out;
}

}  // namespace nt
