#include "ui/widgets.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace difflab {

void help_marker(const char* text) {
  ImGui::SameLine();
  ImGui::TextDisabled("(?)");
  if (ImGui::IsItemHovered()) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32.0f);
    ImGui::TextUnformatted(text);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

bool input_int64(const char* label, int64_t* value, int64_t step, int64_t min_value) {
  const int64_t fast = step * 10;
  const bool changed = ImGui::InputScalar(label, ImGuiDataType_S64, value, step > 0 ? &step : nullptr,
                                          step > 0 ? &fast : nullptr, "%" PRId64);
  if (*value < min_value) *value = min_value;
  return changed;
}

bool input_sci(const char* label, double* value, double min_value, double max_value) {
  const bool changed = ImGui::InputDouble(label, value, 0.0, 0.0, "%.3g");
  *value = std::clamp(*value, min_value, max_value);
  return changed;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0.0) || seconds > 1e8) return "-";
  const auto total = static_cast<int64_t>(seconds + 0.5);
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[64];
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%" PRId64 "h %02" PRId64 "m %02" PRId64 "s", h, m, s);
  else if (m > 0)
    std::snprintf(buf, sizeof buf, "%" PRId64 "m %02" PRId64 "s", m, s);
  else
    std::snprintf(buf, sizeof buf, "%" PRId64 "s", s);
  return buf;
}

std::string format_count(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

void error_text(const std::string& text) {
  if (text.empty()) return;
  ImGui::PushStyleColor(ImGuiCol_Text, kColorError);
  ImGui::TextWrapped("%s", text.c_str());
  ImGui::PopStyleColor();
}

void dim_text(const char* text) {
  ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
  ImGui::TextWrapped("%s", text);
  ImGui::PopStyleColor();
}

void track_item(UiState& ui, const char* name, bool enabled) {
  if (!ui.print_layout) return;
  enabled = enabled && ImGui::IsItemVisible();  // scrolled out of its window: not clickable
  const ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
  char line[160];
  std::snprintf(line, sizeof line, "layout %s %d %d %d %d enabled=%d", name, static_cast<int>(a.x),
                static_cast<int>(a.y), static_cast<int>(b.x - a.x), static_cast<int>(b.y - a.y),
                enabled ? 1 : 0);
  std::string& last = ui.layout[name];
  if (last != line) {
    last = line;
    std::printf("%s\n", line);
    std::fflush(stdout);
  }
}

void default_panel_rect(Panel panel, ImVec2 display, float menu_height, ImVec2* pos,
                        ImVec2* size) {
  // Three columns (26 % | 37 % | 37 %) tuned for 1280×800 and scaled to the display.
  const float w = std::max(display.x, 640.0f), top = menu_height;
  const float h = std::max(display.y - top, 400.0f);
  const float ca = std::floor(w * 0.26f), cb = std::floor(w * 0.37f), cc = w - ca - cb;
  const float x[] = {0.0f, ca, ca + cb};
  const float width[] = {ca, cb, cc};
  const PanelSlot& slot = panel_info(panel).slot;
  const int c = std::clamp(slot.column, 0, 2);
  *pos = ImVec2(x[c], top + std::floor(h * slot.top));
  *size = ImVec2(width[c], std::floor(h * slot.bottom) - std::floor(h * slot.top));
}

void place_panel(const UiState& ui, Panel panel) {
  ImVec2 pos, size;
  default_panel_rect(panel, ImGui::GetIO().DisplaySize, ImGui::GetFrameHeight(), &pos, &size);
  const ImGuiCond cond = ui.reset_layout ? ImGuiCond_Always : ImGuiCond_FirstUseEver;
  ImGui::SetNextWindowPos(pos, cond);
  ImGui::SetNextWindowSize(size, cond);
}

const char* job_outcome_name(JobOutcome outcome) {
  switch (outcome) {
    case JobOutcome::None:
      return "none";
    case JobOutcome::Running:
      return "running";
    case JobOutcome::Done:
      return "done";
    case JobOutcome::Failed:
      return "failed";
    case JobOutcome::Cancelled:
      return "cancelled";
    case JobOutcome::NeedsConfirmation:
      return "needs-confirmation";
    case JobOutcome::Count:
      break;
  }
  return "?";
}

void job_outcome(UiState& ui, const Snapshot& snap, JobKind kind, Panel panel, JobShow show) {
  const JobResult& job = snap.job(kind);
  if (job.outcome == JobOutcome::None || job.message.empty()) return;
  if (show == JobShow::Problems &&
      (job.outcome == JobOutcome::Done || job.outcome == JobOutcome::Running))
    return;
  // What the previous model's jobs said is not about this one (a load, a new dataset or
  // config, or a ControlNet are what changed it: those stay).
  const bool of_the_model = kind == JobKind::Train || kind == JobKind::Save ||
                            kind == JobKind::Sample || kind == JobKind::Evaluate ||
                            kind == JobKind::Export;
  if (of_the_model && job.serial <= ui.jobs_before_model) return;
  switch (job.outcome) {
    case JobOutcome::Failed:
      error_text(job.message);
      break;
    case JobOutcome::NeedsConfirmation:
      ImGui::PushStyleColor(ImGuiCol_Text, kColorWarning);
      ImGui::TextWrapped("%s", job.message.c_str());
      ImGui::PopStyleColor();
      break;
    default:
      dim_text(job.message.c_str());
      break;
  }
  // --print-layout: which panel shows which job's outcome ("layout Job.failed.dataset@Dataset …").
  if (ui.print_layout) {
    const std::string name = std::string("Job.") + job_outcome_name(job.outcome) + "." +
                             job_kind_name(kind) + "@" + panel_title(panel);
    track_item(ui, name.c_str(), true);
  }
}

void untrack_items(UiState& ui, const std::string& prefix) {
  for (auto it = ui.layout.lower_bound(prefix);
       it != ui.layout.end() && it->first.rfind(prefix, 0) == 0;)
    it = ui.layout.erase(it);
}

void print_event(const UiState& ui, const std::string& line) {
  if (!ui.print_layout) return;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

ImU32 schedule_color(int index) {
  constexpr ImU32 kColors[] = {IM_COL32(90, 170, 255, 255), IM_COL32(255, 150, 60, 255),
                               IM_COL32(110, 210, 120, 255), IM_COL32(210, 120, 230, 255)};
  return kColors[static_cast<size_t>(index) % 4];
}

}  // namespace difflab
