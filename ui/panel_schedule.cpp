// Schedule panel: β_t, α_t, ᾱ_t or log-SNR of the four named schedules overlaid, for any
// T and respacing K (computed here with NoiseSchedule, no worker involved); below, one
// dataset image noised at 8 evenly spaced steps by each schedule with the same ε.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/schedule/forward_process.h"
#include "ui/image_view.h"
#include "ui/line_plot.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

// Columns of the noised strip.
constexpr int kStripSteps = 8;
constexpr size_t kScheduleCount = static_cast<size_t>(ScheduleKind::Count);
constexpr const char* kCurveNames[] = {"β_t", "α_t", "ᾱ_t", "log SNR"};
constexpr const char* kCurveHelp[] = {
    "β_t: variance of the noise added at step t: q(x_t | x_t−1) = N(√(1−β_t) x_t−1, β_t I).",
    "α_t = 1 − β_t: how much of x_t−1 survives one step.",
    "ᾱ_t = ∏ α_s: how much of the clean image x₀ survives in x_t, since "
    "x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε.",
    "log SNR = log(ᾱ_t / (1 − ᾱ_t)): the signal-to-noise ratio in nats; 0 means as much "
    "signal as noise."};

const std::vector<double>& curve_table(const NoiseSchedule& s, ScheduleCurve curve) {
  switch (curve) {
    case ScheduleCurve::Beta: return s.betas();
    case ScheduleCurve::Alpha: return s.alphas();
    case ScheduleCurve::AlphaBar: return s.alphas_cumprod();
    default: return s.log_snr();
  }
}

// Row indices (into a schedule of `rows` rows) of the strip's columns.
std::vector<int> strip_rows(int rows) {
  std::vector<int> out;
  for (int i = 0; i < kStripSteps; ++i)
    out.push_back(static_cast<int>(std::lround(static_cast<double>(i) * (rows - 1) / (kStripSteps - 1))));
  return out;
}

void draw_strip(const Snapshot& snap, UiContext& ctx, const std::vector<NoiseSchedule>& schedules) {
  UiState& ui = ctx.ui;
  const FloatImages& preview = snap.data_preview;
  if (snap.points || preview.empty()) {
    dim_text(snap.points ? "The noised strip needs image data; the 2-D toy view shows noised points."
                         : "Load a dataset to see an image noised by each schedule.");
    return;
  }
  ScheduleView& view = ui.schedule;
  view.image_index = std::clamp(view.image_index, 0, preview.n - 1);
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 8.0f);
  ImGui::SliderInt("Image", &view.image_index, 0, preview.n - 1);
  help_marker("Which preview image is noised (click one in the Dataset panel too).");
  ImGui::SameLine();
  if (ImGui::Button("New noise")) ++view.noise_seed;
  help_marker("Draw a different fixed ε. Every schedule uses the same ε, so the rows "
              "differ only in how fast ᾱ_t falls.");

  const std::vector<int> rows = strip_rows(schedules.front().size());
  std::string header = "t =";
  for (int r : rows) header += " " + std::to_string(schedules.front().model_timestep(r));
  ImGui::TextDisabled("%s", header.c_str());

  const size_t chw = static_cast<size_t>(preview.c) * preview.h * preview.w;
  uint64_t stamp = ctx.textures.content_stamp("schedule.preview", snap.version, preview);
  stamp = mix_stamp(stamp, static_cast<uint64_t>(view.image_index));
  stamp = mix_stamp(stamp, static_cast<uint64_t>(view.timesteps) * 100003u + view.respace);
  stamp = mix_stamp(stamp, view.noise_seed);
  const CachedImage& strip = ctx.textures.get(
      "schedule.strip", stamp, Colormap::Image, 1.0f, [&](GridLayout* layout) {
        const float* src = preview.image(view.image_index);
        const std::vector<float> x0(src, src + chw);
        const std::vector<float> eps = standard_normal(chw, view.noise_seed);
        FloatImages all;
        all.n = static_cast<int>(schedules.size()) * kStripSteps;
        all.c = preview.c;
        all.h = preview.h;
        all.w = preview.w;
        all.data.reserve(chw * all.n);
        for (const auto& s : schedules)
          for (int r : rows) {
            const std::vector<float> xt = forward_noise(x0, eps, s, r);
            all.data.insert(all.data.end(), xt.begin(), xt.end());
          }
        FloatPlane plane;
        *layout = compose_grid(all, 0, all.n, kStripSteps, 2, false, &plane);
        return plane;
      });
  std::vector<std::string> labels(static_cast<size_t>(strip.layout.count));
  for (size_t i = 0; i < kScheduleCount; ++i)
    if (i * kStripSteps < labels.size())
      labels[i * kStripSteps] = std::string(to_string(static_cast<ScheduleKind>(i)));
  float zoom = fit_zoom(static_cast<float>(strip.width()), ImGui::GetContentRegionAvail().x, 0.5f, 4.0f);
  ImageViewOptions options;
  options.labels = &labels;
  image_view("strip", strip, &zoom, options);
}

}  // namespace

void draw_schedule_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  ScheduleView& view = ui.schedule;
  if (!view.initialised) {
    view.timesteps = ui.edit.diffusion.timesteps;
    view.respace = view.timesteps;
    view.initialised = true;
  }
  if (snap.config.diffusion.objective != Objective::Ddpm)
    dim_text(snap.config.diffusion.objective == Objective::FlowMatching
                 ? "DDPM's schedules, for comparison: this model trains flow matching, "
                   "x_t = (1 − t) x₀ + t ε (Forward process panel)."
                 : "DDPM's schedules, for comparison: this model trains EDM, x₀ + σ ε "
                   "(Forward process panel).");
  for (int i = 0; i < static_cast<int>(ScheduleCurve::Count); ++i) {
    if (i > 0) ImGui::SameLine();
    if (ImGui::RadioButton(kCurveNames[i], view.curve == static_cast<ScheduleCurve>(i)))
      view.curve = static_cast<ScheduleCurve>(i);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", kCurveHelp[i]);
  }
  ImGui::SameLine();
  ImGui::BeginDisabled(view.curve == ScheduleCurve::LogSnr);
  ImGui::Checkbox("log y", &view.log_y);
  ImGui::EndDisabled();

  ImGui::PushItemWidth(ImGui::GetFontSize() * 9.0f);
  if (ImGui::SliderInt("T", &view.timesteps, 10, 2000)) view.respace = std::min(view.respace, view.timesteps);
  help_marker("Number of diffusion steps. The linear schedule scales its β by 1000/T so "
              "that every T reaches about the same final noise level.");
  ImGui::SameLine();
  view.respace = std::clamp(view.respace, 2, view.timesteps);
  ImGui::SliderInt("respaced K", &view.respace, 2, view.timesteps);
  help_marker("Keep K of the T steps, evenly spaced (Nichol & Dhariwal 2021): the curve is "
              "sampled at the kept steps, with ᾱ unchanged there. This is what a "
              "50-step DDIM sampler walks through.");
  ImGui::PopItemWidth();
  if (ImGui::SmallButton("use training T")) {
    view.timesteps = ui.edit.diffusion.timesteps;
    view.respace = view.timesteps;
  }

  std::vector<NoiseSchedule> schedules;
  std::vector<PlotSeries> series;
  for (size_t i = 0; i < kScheduleCount; ++i) {
    const auto kind = static_cast<ScheduleKind>(i);
    NoiseSchedule s = NoiseSchedule::named(kind, view.timesteps);
    if (view.respace < view.timesteps) s = s.respaced(view.respace);
    PlotSeries line;
    line.label = std::string(to_string(kind));
    // The schedule trains only DDPM models; flow matching and EDM draw their own t or σ.
    const bool trains = kind == snap.config.diffusion.schedule &&
                        snap.config.diffusion.objective == Objective::Ddpm;
    if (trains) line.label += " (training)";
    line.color = schedule_color(static_cast<int>(i));
    line.thickness = trains ? 2.5f : 1.5f;
    line.y = curve_table(s, view.curve);
    for (int r = 0; r < s.size(); ++r) line.x.push_back(s.model_timestep(r));
    line.markers = s.size() <= 60;
    series.push_back(std::move(line));
    schedules.push_back(std::move(s));
  }
  PlotOptions options;
  options.height = std::max(ImGui::GetFontSize() * 8.0f, ImGui::GetContentRegionAvail().y * 0.36f);
  options.log_y = view.log_y && view.curve != ScheduleCurve::LogSnr;
  options.x_label = "t";
  line_plot("curves", series, options);

  draw_strip(snap, ctx, schedules);
}

}  // namespace difflab
