// Forward process panel: pick a dataset image, drag t, and see the Model panel's
// objective's forward process
//   ddpm:          x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε      (Ho et al. 2020, eq. 4)
//   flow matching: x_t = (1 − t) x₀ + t ε             (Lipman et al. 2022)
//   edm:           x = x₀ + σ ε, shown / √(1 + σ²)    (Karras et al. 2022)
// as the clean image, the added noise and the result, with the coefficients and the SNR.
// Computed on the UI thread (784 multiply-adds per redraw).
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
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
  const int positions = schedule.size();
  v.image_index = std::clamp(v.image_index, 0, preview.n - 1);
  v.t = std::clamp(v.t, 0, positions - 1);
  const Objective objective = d.objective;
  const bool edm_range = d.edm_sigma_min > 0.0 && d.edm_sigma_max > d.edm_sigma_min;
  const ForwardPoint point =
      objective == Objective::FlowMatching ? flow_forward_point(v.t, positions)
      : objective == Objective::Edm && edm_range
          ? edm_forward_point(v.t, positions, d.edm_sigma_min, d.edm_sigma_max)
          : ddpm_forward_point(schedule, v.t);

  ImGui::PushItemWidth(ImGui::GetFontSize() * 9.0f);
  char shown[48];
  if (objective == Objective::FlowMatching)
    std::snprintf(shown, sizeof shown, "t = %.3f", point.level);
  else if (objective == Objective::Edm)
    std::snprintf(shown, sizeof shown, "σ = %.3g", point.level);
  else
    std::snprintf(shown, sizeof shown, "%d", v.t);
  ImGui::SliderInt("t", &v.t, 0, positions - 1, shown);
  help_marker(objective == Objective::FlowMatching
                  ? "How far along the path from the image (t = 0) to pure noise (t = 1)."
              : objective == Objective::Edm
                  ? "The noise level σ, from diffusion.edm_sigma_min to edm_sigma_max, evenly "
                    "in log σ."
                  : "The diffusion step: how far along the forward (noising) process.");
  ImGui::SliderInt("Image", &v.image_index, 0, preview.n - 1);
  ImGui::SameLine();
  if (ImGui::Button("New ε")) ++v.noise_seed;
  ImGui::PopItemWidth();
  std::string help;
  if (objective == Objective::FlowMatching) {
    ImGui::Text("x_t = (1 − t) x₀ + t ε");
    help = "Flow matching (Lipman et al. 2022; rectified flow, Liu et al. 2022): a straight "
           "line from the image to the noise. The network learns the velocity v = ε − x₀ "
           "along it. Training draws t from diffusion.flow_t_sampling (Model panel); the "
           "network sees T·t with T = " + std::to_string(positions) + ".";
  } else if (objective == Objective::Edm) {
    ImGui::Text("x = x₀ + σ ε   (shown / √(1 + σ²))");
    help = "EDM (Karras et al. 2022): the image plus noise of standard deviation σ; shown "
           "divided by √(1 + σ²), the variance-preserving scale, so it stays in range. "
           "Training draws ln σ from N(edm_p_mean, edm_p_std²) (Model panel).";
  } else {
    ImGui::Text("x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε");
    help = "The forward process in one jump (Ho et al. 2020, eq. 4): the clean image is "
           "scaled by √ᾱ_t and Gaussian noise ε scaled by √(1−ᾱ_t) is added. Schedule: " +
           std::string(to_string(d.schedule)) + ", T = " + std::to_string(positions) +
           " (from the Model panel).";
  }
  help_marker(help.c_str());

  const size_t chw = static_cast<size_t>(preview.c) * preview.h * preview.w;
  const uint64_t data_stamp = mix_stamp(
      ctx.textures.content_stamp("forward.preview", snap.version, preview), static_cast<uint64_t>(v.image_index));
  const uint64_t noise_stamp = mix_stamp(v.noise_seed, chw);
  uint64_t coefficients = 0;  // the point's a and b: any change of objective, schedule or t
  std::memcpy(&coefficients, &point.a, sizeof coefficients);
  uint64_t b_bits = 0;
  std::memcpy(&b_bits, &point.b, sizeof b_bits);
  const uint64_t xt_stamp =
      mix_stamp(mix_stamp(data_stamp, noise_stamp), mix_stamp(coefficients, b_bits));
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
    const std::vector<float> xt = forward_mix(x0, standard_normal(chw, v.noise_seed), point);
    return plane_from_chw(xt.data(), preview.c, preview.h, preview.w, false);
  });

  if (ImGui::BeginTable("forward_numbers", 4, ImGuiTableFlags_SizingStretchProp)) {
    auto cell_text = [](const char* name, double value, const char* fmt) {
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%s", name);
      ImGui::TableNextColumn();
      ImGui::Text(fmt, value);
    };
    const double snr = point.snr();
    if (objective == Objective::FlowMatching) {
      cell_text("t", point.level, "%.4f");
      cell_text("1 − t", point.a, "%.4f");
    } else if (objective == Objective::Edm) {
      cell_text("σ", point.level, "%.4g");
      cell_text("1/√(1+σ²)", point.a, "%.4f");
    } else {
      const double abar = schedule.alphas_cumprod()[v.t];
      cell_text("ᾱ_t", abar, "%.4f");
      cell_text("β_t", schedule.betas()[v.t], "%.5f");
      cell_text("√ᾱ_t", point.a, "%.4f");
      cell_text("√(1−ᾱ_t)", point.b, "%.4f");
    }
    cell_text("SNR", snr, "%.4g");
    cell_text("log SNR", std::log(snr), "%.3f");
    ImGui::EndTable();
  }
}

}  // namespace difflab
