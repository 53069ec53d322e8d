// Training panel: Train / Pause / Resume / Stop / New run; the run folder of this model,
// its newest checkpoint, unsaved steps and autosave, Save / Save as / Load and the
// outcomes of those jobs; optimizer settings, live progress (step, epoch, images/s, lr,
// ETA), the loss (raw, smoothed, test; log y), the loss per timestep bucket, and preview
// samples refreshed every N steps.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ui/image_view.h"
#include "ui/line_plot.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

void draw_controls(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  const bool paused = snap.status == JobStatus::Paused;
  const bool can_train = snap.data_ready && (snap.status == JobStatus::Idle ||
                                             snap.status == JobStatus::Error || paused);
  ImGui::BeginDisabled(!can_train);
  const bool train = ImGui::Button(paused ? "Resume" : "Train");
  ImGui::EndDisabled();
  track_item(ui, paused ? "Resume" : "Train", can_train);
  if (train) ctx.actions.train(snap);
  if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled) && !snap.data_ready)
    ImGui::SetTooltip("Load a dataset first.");
  else if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled) && snap.controlnet_training.active)
    ImGui::SetTooltip("A ControlNet is training for this model (ControlNet panel): stop it first.");

  ImGui::SameLine();
  ImGui::BeginDisabled(snap.status != JobStatus::Training);
  if (ImGui::Button("Pause")) ctx.actions.pause();
  ImGui::EndDisabled();
  track_item(ui, "Pause", snap.status == JobStatus::Training);

  ImGui::SameLine();
  ImGui::BeginDisabled(!training_active(snap));
  if (ImGui::Button("Stop")) ctx.actions.stop();
  ImGui::EndDisabled();
  track_item(ui, "Stop", training_active(snap));
  help_marker("Stop keeps the model: you can sample from it, save it, or Train to continue.");

  ImGui::SameLine();
  const bool can_renew = snap.model_ready && snap.status != JobStatus::Sampling &&
                         snap.status != JobStatus::LoadingData;
  ImGui::BeginDisabled(!can_renew);
  if (ImGui::Button("New run")) ctx.actions.new_run(snap);
  ImGui::EndDisabled();
  track_item(ui, "NewRun", can_renew);
  help_marker(
      "Drops this model: the next Train starts from fresh weights in a new run folder. "
      "Asks first when there is unsaved training.");
}

// The run folder of this model, what is saved of it, and the checkpoint buttons.
void draw_run(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  const RunStatus& run = snap.run;
  ImGui::TextDisabled("run folder");
  ImGui::SameLine();
  if (!run.dir.empty()) {
    // The folder's own name matters most: a long path is shortened from the left.
    const char* kOwner = "(this model's)";
    const float room = ImGui::GetContentRegionAvail().x - ImGui::CalcTextSize(kOwner).x -
                       ImGui::GetStyle().ItemSpacing.x;
    std::string shown = run.dir;
    const size_t slash = run.dir.find_last_of('/');
    if (ImGui::CalcTextSize(shown.c_str()).x > room && slash != std::string::npos)
      shown = "…" + run.dir.substr(slash);
    ImGui::TextUnformatted(shown.c_str());
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", run.dir.c_str());
    ImGui::SameLine();
    ImGui::TextDisabled("%s", kOwner);
  } else {
    ImGui::TextDisabled(snap.model_ready ? "none yet: made when this model trains or saves"
                                         : "none yet: each new model gets its own");
  }

  ImGui::TextDisabled("saved");
  ImGui::SameLine();
  if (run.saved_step >= 0) {
    ImGui::Text("step %lld", static_cast<long long>(run.saved_step));
    if (ImGui::IsItemHovered() && !run.saved_path.empty())
      ImGui::SetTooltip("%s", run.saved_path.c_str());
  } else {
    ImGui::TextDisabled("no checkpoint");
  }
  ImGui::SameLine();
  ImGui::TextDisabled("· unsaved");
  ImGui::SameLine();
  if (run.unsaved_steps > 0)
    ImGui::TextColored(ImColor(kColorWarning).Value, "%lld steps",
                       static_cast<long long>(run.unsaved_steps));
  else
    ImGui::TextDisabled("none");
  ImGui::SameLine();
  ImGui::TextDisabled("· autosave");
  ImGui::SameLine();
  const double minutes = ui.edit.train.autosave_minutes;
  if (minutes <= 0.0)
    ImGui::TextDisabled("off");
  else if (run.autosave_in_s >= 0.0)
    ImGui::Text("in %s", format_duration(run.autosave_in_s).c_str());
  else
    ImGui::TextDisabled("every %s", format_duration(minutes * 60.0).c_str());

  ImGui::BeginDisabled(!snap.model_ready);
  if (ImGui::Button("Save")) ctx.actions.save_checkpoint();
  ImGui::EndDisabled();
  track_item(ui, "Save", snap.model_ready);
  help_marker(
      "Writes checkpoints/step_N.pt into this model's run folder (and marks it latest). "
      "Checkpoints hold the model, its EMA, the optimizer, the step and the config.");
  ImGui::SameLine(0, ImGui::GetFontSize() * 1.5f);
  ImGui::TextUnformatted("Autosave every");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 4.0f);
  double edited = minutes;
  if (ImGui::InputDouble("min##autosave", &edited, 0.0, 0.0, "%.2f")) {
    edited = std::clamp(edited, 0.0, 1e6);
    ui.edit.train.autosave_minutes = edited;
    if (training_active(snap)) ctx.actions.set_autosave_minutes(snap, edited);
  }
  help_marker(
      "While training, write a checkpoint into the run folder after this many minutes of "
      "training (0 = off): a crash or a kill loses at most this much. Reopening the app "
      "offers to resume the last run from its newest checkpoint.");

  TrainingView& t = ui.training;
  const ImGuiStyle& style = ImGui::GetStyle();
  const float buttons = ImGui::CalcTextSize("Save as").x + ImGui::CalcTextSize("Load").x +
                        ImGui::CalcTextSize("(?)").x + style.FramePadding.x * 4.0f +
                        style.ItemSpacing.x * 3.0f;
  ImGui::SetNextItemWidth(
      std::max(ImGui::GetContentRegionAvail().x - buttons, ImGui::GetFontSize() * 8.0f));
  ImGui::InputTextWithHint("##checkpoint", "path/to/checkpoint.pt", &t.checkpoint_path);
  track_item(ui, "CheckpointPath", true);
  ImGui::SameLine();
  const bool can_save_as = snap.model_ready && !t.checkpoint_path.empty();
  ImGui::BeginDisabled(!can_save_as);
  if (ImGui::Button("Save as")) ctx.actions.save_checkpoint_as(t.checkpoint_path, false);
  ImGui::EndDisabled();
  track_item(ui, "SaveAs", can_save_as);
  ImGui::SameLine();
  const bool can_load = !engine_busy(snap) && !t.checkpoint_path.empty();
  ImGui::BeginDisabled(!can_load);
  if (ImGui::Button("Load")) ctx.actions.load_checkpoint(snap);
  ImGui::EndDisabled();
  track_item(ui, "LoadCheckpoint", can_load);
  help_marker(
      "Save as writes the model to this path; a file that exists is replaced only after you "
      "confirm. Load replaces the current model and settings with the checkpoint's; from a "
      "run folder it brings back its loss curve and previews, and training continues there.");
  // The status line above says what training does; a failure stays here.
  job_outcome(ui, snap, JobKind::Train, Panel::Training, JobShow::Problems);
  job_outcome(ui, snap, JobKind::Save, Panel::Training);
  job_outcome(ui, snap, JobKind::Load, Panel::Training);
}

void draw_settings(const Snapshot& snap, UiState& ui) {
  if (!ImGui::CollapsingHeader("Optimizer settings")) return;
  TrainConfig& t = ui.edit.train;
  ImGui::BeginDisabled(training_active(snap));
  ImGui::PushItemWidth(ImGui::GetFontSize() * 8.0f);
  input_sci("Learning rate", &t.lr, 1e-7, 1.0);
  // Once the edit ends (not per keystroke: typing 0.0003 passes through 0).
  if (ImGui::IsItemDeactivatedAfterEdit()) t.lr_min = std::min(t.lr_min, t.lr);
  help_marker("AdamW step size after warm-up. 1e-3 suits short CPU runs; papers use 1e-4 to 2e-4.");
  ImGui::InputInt("Batch size", &t.batch_size, 8, 64);
  t.batch_size = std::clamp(t.batch_size, 1, 4096);
  help_marker("Images per step. Bigger batches give smoother loss but cost more per step.");
  input_int64("Steps", &t.steps, 100, 1);
  help_marker("Total optimizer steps of the run.");
  input_int64("Warm-up steps", &t.warmup_steps, 50, 0);
  help_marker("The learning rate ramps linearly from 0 over these steps.");
  enum_combo("LR schedule", &t.lr_schedule, &ui, "LrSchedule");
  help_marker("After warm-up: constant keeps the rate; cosine and linear bring it down "
              "towards the final rate, reached as the run ends, so a short run ends on settled "
              "weights. Raising Steps later stretches the decay and raises the rate again.");
  if (t.lr_schedule != LrScheduleKind::Constant) {
    input_sci("Final LR", &t.lr_min, 0.0, t.lr);
    help_marker("The learning rate the decay reaches as the run ends (cosine, linear).");
  }
  float clip = static_cast<float>(t.grad_clip);
  if (ImGui::SliderFloat("Grad clip", &clip, 0.0f, 5.0f, "%.2f")) t.grad_clip = clip;
  help_marker("Clip the global gradient norm to this value; 0 = off.");
  float decay = static_cast<float>(t.ema_decay);
  if (ImGui::SliderFloat("EMA decay", &decay, 0.9f, 0.9999f, "%.4f")) t.ema_decay = decay;
  help_marker("Samples come from an exponential moving average of the weights; its horizon "
              "is about 1 / (1 − decay) steps.");
  input_int64("EMA start", &t.ema_start, 50, 0);
  help_marker("Before this step the EMA just copies the weights.");
  float p_uncond = static_cast<float>(t.p_uncond);
  if (ImGui::SliderFloat("p_uncond", &p_uncond, 0.0f, 0.5f, "%.2f")) t.p_uncond = p_uncond;
  help_marker("Probability of dropping the class label in a training example, so the same "
              "network learns the unconditional model needed for classifier-free guidance.");
  input_sci("Weight decay", &t.weight_decay, 0.0, 1.0);
  help_marker("AdamW decoupled weight decay.");
  ImGui::PopItemWidth();
  ImGui::EndDisabled();
}

void draw_progress(const Snapshot& snap) {
  const double total = static_cast<double>(std::max<int64_t>(snap.total_steps, 1));
  char overlay[96];
  std::snprintf(overlay, sizeof overlay, "step %lld / %lld", static_cast<long long>(snap.step),
                static_cast<long long>(snap.total_steps));
  ImGui::ProgressBar(static_cast<float>(snap.step / total), ImVec2(-1, 0), overlay);
  if (ImGui::BeginTable("stats", 4, ImGuiTableFlags_SizingStretchProp)) {
    auto cell = [](const char* name, const std::string& value) {
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%s", name);
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(value.c_str());
    };
    const bool started = snap.step > 0;
    char buf[64];
    cell("epoch", started ? std::to_string(snap.epoch) : "-");
    std::snprintf(buf, sizeof buf, "%.1f", snap.images_per_s);
    cell("images/s", snap.images_per_s > 0.0 ? buf : "-");
    std::snprintf(buf, sizeof buf, "%.2e", snap.lr);
    cell("lr", started ? buf : "-");
    cell("ETA", snap.status == JobStatus::Training ? format_duration(snap.eta_s) : "-");
    std::snprintf(buf, sizeof buf, "%.4f", snap.loss.empty() ? NAN : snap.loss.back().value);
    cell("loss", snap.loss.empty() ? "-" : buf);
    std::snprintf(buf, sizeof buf, "%.3f", snap.grad_norm);
    cell("grad norm", started ? buf : "-");
    ImGui::EndTable();
  }
}

void draw_loss(const Snapshot& snap, UiState& ui) {
  ImGui::Checkbox("log y", &ui.training.log_y);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 7.0f);
  ImGui::SliderFloat("smoothing", &ui.training.smoothing, 0.0f, 0.995f, "%.3f");
  help_marker("Exponential moving average of the per-step loss (bias-corrected).");

  PlotSeries raw, smooth, test;
  raw.label = "loss";
  raw.color = kColorRaw;
  raw.thickness = 1.0f;
  smooth.label = "smoothed";
  smooth.color = kColorSmooth;
  smooth.thickness = 2.0f;
  test.label = "test loss";
  test.color = kColorTest;
  test.markers = true;
  double ema = 0.0, weight = 0.0;
  const double a = ui.training.smoothing;
  for (const auto& p : snap.loss) {
    raw.x.push_back(static_cast<double>(p.step));
    raw.y.push_back(p.value);
    if (std::isfinite(p.value)) {
      ema = a * ema + (1.0 - a) * p.value;
      weight = a * weight + (1.0 - a);
    }
    smooth.x.push_back(static_cast<double>(p.step));
    smooth.y.push_back(weight > 0.0 ? ema / weight : NAN);
  }
  for (const auto& p : snap.test_loss) {
    test.x.push_back(static_cast<double>(p.step));
    test.y.push_back(p.value);
  }
  PlotOptions options;
  options.height = ImGui::GetFontSize() * 9.0f;
  options.log_y = ui.training.log_y;
  options.x_label = "step";
  line_plot("loss", {raw, smooth, test}, options);

  if (!snap.loss_by_t.empty()) {
    ImGui::TextDisabled("Recent loss by timestep (t buckets)");
    help_marker("Mean loss of recent training examples, grouped by the t they were noised to. "
                "Small t (little noise) is hard to predict ε for; large t is nearly pure noise.");
    const int buckets = static_cast<int>(snap.loss_by_t.size());
    const int T = snap.config.diffusion.timesteps;
    std::vector<std::string> labels;
    for (int i = 0; i < buckets; ++i) labels.push_back(std::to_string(i * T / buckets));
    bar_chart("loss_by_t", snap.loss_by_t, labels, ImGui::GetFontSize() * 5.0f,
              IM_COL32(255, 170, 80, 210), "%.4f");
    if (snap.config.diffusion.loss_weighting == LossWeighting::MinSnr &&
        snap.loss_weight_by_t.size() == snap.loss_by_t.size()) {
      ImGui::TextDisabled("Loss weight by timestep (min-SNR-γ, γ = %.3g)",
                          snap.config.diffusion.min_snr_gamma);
      help_marker("The weight each example's loss gets at its t, so that it counts as "
                  "min(SNR_t, γ) times its x₀ error (Hang et al. 2023). The bars above are the "
                  "unweighted losses.");
      bar_chart("loss_weight_by_t", snap.loss_weight_by_t, labels, ImGui::GetFontSize() * 4.0f,
                IM_COL32(120, 190, 255, 210), "%.3g");
    }
  }
}

void draw_preview(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  auto& t = ui.training;
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 6.0f);
  bool edited = false;
  if (t.preview_by_time) {
    int64_t seconds = static_cast<int64_t>(std::lround(t.preview_every_s));
    edited = input_int64("##preview_every", &seconds, 10, 0);
    if (edited) t.preview_every_s = static_cast<double>(seconds);
  } else {
    edited = input_int64("##preview_every", &t.preview_every, 50, 0);
  }
  track_item(ui, "PreviewEvery", true);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 5.5f);
  const char* units[] = {"seconds", "steps"};
  // No label inside the combo: the tracked rectangle is the box itself (its centre is
  // where a click opens it).
  const bool open = ImGui::BeginCombo("##preview_unit", units[t.preview_by_time ? 0 : 1]);
  track_item(ui, "PreviewUnit", true);
  if (open) {
    for (int i = 0; i < 2; ++i) {
      if (ImGui::Selectable(units[i], (i == 0) == t.preview_by_time)) {
        edited = edited || (i == 0) != t.preview_by_time;
        t.preview_by_time = i == 0;
      }
      track_item(ui, (std::string("PreviewUnit.") + units[i]).c_str(), true);
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::TextUnformatted("Preview every");
  if (edited) {
    t.preview_sent = false;
    ctx.actions.send_preview_settings();
  }
  help_marker("Sample a small grid from the EMA model while training: every N seconds of "
              "training (the default, so the first grid comes within a minute on any "
              "machine) or every N steps; 0 = off. Each preview costs a few training steps of "
              "time, and is not counted as training time.");
  if (snap.run.preview_in_s >= 0) {
    ImGui::SameLine();
    ImGui::TextDisabled("next in %.0f s", std::ceil(snap.run.preview_in_s));
  }
  if (snap.preview.empty()) {
    dim_text(snap.points ? "Samples of 2-D models show in the 2-D toy view." : "No preview yet.");
    return;
  }
  ImGui::SameLine();
  ImGui::TextDisabled("from step %lld", static_cast<long long>(snap.preview_step));
  if (is_points(snap.preview)) return;
  const CachedImage& grid = *training_preview_texture(snap, ctx);
  const std::vector<std::string> labels = class_labels(snap, snap.preview_labels);
  ui.training.zoom = fit_zoom(static_cast<float>(grid.width()), ImGui::GetContentRegionAvail().x, 0.5f, 3.0f);
  ImageViewOptions options;
  options.labels = &labels;
  options.tooltip_prefix = "preview";
  image_view("preview", grid, &ui.training.zoom, options);
}

}  // namespace

const CachedImage* training_preview_texture(const Snapshot& snap, UiContext& ctx) {
  const FloatImages& preview = snap.preview;
  if (preview.empty() || is_points(preview)) return nullptr;
  const int columns = std::max(1, std::min(preview.n, 10));
  const uint64_t stamp = mix_stamp(static_cast<uint64_t>(snap.preview_step), snap.model_serial);
  return &ctx.textures.get("training.preview", stamp, Colormap::Image, 1.0f,
                           [&](GridLayout* layout) {
                             FloatPlane plane;
                             *layout = compose_grid(preview, 0, preview.n, columns, 2, false, &plane);
                             return plane;
                           });
}

void draw_training_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  status_line(snap);
  draw_controls(snap, ctx);
  if (ImGui::CollapsingHeader("Run and checkpoints", ImGuiTreeNodeFlags_DefaultOpen))
    draw_run(snap, ctx);
  draw_settings(snap, ui);
  ImGui::Separator();
  draw_progress(snap);
  draw_loss(snap, ui);
  if (ImGui::CollapsingHeader("Preview samples", ImGuiTreeNodeFlags_DefaultOpen))
    draw_preview(snap, ctx);
}

}  // namespace difflab
