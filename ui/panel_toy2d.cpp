// 2-D toy view: for point data, the data cloud (optionally noised to t by the forward
// process) and the sampled particles drawn by the GPU as GL_POINTS from a VBO; as the
// scrubber moves, the particles move along their recorded reverse trajectories, with
// trails behind them and, optionally, the model's current guess x̂₀ for each.
#include <imgui.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "core/schedule/forward_process.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

const ImVec4 kDataColor(0.45f, 0.62f, 0.85f, 0.35f);
const ImVec4 kSampleColor(1.0f, 0.62f, 0.25f, 0.85f);
const ImVec4 kX0Color(0.35f, 0.95f, 0.85f, 0.7f);
const ImVec4 kTrailColor(1.0f, 0.62f, 0.25f, 0.18f);
const ImVec4 kAxisColor(1.0f, 1.0f, 1.0f, 0.12f);
// Seed of the fixed ε used to noise the data cloud.
constexpr uint64_t kCloudNoiseSeed = 11;

std::vector<float> points_of(const FloatImages& images) {
  return std::vector<float>(images.data.begin(), images.data.begin() + static_cast<size_t>(images.n) * 2);
}

std::vector<PointLayer> build_layers(const Snapshot& snap, const UiState& ui) {
  const ToyView& v = ui.toy;
  std::vector<PointLayer> layers;
  PointLayer axes;
  axes.lines = true;
  axes.color = kAxisColor;
  axes.xy = {-v.range, 0.0f, v.range, 0.0f, 0.0f, -v.range, 0.0f, v.range};
  layers.push_back(axes);

  if (v.show_data && !snap.data_preview.empty() && is_points(snap.data_preview)) {
    PointLayer data;
    data.color = kDataColor;
    data.size = v.point_size;
    data.xy = points_of(snap.data_preview);
    if (v.forward_t > 0) {
      const DiffusionConfig& d = snap.config.diffusion;
      const NoiseSchedule schedule = NoiseSchedule::named(d.schedule, d.timesteps);
      const int t = std::min(v.forward_t, schedule.size() - 1);
      data.xy = forward_noise(data.xy, standard_normal(data.xy.size(), kCloudNoiseSeed), schedule, t);
    }
    layers.push_back(std::move(data));
  }
  // A trajectory of images (an earlier model's) is never drawn as points.
  if (!snap.samples || snap.samples->x_t.empty() || !is_points(*snap.samples)) return layers;
  const TrajectoryFrames& run = *snap.samples;
  const int frames = static_cast<int>(run.x_t.size());
  const int frame = std::clamp(ui.sampling.frame, 0, frames);
  if (v.show_trails && frame > 0) {
    PointLayer trails;
    trails.lines = true;
    trails.color = kTrailColor;
    const int count = std::min(v.trail_count, run.x_t[0].n);
    for (int k = 1; k <= frame; ++k) {
      const FloatImages& a = run.x_t[k - 1];
      const FloatImages& b = k < frames ? run.x_t[k] : run.final_images;
      for (int i = 0; i < count && i < a.n && i < b.n; ++i)
        trails.xy.insert(trails.xy.end(), {a.data[i * 2], a.data[i * 2 + 1], b.data[i * 2], b.data[i * 2 + 1]});
    }
    layers.push_back(std::move(trails));
  }
  if (v.show_x0 && frame < frames && frame < static_cast<int>(run.x0.size())) {
    PointLayer x0;
    x0.color = kX0Color;
    x0.size = v.point_size;
    x0.xy = points_of(run.x0[frame]);
    layers.push_back(std::move(x0));
  }
  if (v.show_samples) {
    PointLayer samples;
    samples.color = kSampleColor;
    samples.size = v.point_size + 1.0f;
    samples.xy = points_of(frame < frames ? run.x_t[frame] : run.final_images);
    layers.push_back(std::move(samples));
  }
  return layers;
}

void legend_item(const ImVec4& color, const char* text) {
  ImGui::ColorButton(text, ImVec4(color.x, color.y, color.z, 1.0f),
                     ImGuiColorEditFlags_NoTooltip | ImGuiColorEditFlags_NoPicker,
                     ImVec2(ImGui::GetFontSize() * 0.7f, ImGui::GetFontSize() * 0.7f));
  ImGui::SameLine(0, 4);
  ImGui::TextUnformatted(text);
  ImGui::SameLine();
}

}  // namespace

void draw_point_view(const Snapshot& snap, UiContext& ctx, const char* name, float side_pixels) {
  const UiState& ui = ctx.ui;
  const ToyView& v = ui.toy;
  const int side = static_cast<int>(std::clamp(side_pixels, 96.0f, 1024.0f));
  uint64_t stamp = ctx.textures.content_stamp("toy.data", snap.version, snap.data_preview);
  stamp = mix_stamp(stamp, static_cast<uint64_t>(v.forward_t));
  stamp = mix_stamp(stamp, ui.sampling.run_serial * 4099u + static_cast<uint64_t>(ui.sampling.frame));
  stamp = mix_stamp(stamp, (v.show_data ? 1u : 0u) | (v.show_samples ? 2u : 0u) | (v.show_x0 ? 4u : 0u) |
                               (v.show_trails ? 8u : 0u));
  stamp = mix_stamp(stamp, static_cast<uint64_t>(v.point_size * 16.0f) * 7919u + static_cast<uint64_t>(v.trail_count));
  const RenderTarget& target = ctx.points.get(name, stamp, v.range, side, [&] { return build_layers(snap, ui); });
  ImGui::Image(target.texture().imgui_id(), ImVec2(static_cast<float>(side), static_cast<float>(side)),
               ImVec2(0, 1), ImVec2(1, 0));
}

void draw_toy2d_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  if (!snap.points) {
    dim_text("Load a 2-D toy set (Dataset panel, toy2d) to watch points diffuse.");
    return;
  }
  ToyView& v = ui.toy;
  ImGui::Checkbox("data", &v.show_data);
  ImGui::SameLine();
  ImGui::Checkbox("samples", &v.show_samples);
  ImGui::SameLine();
  ImGui::Checkbox("predicted x₀", &v.show_x0);
  ImGui::SameLine();
  ImGui::Checkbox("trails", &v.show_trails);
  ImGui::PushItemWidth(ImGui::GetFontSize() * 7.0f);
  ImGui::SliderInt("noise data to t", &v.forward_t, 0, std::max(snap.config.diffusion.timesteps - 1, 0));
  help_marker("Runs the forward process on the data cloud: at large t it becomes a Gaussian "
              "blob, which is where sampling starts.");
  ImGui::SameLine();
  ImGui::SliderFloat("view", &v.range, 0.5f, 6.0f, "±%.1f");
  ImGui::SliderFloat("point size", &v.point_size, 1.0f, 8.0f, "%.1f px");
  ImGui::SameLine();
  ImGui::SliderInt("trail count", &v.trail_count, 0, 2000);
  help_marker("How many particles draw the path they took from pure noise.");
  ImGui::PopItemWidth();

  const bool point_run = snap.samples && is_points(*snap.samples);
  const int frames = point_run ? static_cast<int>(snap.samples->x_t.size()) : 0;
  if (frames > 0) {
    int frame = ui.sampling.frame;
    char label[64];
    if (frame < frames)
      std::snprintf(label, sizeof label, "frame %d / %d  t = %d", frame, frames,
                    frame < static_cast<int>(snap.samples->timesteps.size()) ? snap.samples->timesteps[frame] : -1);
    else
      std::snprintf(label, sizeof label, "final");
    ImGui::SetNextItemWidth(-1);
    if (ImGui::SliderInt("##toy_timeline", &frame, 0, frames, label)) ctx.actions.set_frame(snap, frame);
  }

  const ImVec2 avail = ImGui::GetContentRegionAvail();
  draw_point_view(snap, ctx, "toy.view", std::min(avail.x, avail.y - ImGui::GetFontSize() * 1.6f));
  legend_item(kDataColor, "data");
  legend_item(kSampleColor, "samples");
  legend_item(kX0Color, "predicted x₀");
  ImGui::NewLine();
}

}  // namespace difflab
