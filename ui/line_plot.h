// A small line plot on ImDrawList (ImPlot is not packaged in Debian): several series,
// linear or log y axis, "nice" ticks, a legend, and a hover read-out with a vertical
// cursor that lists every series' value at the nearest x. Also a bar chart.
#pragma once

#include <imgui.h>

#include <string>
#include <vector>

namespace difflab {

struct PlotSeries {
  std::string label;
  std::vector<double> x;    // ascending; empty = 0, 1, 2, ...
  std::vector<double> y;
  ImU32 color = IM_COL32_WHITE;
  float thickness = 1.5f;
  bool markers = false;     // small dots at each point (sparse series such as test loss)
  bool in_readout = true;   // listed in the hover read-out
};

struct PlotOptions {
  float height = 160.0f;    // width = available width
  bool log_y = false;
  const char* x_label = nullptr;
  const char* x_format = "%.0f";
  bool legend = true;
  bool y_from_zero = false; // include 0 in a linear y range
};

struct PlotHover {
  bool active = false;
  double x = 0.0;           // data x under the mouse
};

PlotHover line_plot(const char* id, const std::vector<PlotSeries>& series,
                    const PlotOptions& options);

// Vertical bars with one label under each; NaN values are drawn as "no data".
// The tooltip shows label and value.
void bar_chart(const char* id, const std::vector<double>& values,
               const std::vector<std::string>& labels, float height, ImU32 color,
               const char* value_format = "%.4f");

}  // namespace difflab
