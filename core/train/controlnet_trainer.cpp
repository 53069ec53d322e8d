#include "core/train/controlnet_trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "core/diffusion/gaussian_diffusion.h"
#include "core/diffusion/objectives.h"
#include "core/model/hashed_dropout.h"
#include "core/train/checkpoint_io.h"
#include "core/train/lr_schedule.h"
#include "core/train/step_undo.h"
#include "core/vision/canny.h"
#include "core/vision/scribble.h"

namespace difflab {
namespace {

// Offset of the evaluation seed from the training seed (fixed t, noise and hints).
constexpr uint64_t kEvalSeedOffset = 0x5eed;
// Relative difference of weight fingerprints that still counts as the same base.
constexpr double kFingerprintTolerance = 1e-9;

// The error of a non-finite step (`step` = the step it would have been).
TrainingError nonfinite_step(double loss, double grad_norm, int64_t step) {
  return TrainingError(nonfinite_step_message("ControlNet ", loss, grad_norm, step,
                                              "a lower controlnet.lr or controlnet.grad_clip"));
}

// Throws unless `actual` (the fingerprint of the base at `base_path`) is the one the
// ControlNet checkpoint at `path` recorded when it was trained.
void check_base_fingerprint(torch::serialize::InputArchive& archive, const std::string& path,
                            double actual, const std::string& base_path, int64_t base_step) {
  torch::Tensor fingerprint;
  if (!archive.try_read("base_fingerprint", fingerprint) || fingerprint.numel() != 1)
    throw CheckpointError("ControlNet " + path + ": missing entry 'base_fingerprint'");
  const double expected = fingerprint.item<double>();
  if (std::abs(actual - expected) > kFingerprintTolerance * std::max(1.0, std::abs(expected)))
    throw CheckpointError("ControlNet " + path + " was trained on other base weights than " +
                          base_path + " holds (step " + std::to_string(base_step) +
                          "; the ControlNet was trained on step " +
                          std::to_string(read_int(archive, "base_step", path)) + ")");
}

}  // namespace

HintMapOptions hint_map_options(const ControlNetConfig& cn, HintKind kind) {
  HintMapOptions options;
  options.canny.low = cn.canny_low;
  options.canny.high = cn.canny_high;
  if (!hint_is_lines(kind)) options.threshold = cn.mask_threshold;
  return options;
}

at::Tensor make_hint(const at::Tensor& map, HintKind kind) {
  if (map.dim() != 4 || map.size(1) != 1)
    throw std::invalid_argument("make_hint: needs a (B, 1, H, W) map");
  auto hint = torch::zeros({map.size(0), kHintChannels, map.size(2), map.size(3)},
                           map.options().dtype(torch::kFloat32));
  hint.narrow(1, hint_plane(kind), 1).copy_(map);
  return hint;
}

at::Tensor hint_from_picture(const at::Tensor& gray, HintKind kind, const HintMapOptions& options) {
  torch::NoGradGuard no_grad;
  const HintKind k = kind == HintKind::Mixed ? HintKind::Canny : kind;
  return make_hint(hint_map(gray, k, options), k);
}

at::Tensor make_training_hints(const at::Tensor& images, const ControlNetConfig& cn,
                               at::Generator& gen) {
  torch::NoGradGuard no_grad;
  const auto unit = ((images + 1.0) * 0.5).clamp(0.0, 1.0);
  const HintKind kind = cn.hint;
  if (kind == HintKind::Scribble) return make_hint(synthesize_scribbles(unit, gen), kind);
  const auto gray = to_gray(unit);
  if (kind != HintKind::Mixed) return make_hint(hint_map(gray, kind, hint_map_options(cn, kind)), kind);
  // Mixed: canny or scribble, one of the two per image.
  const auto edges = canny(gray, hint_map_options(cn, HintKind::Canny).canny);
  const auto strokes = synthesize_scribbles(unit, gen);
  const auto pick_canny =
      (torch::rand({images.size(0)}, gen, torch::kFloat32) < 0.5).to(images.device())
          .view({-1, 1, 1, 1});
  const auto zeros = torch::zeros_like(edges);
  return make_hint(torch::where(pick_canny, edges, zeros), HintKind::Canny) +
         make_hint(torch::where(pick_canny, zeros, strokes), HintKind::Scribble);
}

double weights_fingerprint(const torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  double sum = 0.0;
  int64_t k = 0;
  for (const auto& p : module.parameters()) {
    // Σ w_i (1 + i mod 13) (k + 1): any change of any weight moves it.
    const auto w = p.detach().to(torch::kCPU, torch::kDouble).flatten();
    const auto pattern = torch::arange(w.numel(), torch::kDouble).remainder(13.0).add(1.0);
    sum += (w * pattern).sum().item<double>() * static_cast<double>(++k);
  }
  return sum;
}

struct ControlNetTrainer::Impl {
  Config config;
  std::shared_ptr<const DatasetSplits> data;
  c10::Device device;
  std::string base_path;
  CheckpointInfo base_info;
  double base_fingerprint = 0.0;
  DenoiserNet base;
  ControlNet control;
  std::unique_ptr<GaussianDiffusion> diffusion;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  at::Generator gen;
  std::unique_ptr<BatchSampler> batches;
  int64_t step = 0;

  // Deferred read-back (controlnet.loss_read_every > 1, the default on CUDA), as in the
  // Trainer: the steps whose loss and gradient norm wait on the device, the run as it was
  // before the first of them, and the results read and not yet taken.
  struct Unread {
    int64_t step = 0;  // steps done after it
    double lr = 0.0;
    at::Tensor values;  // (2) on the device: loss, gradient norm
  };
  struct Restore {
    at::Tensor rng;
    int64_t epoch = 0, position = 0, step = 0;
    AdamWSnapshot weights;  // the ControlNet's and its AdamW state
  };
  std::vector<Unread> unread;
  std::optional<Restore> restore_point;
  MeasuredSteps<ControlNetStepResult> measured;  // read, not yet taken

  Impl(std::shared_ptr<const DatasetSplits> d, c10::Device dev)
      : data(std::move(d)), device(dev) {}

  int read_every() const {
    if (measured.replaying()) return 1;
    const int n = config.controlnet.loss_read_every;
    return n > 0 ? n : (device.is_cuda() ? 16 : 1);
  }

  Restore here() const {
    return Restore{gen.get_state(), batches->epoch(), batches->position(), step,
                   take_snapshot(control->parameters(), *optimizer)};
  }
  // Weights, AdamW state, generator, batch position and step count as in `r`.
  void go_back(const Restore& r) {
    restore_snapshot(r.weights, control->parameters(), *optimizer);
    gen.set_state(r.rng);
    batches->set_state(r.epoch, r.position);
    step = r.step;
  }
  // A loaded checkpoint replaces the run: its unread steps and results are not its own.
  void forget_unread() {
    unread.clear();
    restore_point.reset();
    measured.clear();
  }

  double lr_at(int64_t s) const {
    const auto& c = config.controlnet;
    return LrSchedule{c.lr, c.warmup_steps, c.lr_schedule, c.lr_min, c.steps}.at(s);
  }

  // x_t, model timesteps, labels (with dropout when `drop` is defined) and the target.
  struct Batch {
    at::Tensor xt, model_t, y, hint, target;
  };
  Batch make_batch(const TensorDataset& set, const at::Tensor& idx, at::Generator& g,
                   bool label_dropout) {
    auto x0 = gather_batch(set, idx);
    const int64_t b = x0.size(0);
    const auto& d = config.diffusion;
    const Objective objective = d.objective;
    // DDPM draws t then ε (as before the other objectives existed); EDM its σ and flow
    // matching its t after ε, as the Trainer does.
    auto t = objective == Objective::Ddpm ? torch::randint(0, diffusion->num_steps(), {b}, g, torch::kLong)
                                          : at::Tensor();
    auto noise = torch::randn(x0.sizes(), g, torch::kFloat32);
    at::Tensor level;  // EDM: σ; flow matching: t (continuous objectives)
    if (objective == Objective::Edm) level = edm_sigmas(d, torch::randn({b}, g, torch::kFloat32));
    if (objective == Objective::FlowMatching) level = flow_times(d, b, g);
    Batch out;
    if (base->num_classes() > 0) {
      out.y = set.labels.index_select(0, idx);
      if (label_dropout) {
        auto drop = torch::rand({b}, g, torch::kFloat32) < config.controlnet.p_uncond;
        out.y = torch::where(drop, torch::full_like(out.y, base->num_classes()), out.y);
      }
      out.y = out.y.to(device);
    }
    x0 = x0.to(device);
    noise = noise.to(device);
    const auto& c = config.controlnet;
    out.hint = make_training_hints(x0, c, g);
    if (objective == Objective::Ddpm) {
      t = t.to(device);
      out.xt = diffusion->q_sample(x0, t, noise);
      out.model_t = diffusion->model_timesteps(t);
      out.target = diffusion->training_target(x0, t, noise);
      return out;
    }
    // The base's own objective: the ControlNet learns to steer what the base predicts.
    const ObjectiveBatch ob = objective == Objective::Edm
                                  ? edm_training_batch(d, x0, noise, level.to(device))
                                  : flow_training_batch(d, x0, noise, level.to(device));
    out.xt = ob.input;
    out.model_t = ob.net_time;
    out.target = ob.target;
    return out;
  }

  at::Tensor predict(const Batch& b, double scale) {
    std::vector<at::Tensor> residuals;
    if (scale != 0.0) {
      residuals = control->forward(b.xt, b.model_t, b.y, b.hint);
      if (scale != 1.0)
        for (auto& r : residuals) r = r * scale;
    }
    return split_model_output(base->forward_controlled(b.xt, b.model_t, b.y, residuals),
                              config.diffusion.learn_sigma)
        .prediction;
  }
};

ControlNetTrainer::ControlNetTrainer(const Config& config,
                                     std::shared_ptr<const DatasetSplits> data,
                                     c10::Device device) {
  if (!data || data->train.size() == 0)
    throw TrainingError("ControlNet training needs a non-empty dataset");
  const auto& cn = config.controlnet;
  if (cn.base_checkpoint.empty())
    throw TrainingError("controlnet.base_checkpoint is empty: name the trained base model "
                        "(a difflab-cli train checkpoint, e.g. runs/mnist/checkpoints/latest)");
  m = std::make_unique<Impl>(std::move(data), device);
  m->base_path = cn.base_checkpoint;
  m->base = load_checkpoint_model(m->base_path, /*use_ema=*/true, device, &m->base_info);
  const auto& shape = m->data->shape;
  const auto& bs = m->base_info.shape;
  if (bs.channels != shape.channels || bs.height != shape.height || bs.width != shape.width ||
      bs.points != shape.points)
    throw TrainingError("base checkpoint " + m->base_path +
                        " was trained on data of another shape than this dataset");
  if (shape.points) throw TrainingError("a ControlNet needs image data, not 2-D points");
  // The base defines the network and the diffusion; this run adds its controlnet section.
  m->config = m->base_info.config;
  m->config.controlnet = cn;
  m->config.data = config.data;
  validate(m->config, "ControlNet config");
  m->base->eval();  // frozen: no dropout, no gradients for its weights
  for (auto& p : m->base->parameters()) p.set_requires_grad(false);
  m->base_fingerprint = weights_fingerprint(*m->base);

  torch::manual_seed(cn.seed);
  m->control = make_controlnet(m->config.model, m->base_info.shape);
  m->control->copy_encoder_from(*m->base);
  m->control->to(device);
  m->diffusion = std::make_unique<GaussianDiffusion>(
      NoiseSchedule::named(m->config.diffusion.schedule, m->config.diffusion.timesteps),
      m->config.diffusion.prediction, device);
  m->optimizer = std::make_unique<torch::optim::AdamW>(
      m->control->parameters(), torch::optim::AdamWOptions(cn.lr).weight_decay(0.0));
  m->gen = at::make_generator<at::CPUGeneratorImpl>(cn.seed);
  m->batches = std::make_unique<BatchSampler>(m->data->train.size(), cn.batch_size, cn.seed);
}

ControlNetTrainer::~ControlNetTrainer() = default;

ControlNetStepResult ControlNetTrainer::train_step() {
  auto& s = *m;
  const bool deferred = s.read_every() > 1;
  // The generator and batch position before the step: a step that fails goes back to them,
  // so a retry or a checkpoint written then starts from exactly the last good step.
  const at::Tensor rng = s.gen.get_state();
  const int64_t epoch = s.batches->epoch(), position = s.batches->position();
  if (deferred && s.unread.empty()) s.restore_point = s.here();
  s.control->train();
  set_dropout_seed(static_cast<uint64_t>(
      torch::randint(0, int64_t{1} << 62, {1}, s.gen, torch::kLong).item<int64_t>()));
  const auto batch = s.make_batch(s.data->train, s.batches->next(), s.gen, /*label_dropout=*/true);
  auto loss = s.diffusion->simple_loss(s.predict(batch, 1.0), batch.target).mean();
  s.optimizer->zero_grad();
  loss.backward();
  // The gradient norm stays on the device, and is read with the loss in one transfer: every
  // step on the CPU, every loss_read_every steps on CUDA (the NaN check moves with it).
  const auto grad_norm =
      clip_grad_norm_on_device(s.control->parameters(), s.config.controlnet.grad_clip);
  const auto values = torch::stack({loss.detach(), grad_norm.to(loss.scalar_type())});
  const double lr = s.lr_at(s.step);
  const auto update = [&] {
    for (auto& group : s.optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    s.optimizer->step();
    ++s.step;
  };
  if (deferred) {
    update();
    s.unread.push_back(Impl::Unread{s.step, lr, values});
    if (static_cast<int>(s.unread.size()) >= s.read_every()) {
      read_back();  // throws on a non-finite step
      return s.measured.back();
    }
    ControlNetStepResult r;
    r.step = s.step;
    r.lr = lr;
    r.loss = r.grad_norm = std::nan("");
    r.measured = false;
    return r;
  }
  const auto host = values.to(torch::kCPU, torch::kDouble);
  const double loss_value = host[0].item<double>(), norm = host[1].item<double>();
  if (!std::isfinite(loss_value) || !std::isfinite(norm)) {
    s.optimizer->zero_grad();
    s.gen.set_state(rng);
    s.batches->set_state(epoch, position);
    throw nonfinite_step(loss_value, norm, s.step + 1);
  }
  update();
  const ControlNetStepResult r{s.step, loss_value, lr, norm};
  s.measured.keep(r);
  return r;
}

void ControlNetTrainer::read_back() {
  auto& s = *m;
  if (s.unread.empty()) return;
  std::vector<at::Tensor> rows;
  for (const auto& u : s.unread) rows.push_back(u.values);
  const auto host = torch::stack(rows).to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = host.data_ptr<double>();
  size_t bad = s.unread.size();
  for (size_t i = 0; i < s.unread.size(); ++i) {
    if (!std::isfinite(v[2 * i]) || !std::isfinite(v[2 * i + 1])) {
      bad = i;
      break;
    }
    s.measured.keep({s.unread[i].step, v[2 * i], s.unread[i].lr, v[2 * i + 1]});
  }
  const bool failed = bad < s.unread.size();
  const int64_t bad_step = failed ? s.unread[bad].step : 0;
  s.unread.clear();
  Impl::Restore from = std::move(*s.restore_point);
  s.restore_point.reset();
  if (!failed) return;
  // Back to before the group, then its good steps again, each read at once: the run is
  // then exactly where reading every step would have stopped it.
  s.go_back(from);
  s.measured.redo(bad, [this] { train_step(); }, [&s] { return s.step; });
  throw nonfinite_step(v[2 * bad], v[2 * bad + 1], bad_step);
}

std::vector<ControlNetStepResult> ControlNetTrainer::take_measured() {
  return m->measured.take();
}

int ControlNetTrainer::loss_read_every() const { return m->read_every(); }

double ControlNetTrainer::evaluate(int batches, double scale) {
  auto& s = *m;
  torch::NoGradGuard no_grad;
  EvalModeGuard base_mode(s.base);
  const bool was_training = s.control->is_training();
  s.control->eval();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(s.config.controlnet.seed + kEvalSeedOffset);
  const int64_t n = s.data->test.size();
  double total = 0.0;
  int64_t count = 0;
  const int64_t bs = std::min<int64_t>(s.config.controlnet.batch_size, n);
  for (int i = 0; i < batches && n > 0; ++i) {
    const int64_t start = (i * bs) % n;
    const int64_t len = std::min(bs, n - start);
    const auto batch = s.make_batch(s.data->test, torch::arange(start, start + len, torch::kLong),
                                    gen, /*label_dropout=*/false);
    total += s.diffusion->simple_loss(s.predict(batch, scale), batch.target).sum().item<double>();
    count += len;
  }
  s.control->train(was_training);
  return count ? total / static_cast<double>(count) : std::nan("");
}

void ControlNetTrainer::save(const std::string& path) {
  read_back();  // only checked steps go into a checkpoint
  const auto& s = *m;
  torch::serialize::OutputArchive archive;
  write_checkpoint_kind(archive, CheckpointKind::ControlNet);
  archive.write("config", c10::IValue(config_to_yaml(s.config)));
  write_shape(archive, s.base_info.shape);
  archive.write("step", c10::IValue(s.step));
  archive.write("base_checkpoint", c10::IValue(s.base_path));
  archive.write("base_step", c10::IValue(s.base_info.step));
  archive.write("base_fingerprint", torch::tensor({s.base_fingerprint}, torch::kDouble));
  write_module_weights(archive, "controlnet", *s.control);
  torch::serialize::OutputArchive opt(archive.compilation_unit());
  s.optimizer->save(opt);
  archive.write("optimizer", opt);
  archive.write("rng", s.gen.get_state());
  archive.write("epoch", c10::IValue(s.batches->epoch()));
  archive.write("position", c10::IValue(s.batches->position()));
  save_archive_atomic(archive, path);
}

bool ControlNetTrainer::resume(const std::string& path) {
  auto& s = *m;
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::ControlNet);
  check_base_fingerprint(archive, path, s.base_fingerprint, s.base_path, s.base_info.step);
  const int64_t step = read_checkpoint_info(archive, path).step;
  auto control = make_controlnet(s.config.model, s.base_info.shape);
  // A ControlNet from before the Hough, mask and distance planes gets zero weights for them;
  // its optimizer state no longer fits, so it continues as from a file of weights alone
  // (a fresh optimizer, this run's RNG and batch position).
  const bool widened = load_module(archive, "controlnet", *control, path, {kHintInputWeight}) > 0;
  control->to(s.device);
  auto optimizer = std::make_unique<torch::optim::AdamW>(
      control->parameters(), torch::optim::AdamWOptions(s.config.controlnet.lr).weight_decay(0.0));
  torch::Tensor rng;
  const bool complete = !widened && archive.try_read("rng", rng);
  int64_t epoch = 0, position = 0;
  if (complete) {
    try {
      torch::serialize::InputArchive opt;
      archive.read("optimizer", opt);
      optimizer->load(opt);
    } catch (const c10::Error& e) {
      throw CheckpointError("ControlNet " + path + ": optimizer state unreadable: " +
                            std::string(e.what_without_backtrace()).substr(0, 200));
    }
    epoch = read_int(archive, "epoch", path);
    position = read_int(archive, "position", path);
  }
  s.forget_unread();
  s.control = control;
  s.optimizer = std::move(optimizer);
  if (complete) {
    s.gen.set_state(rng);
    s.batches->set_state(epoch, position);
  }
  s.step = step;
  return complete;
}

int64_t ControlNetTrainer::step() const { return m->step; }
const Config& ControlNetTrainer::config() const { return m->config; }
DenoiserNet ControlNetTrainer::base() const { return m->base; }
ControlNet ControlNetTrainer::controlnet() const { return m->control; }
int64_t ControlNetTrainer::parameter_count() const { return count_parameters(*m->control); }

LoadedControlNet load_controlnet(const std::string& path, c10::Device device,
                                 const std::string& base_override) {
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::ControlNet);
  LoadedControlNet out;
  out.path = path;
  const CheckpointInfo info = read_checkpoint_info(archive, path);
  out.config = info.config;
  out.step = info.step;
  std::string stored_base = read_string(archive, "base_checkpoint", path);
  // An exported ControlNet (core/train/export.h) names its base relative to its own
  // folder, so the pair moves together.
  c10::IValue exported;
  if (archive.try_read("exported", exported) && std::filesystem::path(stored_base).is_relative())
    stored_base = (std::filesystem::path(path).parent_path() / stored_base).lexically_normal().string();
  out.base_path = base_override.empty() ? stored_base : base_override;
  if (!std::filesystem::exists(out.base_path))
    throw CheckpointError("ControlNet " + path + " belongs to the base model " + out.base_path +
                          ", which does not exist (pass the base's new path)");
  out.base = load_checkpoint_model(out.base_path, /*use_ema=*/true, device, &out.base_info);
  check_base_fingerprint(archive, path, weights_fingerprint(*out.base), out.base_path,
                         out.base_info.step);
  out.net = make_controlnet(out.base_info.config.model, out.base_info.shape);
  load_module(archive, "controlnet", *out.net, path, {kHintInputWeight});
  out.net->to(device);
  out.net->eval();
  return out;
}

LoadedControlNet load_controlnet_onto(const std::string& path, DenoiserNet base,
                                      const CheckpointInfo& base_info, const std::string& base_label,
                                      c10::Device device) {
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::ControlNet);
  LoadedControlNet out;
  out.path = path;
  const CheckpointInfo info = read_checkpoint_info(archive, path);
  out.config = info.config;
  out.step = info.step;
  out.base_path = base_label;
  check_base_fingerprint(archive, path, weights_fingerprint(*base), base_label, base_info.step);
  out.base = std::move(base);
  out.base_info = base_info;
  out.net = make_controlnet(base_info.config.model, base_info.shape);
  load_module(archive, "controlnet", *out.net, path, {kHintInputWeight});
  out.net->to(device);
  out.net->eval();
  return out;
}

SamplingModel sampling_model(const LoadedControlNet& control) {
  return sampling_model(control.base, control.base_info.config.diffusion, control.base_info.shape);
}

}  // namespace difflab
