// Model panel: the denoising network (UNet for images, MLP for 2-D points) and the
// diffusion settings it is trained with, the parameter count, and Apply. A change that
// would discard a trained model goes through the confirmation dialog first.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

std::string join_ints(const std::vector<int>& values) {
  std::string out;
  for (int v : values) {
    if (!out.empty()) out += ", ";
    out += std::to_string(v);
  }
  return out;
}

// "1, 2, 4" or "1 2 4" -> {1, 2, 4}; false on anything else.
bool parse_ints(const std::string& text, std::vector<int>* out, bool allow_empty) {
  std::string spaced = text;
  std::replace(spaced.begin(), spaced.end(), ',', ' ');
  std::istringstream in(spaced);
  std::vector<int> values;
  std::string word;
  while (in >> word) {
    try {
      size_t used = 0;
      const int v = std::stoi(word, &used);
      if (used != word.size() || v <= 0) return false;
      values.push_back(v);
    } catch (const std::exception&) {
      return false;
    }
  }
  if (values.empty() && !allow_empty) return false;
  *out = values;
  return true;
}

// A text field bound to a list of positive ints; the vector changes only on valid text.
void int_list_field(const char* label, std::vector<int>* values, std::string* text, bool* editing,
                    bool allow_empty) {
  if (!*editing) *text = join_ints(*values);
  std::vector<int> parsed;
  const bool valid = parse_ints(*text, &parsed, allow_empty);
  if (!valid) ImGui::PushStyleColor(ImGuiCol_FrameBg, IM_COL32(120, 40, 40, 200));
  if (ImGui::InputText(label, text) && parse_ints(*text, &parsed, allow_empty)) *values = parsed;
  if (!valid) ImGui::PopStyleColor();
  *editing = ImGui::IsItemActive();
}

// The feature-map size of each UNet level (halved between levels).
std::string level_sizes(int image_size, size_t levels) {
  std::string out;
  int s = image_size;
  for (size_t i = 0; i < levels; ++i) {
    if (!out.empty()) out += ", ";
    out += std::to_string(s);
    s = (s + 1) / 2;
  }
  return out;
}

void draw_unet_fields(UiState& ui) {
  ModelConfig& m = ui.edit.model;
  ImGui::InputInt("Base channels", &m.base_channels, 8, 32);
  m.base_channels = std::clamp(m.base_channels, 4, 512);
  help_marker("Width of the first UNet level; each level multiplies it. The main speed / "
              "quality knob: 32 trains in minutes on a CPU, 128 is what papers use.");
  int_list_field("Channel multipliers", &m.channel_mult, &ui.model.channel_mult_text,
                 &ui.model.editing_mult, false);
  help_marker("One entry per resolution level, e.g. 1, 2, 4: widths 32, 64, 128; the image "
              "is halved between levels.");
  ImGui::TextDisabled("  levels at %s px", level_sizes(ui.edit.data.image_size, m.channel_mult.size()).c_str());
  ImGui::SliderInt("Res blocks", &m.num_res_blocks, 1, 4);
  help_marker("Residual blocks per level (each: GroupNorm, activation, conv, + time embedding).");
  int_list_field("Attention at", &m.attention_resolutions, &ui.model.attention_text,
                 &ui.model.editing_attention, true);
  help_marker("Feature-map sizes (in pixels) that get a self-attention block, e.g. 7 for the "
              "7x7 level of a 28x28 UNet. Empty = no attention.");
  ImGui::SliderInt("Heads", &m.num_heads, 1, 8);
  help_marker("Attention heads; must divide the width of the attended level.");
  float dropout = static_cast<float>(m.dropout);
  if (ImGui::SliderFloat("Dropout", &dropout, 0.0f, 0.5f, "%.2f")) m.dropout = dropout;
  help_marker("Dropout inside the residual blocks (0.1 in DDPM's CIFAR-10 model).");
  ImGui::InputInt("Norm groups", &m.norm_groups, 1, 4);
  m.norm_groups = std::clamp(m.norm_groups, 1, 64);
  help_marker("GroupNorm groups; must divide every level's width.");
}

}  // namespace

void draw_model_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  if (snap.parameters > 0)
    ImGui::Text("Parameters: %s%s", format_count(snap.parameters).c_str(),
                snap.model_ready ? "" : " (not built yet)");
  else
    ImGui::TextDisabled("Parameters: built when training starts");

  const bool locked = engine_busy(snap);
  std::string invalid;
  try {
    validate(ui.edit, "editor");
  } catch (const std::exception& e) {
    invalid = e.what();
  }
  const bool dirty = !same_model(ui.edit, snap.config);
  ImGui::BeginDisabled(locked || !dirty || !invalid.empty());
  const bool apply = ImGui::Button("Apply");
  track_item(ui, "Apply", !locked && dirty && invalid.empty());
  ImGui::SameLine();
  const bool revert = ImGui::Button("Revert");
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::BeginDisabled(locked || !snap.model_ready);
  const bool reset = ImGui::Button("New run");
  ImGui::EndDisabled();
  help_marker(
      "Drops the model: the next Train starts from fresh weights in a new run folder "
      "(as the Training panel's New run).");
  if (apply) ctx.actions.apply_config(snap);
  if (revert) ui.engine_config_yaml.clear();  // re-adopt the engine's config next frame
  if (reset) ctx.actions.new_run(snap);

  if (locked) dim_text("Locked while the worker is busy.");
  error_text(invalid);
  if (ui.config_sender != Panel::Dataset) job_outcome(ui, snap, JobKind::Config, Panel::Model);
  if (dirty && invalid.empty()) {
    if (discards_model(snap, ui.edit))
      ImGui::TextColored(ImColor(kColorWarning).Value,
                         has_unsaved_training(snap)
                             ? "Applying starts a new model (you will be asked to save this one)."
                             : "Applying starts a new model (this one stays in its run folder).");
    else
      dim_text("Edited: Apply (or Train) to use these settings.");
  }
  ImGui::Separator();
  ImGui::BeginDisabled(locked);
  ImGui::PushItemWidth(ImGui::GetFontSize() * 9.0f);
  ModelConfig& m = ui.edit.model;
  DiffusionConfig& d = ui.edit.diffusion;
  if (ImGui::CollapsingHeader("Network", ImGuiTreeNodeFlags_DefaultOpen)) {
    enum_combo("Kind", &m.kind);
    help_marker("unet: the DDPM U-Net for images. mlp: a small residual MLP for 2-D points.");
    if (m.kind == ModelKind::UNet) {
      draw_unet_fields(ui);
    } else {
      ImGui::InputInt("Hidden width", &m.mlp_hidden, 16, 64);
      m.mlp_hidden = std::clamp(m.mlp_hidden, 8, 2048);
      help_marker("Units per hidden layer of the MLP denoiser.");
      ImGui::SliderInt("Hidden layers", &m.mlp_layers, 1, 8);
    }
    enum_combo("Activation", &m.activation);
    help_marker("Non-linearity in every block; SiLU (swish) is the DDPM choice.");
    enum_combo("Init", &m.init);
    help_marker("Weight initialisation: LibTorch's default, Xavier/Glorot, or He/Kaiming.");
    ImGui::Checkbox("Zero-init last layers", &m.zero_init_last);
    help_marker("Start each residual block (and the output) at zero so the untrained network "
                "starts as the identity: more stable early training.");
    ImGui::Checkbox("Class conditioning", &m.class_conditional);
    help_marker("Feed the class label in with the time embedding; enables classifier-free "
                "guidance at sampling time.");
    if (m.class_conditional) {
      ImGui::InputInt("Classes", &m.num_classes, 1, 10);
      m.num_classes = std::clamp(m.num_classes, 1, 1000);
    }
  }
  if (ImGui::CollapsingHeader("Diffusion", ImGuiTreeNodeFlags_DefaultOpen)) {
    if (enum_combo("Objective", &d.objective) && d.objective != Objective::Ddpm) {
      // The DDPM-only settings the other objectives reject (core/config/config.cpp).
      d.prediction = Prediction::Eps;
      d.learn_sigma = false;
      d.loss = LossKind::Simple;
      ui.edit.train.timestep_sampler = TimestepSamplerKind::Uniform;
      if (d.objective == Objective::Edm) d.loss_weighting = LossWeighting::Uniform;
    }
    help_marker("ddpm: the discrete noising chain below (Ho et al. 2020). edm: x = x₀ + σ ε "
                "with Karras et al.'s (2022) preconditioning and log-normal σ; sample with "
                "heun, euler, euler_ancestral or dpmpp_2m. flow_matching: x_t = (1−t) x₀ + t ε, "
                "the network predicts the velocity ε − x₀ (Lipman et al. 2022, Liu et al. "
                "2022); sample with euler or heun. README, \"Objectives\".");
    ImGui::BeginDisabled(d.objective == Objective::Edm);
    enum_combo("Loss weighting", &d.loss_weighting);
    ImGui::EndDisabled();
    if (d.loss_weighting == LossWeighting::MinSnr) {
      float gamma = static_cast<float>(d.min_snr_gamma);
      if (ImGui::InputFloat("γ (min-SNR)", &gamma, 0.0f, 0.0f, "%.3g"))
        d.min_snr_gamma = std::max(gamma, 1e-3f);
    }
    help_marker("min_snr: each example's loss weighted so that it counts as min(SNR, γ) times "
                "its x₀ error (Hang et al. 2023; γ = 5): ε gets min(SNR,γ)/SNR, x₀ min(SNR,γ), "
                "v min(SNR,γ)/(SNR+1). edm has its own weight λ(σ).");
    if (d.objective == Objective::FlowMatching) {
      enum_combo("t draws", &d.flow_t_sampling);
      help_marker("uniform t, or logit-normal: t = sigmoid(u), u ~ N(0, 1) (Esser et al. 2024).");
    }
    ImGui::BeginDisabled(d.objective != Objective::Ddpm);
    enum_combo("Schedule", &d.schedule);
    help_marker("How β_t grows with t; compare them in the Schedule panel.");
    ImGui::InputInt("Timesteps T", &d.timesteps, 50, 200);
    d.timesteps = std::clamp(d.timesteps, 2, 10000);
    help_marker("Number of noising steps the model is trained on.");
    enum_combo("Predicts", &d.prediction);
    help_marker("What the network outputs: the noise ε (DDPM), the clean image x₀, or "
                "v = √ᾱ ε − √(1−ᾱ) x₀ (Salimans & Ho 2022).");
    if (ImGui::Checkbox("Learned variance", &d.learn_sigma) && !d.learn_sigma) d.loss = LossKind::Simple;
    help_marker("The network also outputs v per pixel; the step variance is exp(f log β_t + "
                "(1−f) log β̃_t) with f = (v+1)/2 (Nichol & Dhariwal 2021, eq. 15). Trained by "
                "the hybrid loss; sample with DDPM, variance 'learned'.");
    ImGui::BeginDisabled(!d.learn_sigma);
    enum_combo("Loss", &d.loss);
    ImGui::EndDisabled();
    help_marker("simple: ‖ε − ε̂‖² (Ho et al. 2020). hybrid: L_simple + λ L_vlb with the mean "
                "detached in the VLB term (Nichol & Dhariwal 2021, eq. 16); needs a learned variance.");
    float lambda = static_cast<float>(d.vlb_weight);
    ImGui::BeginDisabled(d.loss != LossKind::Hybrid);
    if (ImGui::InputFloat("λ (VLB weight)", &lambda, 0.0f, 0.0f, "%.4g")) d.vlb_weight = std::max(lambda, 0.0f);
    ImGui::EndDisabled();
    help_marker("Weight of L_vlb = L_0 + … + L_{T−1} in bits/dim; 0.001 is the paper's value, "
                "which equals improved-diffusion's per-t scaling by T/1000.");
    enum_combo("t sampling", &ui.edit.train.timestep_sampler);
    help_marker("uniform: every t equally often. loss_aware: p_t ∝ √E[L_t²] over the last 10 "
                "losses at each t, mixed with a little uniform, each loss weighted by 1/(T p_t) "
                "(Nichol & Dhariwal 2021, §3.3); uniform until every t has 10 losses.");
    ImGui::EndDisabled();  // the DDPM-only settings
    if (enum_combo("Precision", &ui.edit.train.precision)) ui.edit.sample.precision = ui.edit.train.precision;
    help_marker("Arithmetic of the network, for training and sampling. fp32: float32. bf16: "
                "convolutions, linear layers and attention products in bfloat16 (weights, "
                "optimizer, EMA, normalisation and loss stay float32). auto: measures both once "
                "on this machine and network and takes bf16 only when it is faster and close to "
                "fp32; the log says what it measured.");
  }
  ImGui::PopItemWidth();
  ImGui::EndDisabled();
}

}  // namespace difflab
