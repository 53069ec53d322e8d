// The View menu's choices (open panels, overlay, re-tiling) kept in imgui.ini next to
// ImGui's own window positions, as a "[Difflab][View]" section.
#pragma once

#include "ui/ui_state.h"

namespace difflab {

// Registers the ini handler; call after ImGui::CreateContext, before the first NewFrame.
void register_ui_settings(UiState& ui);
// Marks the ini file dirty when one of the persisted flags changed; call once per frame.
void track_ui_settings(UiState& ui);

}  // namespace difflab
