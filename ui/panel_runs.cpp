// Runs panel: the run folders under the runs root side by side, as TensorBoard compares
// runs. Each folder's metrics.csv gives its loss and test loss by step and its training
// time (train_s), so the chosen runs overlay against steps or against training minutes.
// Read from disk on the GUI thread: a few small CSV files, on demand and every few seconds
// while a run trains (so the current run's curve grows here too).
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/train/run_folder.h"
#include "ui/line_plot.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {
namespace {

namespace fs = std::filesystem;

constexpr double kRescanWhileTrainingS = 5.0;
constexpr size_t kChosenOnFirstScan = 4;  // the newest runs are overlaid at first

ImU32 run_color(size_t i) {
  constexpr ImU32 kColors[] = {IM_COL32(90, 170, 255, 255),  IM_COL32(255, 150, 60, 255),
                               IM_COL32(110, 210, 120, 255), IM_COL32(210, 120, 230, 255),
                               IM_COL32(240, 220, 90, 255),  IM_COL32(90, 220, 220, 255),
                               IM_COL32(240, 110, 140, 255), IM_COL32(170, 170, 170, 255)};
  return kColors[i % std::size(kColors)];
}

int64_t modified_time(const fs::path& dir) {
  std::error_code ec;
  for (const char* name : {"metrics.csv", "config.yaml", "checkpoints"}) {
    const auto t = fs::last_write_time(dir / name, ec);
    if (!ec) return static_cast<int64_t>(t.time_since_epoch().count());
  }
  return 0;
}

void scan(UiState& ui, const std::string& current) {
  RunsView& v = ui.runs;
  std::set<std::string> chosen, known;
  for (const auto& r : v.runs) {
    known.insert(r.dir);
    if (r.chosen) chosen.insert(r.dir);
  }
  std::vector<RunsView::Entry> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(v.root, ec)) {
    std::error_code dir_ec;
    if (!e.is_directory(dir_ec)) continue;
    const std::string dir = e.path().string();
    if (!holds_run(dir)) continue;
    RunsView::Entry r;
    r.dir = dir;
    r.name = e.path().filename().string();
    r.history = read_run_history(dir);
    r.evals = read_run_evaluations(dir);
    r.modified = modified_time(e.path());
    found.push_back(std::move(r));
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.modified > b.modified; });
  for (size_t i = 0; i < found.size(); ++i) {
    auto& r = found[i];
    const bool is_current = !current.empty() && fs::equivalent(r.dir, current, ec);
    r.current = is_current;
    if (known.count(r.dir))
      r.chosen = chosen.count(r.dir) > 0;
    else  // new here: the current run, and on the first scan the newest few
      r.chosen = is_current || (!v.scanned && i < kChosenOnFirstScan);
  }
  v.runs = std::move(found);
  v.scanned = true;
  v.scanned_at = ImGui::GetTime();
  v.scanned_current = current;
  print_event(ui, "runs " + std::to_string(v.runs.size()) + " folders in " + v.root);
}

// The training time at `step`: train_s of the last row at or before it (rows are by step);
// NaN before the first (rows an older version logged without it).
double minutes_at(const std::vector<std::pair<int64_t, double>>& train_s, int64_t step) {
  auto it = std::upper_bound(train_s.begin(), train_s.end(), step,
                             [](int64_t s, const auto& row) { return s < row.first; });
  if (it == train_s.begin()) return std::nan("");
  return std::prev(it)->second / 60.0;
}

std::string last_value(const std::vector<std::pair<int64_t, double>>& series, const char* format) {
  if (series.empty()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, series.back().second);
  return buf;
}

}  // namespace

void draw_runs_panel(const Snapshot& snap, UiContext& ctx) {
  RunsView& v = ctx.ui.runs;
  const bool training = snap.status == JobStatus::Training;
  if (!v.scanned || v.scanned_current != snap.run.dir ||
      (training && ImGui::GetTime() - v.scanned_at > kRescanWhileTrainingS))
    scan(ctx.ui, snap.run.dir);

  char root[512] = {};
  v.root.copy(root, sizeof root - 1);
  ImGui::SetNextItemWidth(std::max(120.0f, ImGui::GetContentRegionAvail().x * 0.5f));
  if (ImGui::InputText("Folder", root, sizeof root, ImGuiInputTextFlags_EnterReturnsTrue)) {
    v.root = root;
    v.runs.clear();
    v.scanned = false;
  }
  track_item(ctx.ui, "runs.folder", true);
  help_marker("The folder whose run folders are listed: where this app puts its runs (--runs), "
              "or any other. A run folder holds config.yaml, metrics.csv and checkpoints/, "
              "whether the GUI or difflab-cli train wrote it.");
  ImGui::SameLine();
  if (ImGui::Button("Refresh")) scan(ctx.ui, snap.run.dir);
  track_item(ctx.ui, "runs.refresh", true);
  ImGui::Checkbox("by training minutes", &v.by_minutes);
  track_item(ctx.ui, "runs.minutes", true);
  help_marker("x axis: training steps, or minutes of training (train_s in metrics.csv: "
              "previews and checkpoints not counted). Runs from before train_s was logged "
              "have no minutes and are left out of that view.");
  ImGui::SameLine();
  ImGui::Checkbox("test loss", &v.show_test);
  ImGui::SameLine();
  ImGui::Checkbox("log y", &v.log_y);
  help_marker("Lines: the training loss each run logged; dots: its test loss. Losses of "
              "different objectives measure different targets (ε, x₀, v, velocity, EDM's "
              "F): compare runs of one objective by loss, and any runs by their evaluations "
              "below (Evaluate in the Sampling panel, or difflab-cli eval of a checkpoint).");

  if (v.runs.empty()) {
    dim_text(("No run folders in '" + v.root + "' yet. Train a model (Training panel) or "
              "point Folder at a folder of runs.").c_str());
    return;
  }

  // The table: one row a run, its checkbox choosing it for the plot.
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerH |
                                ImGuiTableFlags_SizingFixedFit | ImGuiTableFlags_ScrollY;
  const float rows_height =
      std::min(ImGui::GetFrameHeightWithSpacing() * (static_cast<float>(v.runs.size()) + 1.2f),
               ImGui::GetContentRegionAvail().y * 0.4f);
  float name_width = ImGui::CalcTextSize("run").x;
  for (const auto& r : v.runs)
    name_width = std::max(name_width, ImGui::CalcTextSize((r.name + " (current)").c_str()).x);
  if (ImGui::BeginTable("runs", 7, flags, ImVec2(0, rows_height))) {
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("");
    ImGui::TableSetupColumn("run", ImGuiTableColumnFlags_WidthFixed,
                            std::min(name_width, ImGui::GetContentRegionAvail().x * 0.45f));
    ImGui::TableSetupColumn("steps");
    ImGui::TableSetupColumn("minutes");
    ImGui::TableSetupColumn("loss");
    ImGui::TableSetupColumn("test loss");
    ImGui::TableSetupColumn("last evaluation", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableHeadersRow();
    for (size_t i = 0; i < v.runs.size(); ++i) {
      auto& r = v.runs[i];
      const auto& h = r.history;
      ImGui::PushID(static_cast<int>(i));
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::PushStyleColor(ImGuiCol_CheckMark, run_color(i));
      ImGui::Checkbox("##chosen", &r.chosen);
      ImGui::PopStyleColor();
      ImGui::TableNextColumn();
      if (r.current)
        ImGui::TextColored(ImColor(run_color(i)), "%s (current)", r.name.c_str());
      else
        ImGui::TextColored(ImColor(run_color(i)), "%s", r.name.c_str());
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", r.dir.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(h.loss.empty() ? "-" : format_count(h.loss.back().first).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(h.train_s.empty() ? "-"
                                               : format_duration(h.train_s.back().second).c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(last_value(h.loss, "%.4f").c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(last_value(h.test_loss, "%.4f").c_str());
      ImGui::TableNextColumn();
      if (r.evals.empty()) {
        ImGui::TextDisabled("-");
      } else {
        const auto& e = r.evals.back();
        if (std::isnan(e.accuracy))
          ImGui::Text("FD %.1f", e.fd);
        else
          ImGui::Text("%.1f %%, FD %.1f", 100.0 * e.accuracy, e.fd);
        if (ImGui::IsItemHovered())
          ImGui::SetTooltip("step %lld: N %lld, %s %d steps, guidance %.2g; FD floor %.1f",
                            static_cast<long long>(e.step), static_cast<long long>(e.n),
                            e.sampler.c_str(), e.steps, e.guidance, e.fd_floor);
      }
      ImGui::PopID();
    }
    ImGui::EndTable();
  }

  // The plot: each chosen run's loss (line) and test loss (dots), in its row's colour.
  std::vector<PlotSeries> series;
  int without_minutes = 0;
  for (size_t i = 0; i < v.runs.size(); ++i) {
    const auto& r = v.runs[i];
    if (!r.chosen) continue;
    const auto& h = r.history;
    if (v.by_minutes && h.train_s.empty()) {
      ++without_minutes;
      continue;
    }
    auto to_series = [&](const std::vector<std::pair<int64_t, double>>& points,
                         const std::string& label, bool markers) {
      PlotSeries s;
      s.label = label;
      s.color = run_color(i);
      s.markers = markers;
      s.thickness = markers ? 1.0f : 1.5f;
      for (const auto& [step, value] : points) {
        if (v.log_y && !(value > 0)) continue;
        const double x = v.by_minutes ? minutes_at(h.train_s, step) : static_cast<double>(step);
        if (std::isnan(x)) continue;
        s.x.push_back(x);
        s.y.push_back(value);
      }
      if (!s.x.empty()) series.push_back(std::move(s));
    };
    to_series(h.loss, r.name, false);
    if (v.show_test) to_series(h.test_loss, r.name + " test", true);
  }
  // What is plotted, for the GUI tests (printed when it changes).
  size_t plotted_runs = 0;
  for (const auto& s : series) plotted_runs += s.markers ? 0 : 1;
  size_t evaluations = 0;
  for (const auto& r : v.runs) evaluations += r.chosen ? r.evals.size() : 0;
  const std::string event = "runs plot " + std::to_string(plotted_runs) + " runs by " +
                            (v.by_minutes ? "minutes" : "steps") + ", " +
                            std::to_string(without_minutes) + " without minutes, " +
                            std::to_string(evaluations) + " evaluations";
  if (event != v.last_event) {
    v.last_event = event;
    print_event(ctx.ui, event);
  }
  if (series.empty()) {
    dim_text(without_minutes > 0 ? "The chosen runs recorded no training minutes (they are "
                                   "older than train_s): plot them by steps."
                                 : "Tick runs in the table to plot their losses.");
    return;
  }
  // Evaluations (accuracy and FD of samples, by step), when any chosen run has them.
  std::vector<PlotSeries> accuracy, fd;
  for (size_t i = 0; i < v.runs.size(); ++i) {
    const auto& r = v.runs[i];
    if (!r.chosen || r.evals.empty()) continue;
    PlotSeries a, f;
    a.label = f.label = r.name;
    a.color = f.color = run_color(i);
    a.markers = f.markers = true;
    auto evals = r.evals;  // by step (a checkpoint may be scored after later ones)
    std::stable_sort(evals.begin(), evals.end(),
                     [](const auto& x, const auto& y) { return x.step < y.step; });
    for (const auto& e : evals) {
      const double x = v.by_minutes ? minutes_at(r.history.train_s, e.step) : static_cast<double>(e.step);
      if (std::isnan(x)) continue;
      if (!std::isnan(e.accuracy)) {
        a.x.push_back(x);
        a.y.push_back(100.0 * e.accuracy);
      }
      f.x.push_back(x);
      f.y.push_back(e.fd);
    }
    if (!a.x.empty()) accuracy.push_back(std::move(a));
    if (!f.x.empty()) fd.push_back(std::move(f));
  }
  const bool evals_shown = !accuracy.empty() || !fd.empty();
  const float avail = ImGui::GetContentRegionAvail().y - 24.0f;
  PlotOptions options;
  options.height = std::max(140.0f, evals_shown ? avail * 0.55f : avail);
  options.log_y = v.log_y;
  options.x_label = v.by_minutes ? "training minutes" : "step";
  options.x_format = v.by_minutes ? "%.1f" : "%.0f";
  line_plot("##runs_plot", series, options);
  if (evals_shown) {
    PlotOptions eo = options;
    eo.log_y = false;
    eo.legend = false;
    eo.height = std::max(100.0f, avail * 0.45f - ImGui::GetTextLineHeightWithSpacing() * 2.0f);
    const float half = (ImGui::GetContentRegionAvail().x - ImGui::GetStyle().ItemSpacing.x) * 0.5f;
    ImGui::BeginGroup();
    ImGui::TextDisabled("evaluator accuracy (%%)");
    ImGui::BeginChild("##acc", ImVec2(half, eo.height + ImGui::GetTextLineHeightWithSpacing()));
    if (accuracy.empty()) dim_text("(unconditional: no accuracy)");
    else line_plot("##runs_accuracy", accuracy, eo);
    ImGui::EndChild();
    ImGui::EndGroup();
    ImGui::SameLine();
    ImGui::BeginGroup();
    ImGui::TextDisabled("Frechet distance (lower is better)");
    ImGui::BeginChild("##fd", ImVec2(0, eo.height + ImGui::GetTextLineHeightWithSpacing()));
    if (!fd.empty()) line_plot("##runs_fd", fd, eo);
    ImGui::EndChild();
    ImGui::EndGroup();
  }
  if (without_minutes > 0)
    dim_text((std::to_string(without_minutes) + " chosen run(s) have no training minutes "
                                                 "(older than train_s): by steps only.")
                 .c_str());
}

}  // namespace difflab
