// Forward process panel: pick a dataset image, drag t, and see
//   x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε      (Ho et al. 2020, eq. 4)
// as the clean image, the added noise and the result, with ᾱ_t and the SNR. Computed on
// the UI thread with the schedule of the Model panel (784 multiply-adds per redraw).
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/schedule/forward_process.h"
#include "ui/image_view.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

void draw_forward_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  const FloatImages& preview = snap.data_preview;
  if (snap.points || preview.empty()) {
    dim_text(snap.points ? "For 2-D points, drag 'noise to t' in the 2-D toy view."
                         : "Load a dataset to noise one of its images.");
    return;
  }
  ForwardView& v = ui.forward;
  const DiffusionConfig& d = ui.edit.diffusion;
  const NoiseSchedule schedule = NoiseSchedule::named(d.schedule, std::max(d.timesteps, 2));
  v.image_index = std::clamp(v.image_index, 0, preview.n - 1);
  v.t = std::clamp(v.t, 0, schedule.size() - 1);

  ImGui::PushItemWidth(ImGui::GetFontSize() * 9.0f);
  ImGui::SliderInt("t", &v.t, 0, schedule.size() - 1);
  help_marker("The diffusion step: how far along the forward (noising) process.");
  ImGui::SliderInt("Image", &v.image_index, 0, preview.n - 1);
  ImGui::SameLine();
  if (ImGui::Button("New ε")) ++v.noise_seed;
  ImGui::PopItemWidth();
  ImGui::Text("x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε");
  const std::string help =
      "The forward process in one jump (Ho et al. 2020, eq. 4): the clean image is scaled by "
      "√ᾱ_t and Gaussian noise ε scaled by √(1−ᾱ_t) is added. Schedule: " +
      std::string(to_string(d.schedule)) + ", T = " + std::to_string(schedule.size()) +
      " (from the Model panel).";
  help_marker(help.c_str());

  const size_t chw = static_cast<size_t>(preview.c) * preview.h * preview.w;
  const uint64_t data_stamp = mix_stamp(
      ctx.textures.content_stamp("forward.preview", snap.version, preview), static_cast<uint64_t>(v.image_index));
  const uint64_t noise_stamp = mix_stamp(v.noise_seed, chw);
  const uint64_t xt_stamp = mix_stamp(mix_stamp(data_stamp, noise_stamp),
                                      mix_stamp(static_cast<uint64_t>(v.t),
                                                static_cast<uint64_t>(d.schedule) * 100003u + schedule.size()));
  const float cell = (ImGui::GetContentRegionAvail().x - ImGui::GetStyle().ItemSpacing.x * 2) / 3.0f;
  auto show = [&](const char* title, const char* name, uint64_t stamp, Colormap map,
                  const TextureCache::MakePlane& make) {
    ImGui::BeginGroup();
    ImGui::TextDisabled("%s", title);
    const CachedImage& img = ctx.textures.get(name, stamp, map, 3.0f, make);
    v.zoom = fit_zoom(static_cast<float>(img.width()), cell, 0.5f, 6.0f);
    image_view(name, img, &v.zoom);
    ImGui::EndGroup();
  };
  show("x₀ (data)", "forward.x0", data_stamp, Colormap::Image,
       [&](GridLayout*) { return single_image(preview, v.image_index, false); });
  ImGui::SameLine();
  show("ε (noise)", "forward.eps", noise_stamp, Colormap::Diverging, [&](GridLayout*) {
    const std::vector<float> eps = standard_normal(chw, v.noise_seed);
    return plane_from_chw(eps.data(), preview.c, preview.h, preview.w, true);
  });
  ImGui::SameLine();
  show("x_t", "forward.xt", xt_stamp, Colormap::Image, [&](GridLayout*) {
    const float* src = preview.image(v.image_index);
    const std::vector<float> x0(src, src + chw);
    const std::vector<float> xt = forward_noise(x0, standard_normal(chw, v.noise_seed), schedule, v.t);
    return plane_from_chw(xt.data(), preview.c, preview.h, preview.w, false);
  });

  const double abar = schedule.alphas_cumprod()[v.t];
  if (ImGui::BeginTable("forward_numbers", 4, ImGuiTableFlags_SizingStretchProp)) {
    auto cell_text = [](const char* name, double value, const char* fmt) {
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%s", name);
      ImGui::TableNextColumn();
      ImGui::Text(fmt, value);
    };
    cell_text("ᾱ_t", abar, "%.4f");
    cell_text("β_t", schedule.betas()[v.t], "%.5f");
    cell_text("√ᾱ_t", std::sqrt(abar), "%.4f");
    cell_text("√(1−ᾱ_t)", std::sqrt(1.0 - abar), "%.4f");
    cell_text("SNR", schedule.snr()[v.t], "%.4g");
    cell_text("log SNR", schedule.log_snr()[v.t], "%.3f");
    ImGui::EndTable();
  }
}

}  // namespace difflab
