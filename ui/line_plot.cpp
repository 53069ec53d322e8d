#include "ui/line_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace difflab {

namespace {

constexpr ImU32 kPlotBackground = IM_COL32(22, 24, 28, 255);
constexpr ImU32 kGridColor = IM_COL32(255, 255, 255, 26);
constexpr ImU32 kAxisText = IM_COL32(170, 170, 175, 255);
constexpr ImU32 kCursorColor = IM_COL32(255, 255, 255, 90);
// Aim for about one tick label per this many pixels.
constexpr float kPixelsPerXTick = 90.0f;
constexpr float kPixelsPerYTick = 34.0f;

double x_at(const PlotSeries& s, size_t i) { return s.x.empty() ? static_cast<double>(i) : s.x[i]; }

// Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about `count` of them.
std::vector<double> nice_ticks(double lo, double hi, int count) {
  std::vector<double> ticks;
  if (!(hi > lo) || count < 1) return ticks;
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1.0 : norm < 3.5 ? 2.0 : norm < 7.5 ? 5.0 : 10.0) * mag;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

// Log axis (values are log10 y): decades, plus 2× and 5× when the range is short; within
// less than a decade, linear "nice" values (0.92, 0.94, ...) placed on the log scale.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  const bool fine = hi - lo < 2.5;
  for (double d = std::floor(lo); d <= std::ceil(hi); d += 1.0) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && !fine) continue;
      const double v = d + std::log10(m);
      if (v >= lo && v <= hi) ticks.push_back(v);
    }
  }
  if (ticks.size() >= 3) return ticks;
  ticks.clear();
  for (double v : nice_ticks(std::pow(10.0, lo), std::pow(10.0, hi), 4))
    if (v > 0.0) ticks.push_back(std::log10(v));
  return ticks;
}

}  // namespace

PlotHover line_plot(const char* id, const std::vector<PlotSeries>& series,
                    const PlotOptions& options) {
  PlotHover hover;
  ImGui::PushID(id);
  const float width = std::max(ImGui::GetContentRegionAvail().x, 120.0f);
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 frame_size(width, options.height);
  ImGui::InvisibleButton("##plot", frame_size);
  const bool hovered = ImGui::IsItemHovered();
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const float font = ImGui::GetFontSize();

  // Data ranges (y in log10 units on a log axis).
  auto ty = [&](double y) { return options.log_y ? std::log10(y) : y; };
  auto valid_y = [&](double y) { return std::isfinite(y) && (!options.log_y || y > 0.0); };
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!valid_y(s.y[i])) continue;
      x_lo = std::min(x_lo, x_at(s, i));
      x_hi = std::max(x_hi, x_at(s, i));
      y_lo = std::min(y_lo, ty(s.y[i]));
      y_hi = std::max(y_hi, ty(s.y[i]));
    }
  }
  const ImVec2 frame_max(origin.x + frame_size.x, origin.y + frame_size.y);
  draw->AddRectFilled(origin, frame_max, kPlotBackground, 3.0f);
  if (!(x_hi >= x_lo) || !(y_hi >= y_lo)) {
    const char* text = "no data yet";
    const ImVec2 ts = ImGui::CalcTextSize(text);
    draw->AddText(ImVec2(origin.x + (width - ts.x) / 2, origin.y + (options.height - ts.y) / 2),
                  kAxisText, text);
    ImGui::PopID();
    return hover;
  }
  if (options.y_from_zero && !options.log_y) {
    y_lo = std::min(y_lo, 0.0);
    y_hi = std::max(y_hi, 0.0);
  }
  if (x_hi == x_lo) x_hi = x_lo + 1.0;
  if (y_hi == y_lo) {
    y_lo -= options.log_y ? 0.5 : std::max(std::fabs(y_lo) * 0.1, 1e-3);
    y_hi += options.log_y ? 0.5 : std::max(std::fabs(y_hi) * 0.1, 1e-3);
  }
  const double y_pad = (y_hi - y_lo) * 0.05;
  y_lo -= y_pad;
  y_hi += y_pad;

  // Plot area inside the frame: room for y labels on the left and x labels below.
  char buf[64];
  const int y_count = std::max(2, static_cast<int>(options.height / kPixelsPerYTick));
  const std::vector<double> yt = options.log_y ? log_ticks(y_lo, y_hi) : nice_ticks(y_lo, y_hi, y_count);
  // Enough significant digits that neighbouring tick labels differ (0.995, 1, 1.005).
  int digits = 3;
  for (; digits < 8; ++digits) {
    bool distinct = true;
    std::string previous;
    for (double v : yt) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, options.log_y ? std::pow(10.0, v) : v);
      if (buf == previous) distinct = false;
      previous = buf;
    }
    if (distinct) break;
  }
  auto y_label = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, options.log_y ? std::pow(10.0, v) : v);
    return std::string(buf);
  };
  float label_w = 0.0f;
  for (double v : yt) label_w = std::max(label_w, ImGui::CalcTextSize(y_label(v).c_str()).x);
  const float bottom = font + 6.0f + (options.x_label ? font + 2.0f : 0.0f);
  const ImVec2 a(origin.x + label_w + 8.0f, origin.y + 6.0f);
  const ImVec2 b(frame_max.x - 8.0f, frame_max.y - bottom);
  const float pw = std::max(b.x - a.x, 1.0f), ph = std::max(b.y - a.y, 1.0f);
  auto sx = [&](double x) { return a.x + static_cast<float>((x - x_lo) / (x_hi - x_lo)) * pw; };
  auto sy = [&](double v) { return b.y - static_cast<float>((v - y_lo) / (y_hi - y_lo)) * ph; };

  for (double v : yt) {
    const float y = sy(v);
    draw->AddLine(ImVec2(a.x, y), ImVec2(b.x, y), kGridColor);
    const std::string text = y_label(v);
    const ImVec2 ts = ImGui::CalcTextSize(text.c_str());
    draw->AddText(ImVec2(a.x - ts.x - 4.0f, y - ts.y / 2), kAxisText, text.c_str());
  }
  const int x_count = std::max(2, static_cast<int>(pw / kPixelsPerXTick));
  for (double v : nice_ticks(x_lo, x_hi, x_count)) {
    const float x = sx(v);
    draw->AddLine(ImVec2(x, a.y), ImVec2(x, b.y), kGridColor);
    std::snprintf(buf, sizeof buf, options.x_format, v);
    const ImVec2 ts = ImGui::CalcTextSize(buf);
    draw->AddText(ImVec2(std::clamp(x - ts.x / 2, origin.x, frame_max.x - ts.x), b.y + 3.0f),
                  kAxisText, buf);
  }
  if (options.x_label) {
    const ImVec2 ts = ImGui::CalcTextSize(options.x_label);
    draw->AddText(ImVec2(a.x + (pw - ts.x) / 2, b.y + font + 4.0f), kAxisText, options.x_label);
  }

  // Series, broken wherever a value cannot be drawn (NaN, or ≤ 0 on a log axis).
  draw->PushClipRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1), true);
  std::vector<ImVec2> run;
  for (const auto& s : series) {
    run.clear();
    auto flush = [&] {
      if (run.size() >= 2) draw->AddPolyline(run.data(), static_cast<int>(run.size()), s.color, 0, s.thickness);
      run.clear();
    };
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!valid_y(s.y[i])) {
        flush();
        continue;
      }
      const ImVec2 p(sx(x_at(s, i)), sy(ty(s.y[i])));
      run.push_back(p);
      if (s.markers) draw->AddCircleFilled(p, 2.5f, s.color);
    }
    flush();
  }
  draw->PopClipRect();

  // Legend, top right.
  if (options.legend && series.size() > 1) {
    float y = a.y + 2.0f, lw = 0.0f;
    for (const auto& s : series) lw = std::max(lw, ImGui::CalcTextSize(s.label.c_str()).x);
    const float x = b.x - lw - 22.0f;
    draw->AddRectFilled(ImVec2(x - 4, y - 2), ImVec2(b.x - 2, y + series.size() * (font + 1) + 2),
                        IM_COL32(0, 0, 0, 140), 3.0f);
    for (const auto& s : series) {
      draw->AddLine(ImVec2(x, y + font / 2), ImVec2(x + 12, y + font / 2), s.color, 2.5f);
      draw->AddText(ImVec2(x + 16, y), IM_COL32(225, 225, 225, 255), s.label.c_str());
      y += font + 1;
    }
  }

  // Hover read-out: nearest point of each series to the cursor's x.
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (hovered && m.x >= a.x && m.x <= b.x) {
    hover.active = true;
    hover.x = x_lo + (m.x - a.x) / pw * (x_hi - x_lo);
    draw->AddLine(ImVec2(m.x, a.y), ImVec2(m.x, b.y), kCursorColor);
    ImGui::BeginTooltip();
    std::snprintf(buf, sizeof buf, options.x_format, hover.x);
    ImGui::Text("%s %s", options.x_label ? options.x_label : "x", buf);
    for (const auto& s : series) {
      if (!s.in_readout || s.y.empty()) continue;
      size_t best = 0;
      if (s.x.empty()) {
        best = static_cast<size_t>(std::clamp(std::llround(hover.x), 0LL,
                                              static_cast<long long>(s.y.size()) - 1));
      } else {
        auto it = std::lower_bound(s.x.begin(), s.x.end(), hover.x);
        best = static_cast<size_t>(std::min<ptrdiff_t>(it - s.x.begin(), s.x.size() - 1));
        if (best > 0 && std::fabs(s.x[best - 1] - hover.x) < std::fabs(s.x[best] - hover.x)) --best;
      }
      const double yv = s.y[best];
      if (valid_y(yv)) draw->AddCircle(ImVec2(sx(x_at(s, best)), sy(ty(yv))), 4.0f, s.color, 0, 1.5f);
      ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(s.color), "%s", s.label.c_str());
      ImGui::SameLine();
      std::snprintf(buf, sizeof buf, options.x_format, x_at(s, best));
      ImGui::Text("%.5g  (at %s)", yv, buf);
    }
    ImGui::EndTooltip();
  }
  ImGui::PopID();
  return hover;
}

void bar_chart(const char* id, const std::vector<double>& values,
               const std::vector<std::string>& labels, float height, ImU32 color,
               const char* value_format) {
  ImGui::PushID(id);
  const float width = std::max(ImGui::GetContentRegionAvail().x, 120.0f);
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton("##bars", ImVec2(width, height));
  const bool hovered = ImGui::IsItemHovered();
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const ImVec2 frame_max(origin.x + width, origin.y + height);
  draw->AddRectFilled(origin, frame_max, kPlotBackground, 3.0f);
  double hi = 0.0;
  for (double v : values)
    if (std::isfinite(v)) hi = std::max(hi, v);
  const float font = ImGui::GetFontSize();
  const float top = origin.y + 4.0f, base = frame_max.y - font - 4.0f;
  const size_t n = values.size();
  const float slot = n ? (width - 8.0f) / static_cast<float>(n) : width;
  const ImVec2 m = ImGui::GetIO().MousePos;
  char buf[64];
  for (size_t i = 0; i < n; ++i) {
    const float x0 = origin.x + 4.0f + slot * i, x1 = x0 + slot * 0.82f;
    const bool has = std::isfinite(values[i]) && hi > 0.0;
    const float y = has ? base - static_cast<float>(values[i] / hi) * (base - top) : base;
    const bool over = hovered && m.x >= x0 && m.x < x0 + slot;
    if (has)
      draw->AddRectFilled(ImVec2(x0, y), ImVec2(x1, base), over ? IM_COL32(255, 255, 255, 220) : color, 2.0f);
    else
      draw->AddRect(ImVec2(x0, base - 6.0f), ImVec2(x1, base), IM_COL32(120, 120, 120, 160));
    if (i < labels.size()) {
      const ImVec2 ts = ImGui::CalcTextSize(labels[i].c_str());
      if (ts.x < slot * 1.1f || i % 2 == 0)
        draw->AddText(ImVec2(x0 + (slot * 0.82f - ts.x) / 2, base + 2.0f), kAxisText, labels[i].c_str());
    }
    if (over) {
      if (has) std::snprintf(buf, sizeof buf, value_format, values[i]);
      ImGui::SetTooltip("%s: %s", i < labels.size() ? labels[i].c_str() : "", has ? buf : "no data");
    }
  }
  ImGui::PopID();
}

}  // namespace difflab
