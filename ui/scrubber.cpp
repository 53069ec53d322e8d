// The scrubber over a recorded sampling run (snapshot.samples): a timeline over every
// recorded frame plus the final result, play / pause and single steps; for the selected
// image x_t, the predicted x₀ and the predicted ε side by side (ε through the diverging
// colormap shader); the whole grid at that step; PNG export of a frame or the sequence,
// and the sequence as an animated GIF.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "core/util/paths.h"
#include "core/vision/gif.h"
#include "ui/image_view.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

// The three detail images stay at most this many times their size, leaving room for the grid.
constexpr float kMaxDetailZoom = 4.0f;
constexpr const char* kFieldNames[] = {"x_t", "predicted x₀", "predicted ε"};
// The third field of a flow-matching run is the velocity v̂ = ε̂ − x̂₀ (TrajectoryFrames).
const char* field_name(const TrajectoryFrames& run, int f) {
  return run.velocity && f == static_cast<int>(FrameField::Eps) ? "predicted v" : kFieldNames[f];
}

// The images of `field` at scrubber position `frame` (F = the final images).
const FloatImages* field_images(const TrajectoryFrames& run, int frame, FrameField field) {
  const int frames = static_cast<int>(run.x_t.size());
  if (frame >= frames) return field == FrameField::Eps ? nullptr : &run.final_images;
  switch (field) {
    case FrameField::Xt: return &run.x_t[frame];
    case FrameField::X0: return frame < static_cast<int>(run.x0.size()) ? &run.x0[frame] : nullptr;
    case FrameField::Eps: return frame < static_cast<int>(run.eps.size()) ? &run.eps[frame] : nullptr;
    case FrameField::Count: break;
  }
  return nullptr;
}

Colormap field_map(FrameField field) { return field == FrameField::Eps ? Colormap::Diverging : Colormap::Image; }

uint64_t frame_stamp(const SamplingView& v, int frame, int extra) {
  return mix_stamp(mix_stamp(v.run_serial, static_cast<uint64_t>(frame)), static_cast<uint64_t>(extra));
}

int grid_columns(const FloatImages& images) { return std::max(1, std::min(images.n, 8)); }

// Columns that fill the space left in the panel (above the export header).
int fitted_columns(const FloatImages& images) {
  ImVec2 avail = ImGui::GetContentRegionAvail();
  avail.y -= ImGui::GetFrameHeightWithSpacing() * 2.0f;
  return best_columns(images.n, images.w, images.h, 2, avail);
}

void draw_transport(const Snapshot& snap, UiContext& ctx, int frames) {
  SamplingView& v = ctx.ui.sampling;
  Actions& act = ctx.actions;
  if (ImGui::Button("|<")) act.set_frame(snap, 0);
  ImGui::SameLine();
  if (ImGui::ArrowButton("back", ImGuiDir_Left)) act.set_frame(snap, v.frame - 1);
  ImGui::SameLine();
  if (ImGui::Button(v.playing ? "Pause##play" : "Play##play", ImVec2(ImGui::GetFontSize() * 3.5f, 0))) {
    v.playing = !v.playing;
    v.play_clock = 0.0;
    if (v.playing && v.frame >= frames) act.set_frame(snap, 0);
  }
  track_item(ctx.ui, "Play", true);
  ImGui::SameLine();
  if (ImGui::ArrowButton("forward", ImGuiDir_Right)) act.set_frame(snap, v.frame + 1);
  ImGui::SameLine();
  if (ImGui::Button(">|")) act.set_frame(snap, frames);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 5.0f);
  ImGui::SliderFloat("fps", &v.play_fps, 1.0f, 60.0f, "%.0f fps");

  const TrajectoryFrames& run = *snap.samples;
  char label[96];
  if (v.frame < frames)
    std::snprintf(label, sizeof label, "frame %d / %d   t = %d", v.frame, frames,
                  v.frame < static_cast<int>(run.timesteps.size()) ? run.timesteps[v.frame] : -1);
  else
    std::snprintf(label, sizeof label, "final (after %d frames)", frames);
  ImGui::SetNextItemWidth(-1);
  int frame = v.frame;
  if (ImGui::SliderInt("##timeline", &frame, 0, frames, label)) act.set_frame(snap, frame);
  track_item(ctx.ui, "Timeline", true);
}

// x_t, x̂₀ and ε̂ of the selected image, side by side.
void draw_detail(const TrajectoryFrames& run, UiContext& ctx) {
  SamplingView& v = ctx.ui.sampling;
  const float cell = (ImGui::GetContentRegionAvail().x - ImGui::GetStyle().ItemSpacing.x * 2) / 3.0f;
  for (int f = 0; f < static_cast<int>(FrameField::Count); ++f) {
    const auto field = static_cast<FrameField>(f);
    if (f > 0) ImGui::SameLine();
    ImGui::BeginGroup();
    ImGui::TextDisabled("%s", field_name(run, f));
    const FloatImages* images = field_images(run, v.frame, field);
    if (!images || v.selected >= images->n) {
      ImGui::Dummy(ImVec2(cell, cell));
    } else {
      const std::string name = std::string("scrub.detail.") + std::to_string(f);
      const CachedImage& img = ctx.textures.get(
          name, frame_stamp(v, v.frame, v.selected), field_map(field), v.eps_range,
          [&](GridLayout*) { return single_image(*images, v.selected, field == FrameField::Eps); });
      float zoom = fit_zoom(static_cast<float>(img.width()), cell, 0.5f, kMaxDetailZoom);
      image_view(name.c_str(), img, &zoom);
    }
    ImGui::EndGroup();
  }
}

// Where exports go unless the user types another path: the model's run folder (exports/),
// or beside the config's output folder before there is one.
std::string export_folder(const Snapshot& snap, const UiState& ui) {
  return snap.run.dir.empty() ? ui.edit.train.out_dir + "/gui" : snap.run.dir + "/exports";
}

// Keeps the message for the panel's script and reports the outcome to the engine (the
// Export job, and a line in the log).
void finish_export(UiContext& ctx, bool ok, const std::string& message, const std::string& path) {
  ctx.ui.sampling.status = message;
  ctx.ui.sampling.export_shown_here = true;
  ctx.actions.report(JobKind::Export, ok, message, path);
}

void export_frame(const CachedImage& grid, UiContext& ctx) {
  SamplingView& v = ctx.ui.sampling;
  // An earlier export is never replaced: a taken name becomes frame_2.png, frame_3.png, ...
  const std::string path = free_path(v.export_path);
  try {
    write_png(path, grid.target.read_pixels(), IfExists::Refuse);
    finish_export(ctx, true, "wrote " + path, path);
  } catch (const std::exception& e) {
    finish_export(ctx, false, e.what(), path);
  }
}

// Renders the grid of the selected field at every recorded frame, as the scrubber shows it.
template <typename Sink>
int render_sequence(const TrajectoryFrames& run, UiContext& ctx, Sink&& sink) {
  const SamplingView& v = ctx.ui.sampling;
  const int frames = static_cast<int>(run.x_t.size());
  RenderTarget target;
  int rendered = 0;
  for (int k = 0; k <= frames; ++k) {
    const FloatImages* images = field_images(run, k, v.grid_field);
    if (!images) continue;
    FloatPlane plane;
    compose_grid(*images, 0, images->n, grid_columns(*images), 2, v.grid_field == FrameField::Eps, &plane);
    ctx.textures.renderer().render(plane, field_map(v.grid_field), v.eps_range, target);
    sink(rendered++, target.read_pixels());
  }
  return rendered;
}

void export_sequence(const TrajectoryFrames& run, UiContext& ctx) {
  SamplingView& v = ctx.ui.sampling;
  // A folder that holds anything already (an earlier sequence) gives way to trajectory_2, ...
  std::error_code ec;
  const bool empty_folder = std::filesystem::is_directory(v.export_dir, ec) &&
                            std::filesystem::is_empty(v.export_dir, ec);
  const std::string dir = empty_folder ? v.export_dir : free_path(v.export_dir);
  try {
    make_dirs(dir);
    const int written = render_sequence(run, ctx, [&](int k, const Image8& image) {
      char name[32];
      std::snprintf(name, sizeof name, "/frame_%04d.png", k);
      write_png(dir + name, image, IfExists::Refuse);
    });
    finish_export(ctx, true, "wrote " + std::to_string(written) + " PNGs to " + dir, dir);
  } catch (const std::exception& e) {
    finish_export(ctx, false, e.what(), dir);
  }
}

void export_gif(const TrajectoryFrames& run, UiContext& ctx) {
  SamplingView& v = ctx.ui.sampling;
  std::string path = v.export_gif;
  try {
    std::vector<Image8> frames;
    render_sequence(run, ctx, [&](int, const Image8& image) { frames.push_back(image); });
    GifOptions options;
    options.delay_cs = std::max(2, static_cast<int>(100.0f / std::max(v.play_fps, 1.0f) + 0.5f));
    path = free_path(v.export_gif);
    write_gif(path, frames, options, IfExists::Refuse);
    finish_export(ctx, true, "wrote " + std::to_string(frames.size()) + " frames to " + path, path);
  } catch (const std::exception& e) {
    finish_export(ctx, false, e.what(), path);
  }
}

}  // namespace

void draw_scrubber(const Snapshot& snap, UiContext& ctx) {
  SamplingView& v = ctx.ui.sampling;
  if (!snap.samples) {
    dim_text("Generate to record a trajectory: every denoising step's x_t, predicted x₀ "
             "and predicted ε, to scrub through here.");
    if (const CachedImage* preview = training_preview_texture(snap, ctx)) {
      ImGui::Spacing();
      ImGui::Text("Latest training preview (step %lld)", static_cast<long long>(snap.preview_step));
      const std::vector<std::string> labels = class_labels(snap, snap.preview_labels);
      float zoom = fit_zoom(static_cast<float>(preview->width()), ImGui::GetContentRegionAvail().x, 0.5f, 4.0f);
      ImageViewOptions options;
      options.labels = &labels;
      options.tooltip_prefix = "preview";
      image_view("latest_preview", *preview, &zoom, options);
    }
    return;
  }
  const TrajectoryFrames& run = *snap.samples;
  const int frames = static_cast<int>(run.x_t.size());
  v.frame = std::clamp(v.frame, 0, frames);
  draw_transport(snap, ctx, frames);
  if (is_points(run)) {  // particles instead of images (options in the 2-D toy view)
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    draw_point_view(snap, ctx, "sampling.points", std::min(avail.x, avail.y - ImGui::GetFontSize()));
    return;
  }
  draw_detail(run, ctx);
  help_marker("x_t: the image at this step. Predicted x₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t: the "
              "network's current guess of the clean image. Predicted ε: the noise it sees "
              "(blue negative, red positive); for a flow-matching model the velocity "
              "v̂ = ε̂ − x̂₀ instead, with x̂₀ = x_t − t v̂. Click a grid cell to pick the image.");

  for (int f = 0; f < static_cast<int>(FrameField::Count); ++f) {
    if (f > 0) ImGui::SameLine();
    if (ImGui::RadioButton(field_name(run, f), v.grid_field == static_cast<FrameField>(f)))
      v.grid_field = static_cast<FrameField>(f);
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 5.0f);
  ImGui::SliderFloat("ε range", &v.eps_range, 0.5f, 5.0f, "±%.1f");
  help_marker("The diverging colormap spans [−range, range].");

  const FloatImages* images = field_images(run, v.frame, v.grid_field);
  if (!images) {
    dim_text("No predicted ε after the last step: pick an earlier frame.");
  } else {
    const int columns = fitted_columns(*images);
    const CachedImage& grid = ctx.textures.get(
        "scrub.grid", mix_stamp(frame_stamp(v, v.frame, static_cast<int>(v.grid_field)), columns),
        field_map(v.grid_field), v.eps_range, [&](GridLayout* layout) {
          FloatPlane plane;
          *layout = compose_grid(*images, 0, images->n, columns, 2, v.grid_field == FrameField::Eps, &plane);
          return plane;
        });
    const std::vector<std::string> labels = run_class_labels(snap, run);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    avail.y -= ImGui::GetFrameHeightWithSpacing() * 2.0f;
    v.zoom = std::min(fit_zoom(static_cast<float>(grid.width()), avail.x, 0.5f, 6.0f),
                      fit_zoom(static_cast<float>(grid.height()), std::max(avail.y, 60.0f), 0.5f, 6.0f));
    ImageViewOptions options;
    options.labels = &labels;
    options.selected = v.selected;
    options.tooltip_prefix = "sample";
    const ImageViewResult r = image_view("grid", grid, &v.zoom, options);
    if (r.clicked >= 0) v.selected = r.clicked;

    if (ImGui::CollapsingHeader("Export")) {
      if (v.export_path.empty()) v.export_path = export_folder(snap, ctx.ui) + "/frame.png";
      if (v.export_dir.empty()) v.export_dir = export_folder(snap, ctx.ui) + "/trajectory";
      ImGui::SetNextItemWidth(-ImGui::GetFontSize() * 9.0f);
      ImGui::InputText("##frame_path", &v.export_path);
      ImGui::SameLine();
      if (ImGui::Button("Export frame")) export_frame(grid, ctx);
      ImGui::SetNextItemWidth(-ImGui::GetFontSize() * 9.0f);
      ImGui::InputText("##sequence_dir", &v.export_dir);
      ImGui::SameLine();
      if (ImGui::Button("Export sequence")) export_sequence(run, ctx);
      help_marker("Writes the grid of the selected field at every frame as frame_0000.png, "
                  "frame_0001.png, ... (turn into a video with e.g. ffmpeg -i frame_%04d.png).");
      if (v.export_gif.empty()) v.export_gif = export_folder(snap, ctx.ui) + "/trajectory.gif";
      ImGui::SetNextItemWidth(-ImGui::GetFontSize() * 9.0f);
      ImGui::InputText("##gif_path", &v.export_gif);
      ImGui::SameLine();
      if (ImGui::Button("Export GIF")) v.gif_requested = true;
      help_marker("An animated GIF of the grid of the selected field over every frame, played at "
                  "the scrubber's fps, looping; the last frame holds for 1.5 s.");
    }
  }
  if (v.gif_requested) {
    v.gif_requested = false;
    if (v.export_gif.empty()) v.export_gif = export_folder(snap, ctx.ui) + "/trajectory.gif";
    export_gif(run, ctx);
  }
}

void update_scrubber_playback(const Snapshot& snap, UiContext& ctx, double dt) {
  SamplingView& v = ctx.ui.sampling;
  if (!snap.samples) return;
  const int frames = static_cast<int>(snap.samples->x_t.size());
  if (v.run != snap.samples) {  // a new run: show its result
    v.run = snap.samples;
    ++v.run_serial;
    v.frame = frames;
    v.playing = false;
    v.selected = std::clamp(v.selected, 0, std::max(snap.samples->final_images.n - 1, 0));
  }
  if (!v.playing) return;
  v.play_clock += dt;
  const double period = 1.0 / std::max(v.play_fps, 1.0f);
  while (v.play_clock >= period) {
    v.play_clock -= period;
    ctx.actions.set_frame(snap, v.frame + 1);
    if (v.frame >= frames) {
      v.playing = false;
      break;
    }
  }
}

}  // namespace difflab
