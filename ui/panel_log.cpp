// Log panel: the worker's last lines (snapshot.log), filterable, following the end.
#include <imgui.h>

#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

void draw_log_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  ImGui::Checkbox("Follow", &ui.log.auto_scroll);
  ImGui::SameLine();
  if (ImGui::Button("Copy")) {
    std::string all;
    for (const auto& line : snap.log) all += line + "\n";
    ImGui::SetClipboardText(all.c_str());
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(-1);
  char filter[128] = {};
  ui.log.filter.copy(filter, sizeof filter - 1);
  if (ImGui::InputTextWithHint("##filter", "filter", filter, sizeof filter)) ui.log.filter = filter;

  ImGui::BeginChild("lines", ImVec2(0, 0), true, ImGuiWindowFlags_HorizontalScrollbar);
  if (ui.log.filter.empty()) {
    ImGuiListClipper clipper;
    clipper.Begin(static_cast<int>(snap.log.size()));
    while (clipper.Step())
      for (int i = clipper.DisplayStart; i < clipper.DisplayEnd; ++i)
        ImGui::TextUnformatted(snap.log[static_cast<size_t>(i)].c_str());
  } else {
    for (const auto& line : snap.log)
      if (line.find(ui.log.filter) != std::string::npos) ImGui::TextUnformatted(line.c_str());
  }
  if (ui.log.auto_scroll && ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 4.0f)
    ImGui::SetScrollHereY(1.0f);
  ImGui::EndChild();
}

}  // namespace difflab
