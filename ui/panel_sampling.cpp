// Sampling panel: sampler (any row of core/sampling/sampler_registry.h),
// its variance or σ spacing, steps, η, guidance, class, seed and count;
// Generate / Cancel with progress; then the scrubber over the recorded trajectory
// (scrubber.cpp), whose last position is the result grid.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "core/sampling/sampler_registry.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

void draw_class_combo(const Snapshot& snap, SampleConfig& s, bool enabled) {
  const int classes = snap.config.model.class_conditional ? snap.config.model.num_classes : 0;
  const std::string current = s.class_label < 0 ? "all (cycle)" : class_name(snap, s.class_label);
  ImGui::BeginDisabled(!enabled || classes == 0);
  if (ImGui::BeginCombo("Class", current.c_str())) {
    if (ImGui::Selectable("all (cycle)", s.class_label < 0)) s.class_label = -1;
    for (int c = 0; c < classes; ++c) {
      ImGui::PushID(c);
      if (ImGui::Selectable(class_name(snap, c).c_str(), s.class_label == c)) s.class_label = c;
      ImGui::PopID();
    }
    ImGui::EndCombo();
  }
  ImGui::EndDisabled();
  help_marker("Which class to generate; 'all' cycles through the classes, one per image. "
              "Needs a class-conditional model.");
}

void draw_settings(const Snapshot& snap, UiState& ui, bool enabled) {
  SampleConfig& s = ui.edit.sample;
  const int T = snap.config.diffusion.timesteps;
  // A sampler that does not apply to the model's objective (sampler_registry.h) gives way
  // to the objective's default, as the trainer does for a preset's.
  const Objective objective = snap.config.diffusion.objective;
  if (!sampler_applies(s.sampler, objective)) s.sampler = default_sampler(objective);
  ImGui::BeginDisabled(!enabled);
  if (ImGui::BeginTable("sample_settings", 2, ImGuiTableFlags_SizingStretchSame)) {
    const float label_room = ImGui::GetFontSize() * 5.5f;
    auto next = [label_room] {
      ImGui::TableNextColumn();
      ImGui::SetNextItemWidth(std::max(ImGui::GetContentRegionAvail().x - label_room, 40.0f));
    };
    next();
    if (enum_combo("Sampler", &s.sampler) && s.sampler == SamplerKind::Ddpm) s.eta = 1.0;
    help_marker(sampler_help().c_str());
    next();
    const bool sigma_space = is_sigma_space(s.sampler);
    if (s.sampler == SamplerKind::Ddpm) {
      enum_combo("Variance", &s.variance);
      help_marker("DDPM step variance: fixed_small = β̃_t (posterior), fixed_large = β_t, "
                  "learned = the model's own interpolation (needs a learn_sigma model).");
    } else {
      ImGui::BeginDisabled(!sigma_space);
      enum_combo("σ spacing", &s.sigmas);
      ImGui::EndDisabled();
      help_marker("Noise levels of the σ-space samplers: the model's own (respaced) steps, or "
                  "Karras et al. (2022, eq. 5) spacing, denser near σ = 0.");
    }
    next();
    float rho = static_cast<float>(s.karras_rho);
    ImGui::BeginDisabled(!sigma_space || s.sigmas != SigmaSpacing::Karras);
    if (ImGui::SliderFloat("ρ", &rho, 1.0f, 10.0f, "%.1f")) s.karras_rho = rho;
    ImGui::EndDisabled();
    help_marker("Karras spacing exponent ρ (7 in the paper): larger puts more steps at low noise.");
    next();
    ImGui::SliderInt("Steps", &s.steps, 1, std::max(T, 1));
    help_marker("Denoising steps: the T training steps respaced to K (see the Schedule panel).");
    next();
    float eta = static_cast<float>(s.eta);
    ImGui::BeginDisabled(s.sampler != SamplerKind::Ddim);
    if (ImGui::SliderFloat("η", &eta, 0.0f, 1.0f, "%.2f")) s.eta = eta;
    ImGui::EndDisabled();
    help_marker("DDIM noise: 0 = deterministic path from the starting noise, 1 = as much "
                "fresh noise as DDPM.");
    next();
    float guidance = static_cast<float>(s.guidance);
    const bool autoguided = !s.guide_model.empty();
    ImGui::BeginDisabled(!snap.config.model.class_conditional && !autoguided);
    if (ImGui::SliderFloat("Guidance", &guidance, 0.0f, 10.0f, "%.1f")) s.guidance = guidance;
    ImGui::EndDisabled();
    help_marker("Classifier-free guidance scale w: ε = ε_uncond + w (ε_cond − ε_uncond). "
                "1 = plain conditional, 0 = unconditional, larger = more typical images. "
                "With a guide model (below) w mixes the two models instead.");
    next();
    ImGui::InputTextWithHint("Guide model", "none: classifier-free guidance", &s.guide_model);
    help_marker("Autoguidance (Karras et al. 2024): a checkpoint or run folder of a weaker "
                "model of the same data, objective and classes (smaller or trained for less, "
                "e.g. assets/starters/mnist/model.pt beside a preset run). w then mixes the "
                "two at the same class, D_weak + w (D − D_weak): it pushes samples away from "
                "what the weaker model gets wrong, so they sharpen without all looking alike. "
                "Works for unconditional models too. Empty = classifier-free guidance.");
    // The guidance interval (Kynkäänniemi et al. 2024), on σ = noise / signal; 0 = no limit.
    const bool guided = (snap.config.model.class_conditional || autoguided) && s.guidance != 1.0;
    auto sigma_limit = [&](const char* label, double* value, float speed, const char* help) {
      next();
      float v = static_cast<float>(*value);
      ImGui::BeginDisabled(!guided);
      if (ImGui::DragFloat(label, &v, speed, 0.0f, 1000.0f, v == 0.0f ? "any" : "%.2f",
                           ImGuiSliderFlags_AlwaysClamp))
        *value = v;
      ImGui::EndDisabled();
      help_marker(help);
    };
    sigma_limit("Guide σ >", &s.guidance_sigma_min, 0.01f,
                "Guide only where the noise level σ (noise / signal: √((1 − ᾱ)/ᾱ); EDM's σ; "
                "t/(1 − t) for flow matching) is above this, and the conditional model alone "
                "below it (0 = any). Guidance in a limited interval (Kynkäänniemi et al. 2024) "
                "keeps more of the model's variety, and each unguided step costs one network "
                "call instead of two.");
    sigma_limit("Guide σ ≤", &s.guidance_sigma_max, 0.05f,
                "Guide only where σ is at most this (0 = any): at the noisiest steps guidance "
                "pulls every sample toward the same typical image.");
    next();
    draw_class_combo(snap, s, enabled);
    next();
    ImGui::SliderInt("Count", &s.n, 1, 256);
    help_marker("Images (or points) to generate.");
    next();
    ImGui::InputScalar("Seed", ImGuiDataType_U64, &s.seed);
    help_marker("Seeds the starting noise and every fresh noise draw: the same seed and "
                "settings give the same images.");
    ImGui::TableNextColumn();
    if (ImGui::Button("New seed")) {
      std::random_device device;
      s.seed = (static_cast<uint64_t>(device()) << 32) ^ device();
    }
    ImGui::SameLine();
    ImGui::Checkbox("EMA", &s.use_ema);
    help_marker("Sample with the exponential moving average of the weights (smoother).");
    ImGui::EndTable();
  }
  ImGui::EndDisabled();
}

std::string settings_text(const SampleConfig& c) {
  char text[128];
  const bool sigma_space = is_sigma_space(c.sampler);
  std::snprintf(text, sizeof text, "%s%s %d, w %.1f", std::string(to_string(c.sampler)).c_str(),
                sigma_space && c.sigmas == SigmaSpacing::Karras ? " (karras)" : "", c.steps, c.guidance);
  const std::string interval = guidance_interval_text(c);
  return interval.empty() ? std::string(text) : std::string(text) + " (" + interval + ")";
}

// Scores the model's samples with the evaluator classifier (core/eval/evaluator.h), with
// the settings above, and keeps every result in a table to compare samplers and scales.
void draw_evaluation(const Snapshot& snap, UiContext& ctx, bool can_sample) {
  if (!snap.evaluations.empty()) ImGui::SetNextItemOpen(true, ImGuiCond_Once);  // show the first result
  if (!ImGui::CollapsingHeader("Evaluate")) return;
  SamplingView& v = ctx.ui.sampling;
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 6.0f);
  ImGui::InputInt("N", &v.eval_n, 50, 200);
  v.eval_n = std::clamp(v.eval_n, 10, 5000);
  ImGui::SameLine();
  ImGui::BeginDisabled(!can_sample || snap.points);
  if (ImGui::Button("Evaluate")) ctx.actions.evaluate(v.eval_n);
  ImGui::EndDisabled();
  help_marker("Samples N images with the settings above and scores them with a small CNN trained "
              "on the real training split (trained once, cached as evaluator.pt in the run folder): "
              "accuracy against the requested classes, and the Fréchet distance (FD) of its "
              "features to the real test split. 'floor' is the FD of N real training images: "
              "samples can only approach it. Lower FD is better; compare at equal N.");
  if (snap.evaluations.empty()) return;
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_SizingFixedFit;
  if (ImGui::BeginTable("evaluations", 6, flags)) {
    ImGui::TableSetupColumn("step");
    ImGui::TableSetupColumn("sampler");
    ImGui::TableSetupColumn("N");
    ImGui::TableSetupColumn("accuracy");
    ImGui::TableSetupColumn("FD");
    ImGui::TableSetupColumn("floor");
    ImGui::TableHeadersRow();
    for (auto it = snap.evaluations.rbegin(); it != snap.evaluations.rend(); ++it) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::Text("%lld", static_cast<long long>(it->step));
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(settings_text(it->config).c_str());
      ImGui::TableNextColumn();
      ImGui::Text("%lld", static_cast<long long>(it->n));
      ImGui::TableNextColumn();
      if (std::isnan(it->accuracy)) ImGui::TextDisabled("-");
      else ImGui::Text("%.1f %%", 100.0 * it->accuracy);
      ImGui::TableNextColumn();
      ImGui::Text("%.2f", it->fd);
      ImGui::TableNextColumn();
      ImGui::TextDisabled("%.2f", it->fd_floor);
    }
    ImGui::EndTable();
  }
}

}  // namespace

void draw_sampling_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  const bool sampling = snap.status == JobStatus::Sampling;
  const bool can_sample = snap.model_ready && (snap.status == JobStatus::Idle ||
                                               snap.status == JobStatus::Error);
  draw_settings(snap, ui, !sampling);

  ImGui::BeginDisabled(!can_sample);
  const bool generate = ImGui::Button("Generate");
  ImGui::EndDisabled();
  track_item(ui, "Generate", can_sample);
  if (generate) ctx.actions.generate();
  if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled) && !snap.model_ready)
    ImGui::SetTooltip("Train a model (or load a checkpoint) first.");
  ImGui::SameLine();
  ImGui::BeginDisabled(!sampling);
  if (ImGui::Button("Cancel")) ctx.actions.cancel_sampling();
  ImGui::EndDisabled();
  ImGui::SameLine();
  if (sampling) {
    char overlay[64];
    std::snprintf(overlay, sizeof overlay, "step %d / %d", snap.sample_step, snap.sample_total);
    ImGui::ProgressBar(snap.sample_total > 0 ? static_cast<float>(snap.sample_step) / snap.sample_total : 0.0f,
                       ImVec2(-1, 0), overlay);
  } else if (snap.samples) {
    const auto& run = *snap.samples;
    ImGui::TextDisabled("%d images, %s %d steps, %.1f s", run.final_images.n,
                        std::string(to_string(run.config.sampler)).c_str(), run.config.steps,
                        run.seconds);
  } else if (!snap.model_ready) {
    ImGui::TextDisabled("no model yet");
  } else {
    ImGui::NewLine();
  }
  // Progress and the result are shown above: the Sample job only when it did not succeed.
  job_outcome(ui, snap, JobKind::Sample, Panel::Sampling, JobShow::Problems);
  job_outcome(ui, snap, JobKind::Evaluate, Panel::Sampling);
  if (ui.sampling.export_shown_here) job_outcome(ui, snap, JobKind::Export, Panel::Sampling);
  draw_evaluation(snap, ctx, can_sample);
  ImGui::Separator();
  draw_scrubber(snap, ctx);
}

}  // namespace difflab
