// 2-D toy view: for point data, the data cloud (optionally noised to t by the forward
// process) and the sampled particles drawn by the GPU as GL_POINTS from a VBO; as the
// scrubber moves, the particles move along their recorded reverse trajectories, with
// trails behind them and, optionally, the model's current guess x̂₀ for each; under them,
// the model's field at that step on a grid (the score for ddpm and edm, −v̂ for flow
// matching) as arrows, so curved and straight paths can be told apart.
#include <imgui.h>

#include <algorithm>
#include <cmath>
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
const ImVec4 kFieldColor(0.75f, 0.95f, 0.55f, 0.55f);
const ImVec4 kDensityColor(0.85f, 0.35f, 0.55f, 0.45f);
// Seed of the fixed ε used to noise the data cloud.
constexpr uint64_t kCloudNoiseSeed = 11;

std::vector<float> points_of(const FloatImages& images) {
  return std::vector<float>(images.data.begin(), images.data.begin() + static_cast<size_t>(images.n) * 2);
}

// Arrows of the field `f` at the grid points `grid` (both n × 2): each as long as a fraction
// of the grid spacing, scaled by the frame's 90th-percentile length (arrows past it are cut
// to it), so the picture shows directions at every t and relative strength within one.
PointLayer field_arrows(const FloatImages& grid, const FloatImages& f, float range) {
  PointLayer arrows;
  arrows.lines = true;
  arrows.color = kFieldColor;
  const int n = std::min(grid.n, f.n);
  if (n < 2) return arrows;
  std::vector<float> length(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) length[i] = std::hypot(f.data[i * 2], f.data[i * 2 + 1]);
  std::vector<float> sorted = length;
  std::nth_element(sorted.begin(), sorted.begin() + n * 9 / 10, sorted.end());
  const float scale = sorted[static_cast<size_t>(n * 9 / 10)];
  if (!(scale > 0.0f) || !std::isfinite(scale)) return arrows;
  // Spacing of the grid (a square of side √n), in data units.
  const int side = std::max(2, static_cast<int>(std::lround(std::sqrt(static_cast<double>(n)))));
  const float spacing = std::abs(grid.data[2] - grid.data[0]) > 0.0f
                            ? std::abs(grid.data[2] - grid.data[0])
                            : 2.0f * range / static_cast<float>(side - 1);
  for (int i = 0; i < n; ++i) {
    const float x = grid.data[i * 2], y = grid.data[i * 2 + 1];
    if (std::abs(x) > range || std::abs(y) > range || !(length[i] > 0.0f)) continue;
    const float k = 0.85f * spacing * std::min(length[i] / scale, 1.0f) / length[i];
    const float dx = f.data[i * 2] * k, dy = f.data[i * 2 + 1] * k;
    const float tx = x + dx, ty = y + dy;
    // Shaft, then a head of two strokes at ±28° back from the tip.
    arrows.xy.insert(arrows.xy.end(), {x, y, tx, ty});
    const float c = std::cos(0.49f), s = std::sin(0.49f), h = 0.35f;
    arrows.xy.insert(arrows.xy.end(), {tx, ty, tx - h * (dx * c - dy * s), ty - h * (dx * s + dy * c)});
    arrows.xy.insert(arrows.xy.end(), {tx, ty, tx - h * (dx * c + dy * s), ty - h * (-dx * s + dy * c)});
  }
  return arrows;
}

// A density estimate of the particles `p` (n × 2) over the view: counts in kDensityBins²
// cells smoothed by a 3×3 binomial kernel, drawn as overlapping discs in kDensityLevels
// layers of rising opacity (the renderer draws points and lines only).
constexpr int kDensityBins = 40;
constexpr int kDensityLevels = 6;
void add_density(std::vector<PointLayer>& layers, const FloatImages& p, float range, int side) {
  if (p.n < 2 || range <= 0.0f) return;
  const int b = kDensityBins;
  std::vector<float> count(static_cast<size_t>(b * b), 0.0f);
  const float cell = 2.0f * range / static_cast<float>(b);
  for (int i = 0; i < p.n; ++i) {
    const int cx = static_cast<int>(std::floor((p.data[i * 2] + range) / cell));
    const int cy = static_cast<int>(std::floor((p.data[i * 2 + 1] + range) / cell));
    if (cx >= 0 && cx < b && cy >= 0 && cy < b) count[static_cast<size_t>(cy * b + cx)] += 1.0f;
  }
  std::vector<float> smooth(count.size(), 0.0f);
  float peak = 0.0f;
  for (int y = 0; y < b; ++y)
    for (int x = 0; x < b; ++x) {
      float sum = 0.0f;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx, yy = y + dy;
          if (xx < 0 || xx >= b || yy < 0 || yy >= b) continue;
          sum += count[static_cast<size_t>(yy * b + xx)] * (dx ? 1.0f : 2.0f) * (dy ? 1.0f : 2.0f);
        }
      smooth[static_cast<size_t>(y * b + x)] = sum;
      peak = std::max(peak, sum);
    }
  if (!(peak > 0.0f)) return;
  const float disc = 1.5f * static_cast<float>(side) / static_cast<float>(b);
  for (int level = 1; level <= kDensityLevels; ++level) {
    PointLayer layer;
    layer.color = ImVec4(kDensityColor.x, kDensityColor.y, kDensityColor.z,
                         kDensityColor.w * static_cast<float>(level) / kDensityLevels);
    layer.size = disc;
    for (int y = 0; y < b; ++y)
      for (int x = 0; x < b; ++x) {
        const float v = smooth[static_cast<size_t>(y * b + x)] / peak;
        // Square root: the thin tails stay visible next to a dense mode.
        const int l = static_cast<int>(std::ceil(std::sqrt(v) * kDensityLevels - 1e-6f));
        if (l != level) continue;
        layer.xy.push_back(-range + (static_cast<float>(x) + 0.5f) * cell);
        layer.xy.push_back(-range + (static_cast<float>(y) + 0.5f) * cell);
      }
    if (!layer.xy.empty()) layers.push_back(std::move(layer));
  }
}

std::vector<PointLayer> build_layers(const Snapshot& snap, const UiState& ui, int side) {
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
  if (v.show_density) add_density(layers, frame < frames ? run.x_t[frame] : run.final_images, v.range, side);
  if (v.show_field && frame < frames && frame < static_cast<int>(run.field.size()))
    layers.push_back(field_arrows(run.field_grid, run.field[frame], v.range));
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
                               (v.show_trails ? 8u : 0u) | (v.show_field ? 16u : 0u) |
                               (v.show_density ? 32u : 0u));
  stamp = mix_stamp(stamp, static_cast<uint64_t>(v.point_size * 16.0f) * 7919u + static_cast<uint64_t>(v.trail_count));
  const RenderTarget& target = ctx.points.get(name, stamp, v.range, side, [&] { return build_layers(snap, ui, side); });
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
  track_item(ui, "ToySamples", true);
  ImGui::SameLine();
  ImGui::Checkbox("predicted x₀", &v.show_x0);
  ImGui::SameLine();
  ImGui::Checkbox("trails", &v.show_trails);
  track_item(ui, "ToyTrails", true);
  ImGui::SameLine();
  ImGui::Checkbox("field", &v.show_field);
  help_marker("The model's field at the scrubbed step, on a grid: where sampling pushes a "
              "point there. DDPM and EDM: the score, grad log p_t = -(predicted noise) / "
              "noise level; flow matching: minus the predicted velocity, the way points move "
              "as t runs to 0. Arrow length is relative to the frame's 90th-percentile "
              "length. Flow matching's arrows keep their direction along a path (straight "
              "paths); DDPM's turn as t falls (curved ones).");
  ImGui::Checkbox("density", &v.show_density);
  track_item(ui, "ToyDensity", true);
  help_marker("A density estimate of the particles at the scrubbed step: a histogram of "
              "40 x 40 cells over the view, smoothed, drawn darker where more particles are "
              "(square-root scale).");
  ImGui::SameLine();
  ImGui::PushItemWidth(ImGui::GetFontSize() * 7.0f);
  ImGui::SliderInt("noise data to t", &v.forward_t, 0, std::max(snap.config.diffusion.timesteps - 1, 0));
  help_marker("Runs the forward process on the data cloud: at large t it becomes a Gaussian "
              "blob, which is where sampling starts.");
  ImGui::SliderFloat("view", &v.range, 0.5f, 6.0f, "±%.1f");
  ImGui::SameLine();
  ImGui::SliderFloat("point size", &v.point_size, 1.0f, 8.0f, "%.1f px");
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
    track_item(ui, "ToyTimeline", true);
  }

  const ImVec2 avail = ImGui::GetContentRegionAvail();
  draw_point_view(snap, ctx, "toy.view", std::min(avail.x, avail.y - ImGui::GetFontSize() * 1.6f));
  legend_item(kDataColor, "data");
  legend_item(kSampleColor, "samples");
  legend_item(kX0Color, "predicted x₀");
  legend_item(kFieldColor, snap.samples && snap.samples->velocity ? "field (velocity)" : "field (score)");
  legend_item(kDensityColor, "density");
  ImGui::NewLine();
}

}  // namespace difflab
