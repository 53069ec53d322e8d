#include "core/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>

#include "core/diffusion/gaussian_diffusion.h"
#include "core/diffusion/objectives.h"
#include "core/diffusion/timestep_sampler.h"
#include "core/eval/noisy_classifier.h"
#include "core/model/conv_grad.h"
#include "core/model/hashed_dropout.h"
#include "core/model/precision.h"
#include "core/sampling/sampler_registry.h"
#include "core/train/checkpoint_io.h"
#include "core/train/distributed.h"
#include "core/train/lr_schedule.h"
#include "core/train/step_undo.h"
#include "core/util/device_copy.h"

namespace difflab {
namespace {

// How many recent (t, loss) pairs feed loss_by_timestep().
constexpr size_t kLossHistory = 4096;
// Steps whose per-example losses wait on the device before one read-back (the loss curve by
// timestep needs them, nothing during the step does).
constexpr size_t kReadbackEvery = 16;
// Offset of the evaluation seed from the training seed (fixed t and noise for test loss).
constexpr uint64_t kEvalSeedOffset = 0x5eed;

// The error of a non-finite step (`step` = the step it would have been).
TrainingError nonfinite_step(double loss, double grad_norm, int64_t step) {
  return TrainingError(
      nonfinite_step_message("", loss, grad_norm, step, "a lower train.lr or train.grad_clip"));
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(const DenoiserNet& net, const TrainConfig& c) {
  return std::make_unique<torch::optim::AdamW>(
      net->parameters(), torch::optim::AdamWOptions(c.lr)
                             .betas({c.adam_beta1, c.adam_beta2})
                             .weight_decay(c.weight_decay));
}

}  // namespace

// The host side of the run before a step: the generator and the batch position.
struct Trainer::HostState {
  at::Tensor rng;
  int64_t epoch = 0, position = 0;
};

struct Trainer::Impl {
  Config config;
  std::shared_ptr<const DatasetSplits> data;
  c10::Device device;
  std::shared_ptr<Distributed> dist;  // null or one rank: a single process
  GaussianDiffusion diffusion;
  DenoiserNet model, ema;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  at::Generator gen;
  BatchSampler batches;
  TimestepSampler timesteps;
  // ddpm with min-SNR-γ: the weight of each schedule row (T) on the device; else undefined.
  at::Tensor snr_weights;
  int64_t step = 0;
  // train.precision resolved on the first step (auto measures then), reset by a new config.
  std::optional<PrecisionChoice> precision;
  std::deque<std::pair<int, float>> recent;  // (t, per-example loss)
  // (t on the CPU, per-example L_simple on the device) of steps not yet read back.
  std::vector<std::pair<at::Tensor, at::Tensor>> pending;

  // Deferred read-back (train.loss_read_every > 1): the steps whose values wait on the
  // device, and the run as it was before the first of them, to go back to if one of them
  // turns out non-finite. Taking that copy once per read costs a few copies of the weights
  // every N steps; undoing a bad step on the device would cost them every step.
  struct Unread {
    int64_t step = 0;  // steps done after it
    double lr = 0.0;
    at::Tensor values;      // (5) on the device: loss, grad norm, loss, L_simple, L_vlb
    at::Tensor level, mse;  // its loss-by-timestep entry (t on the CPU, L_simple per example)
  };
  struct Restore {
    HostState host;
    int64_t step = 0;
    AdamWSnapshot weights;  // the model's and its AdamW state
    std::vector<at::Tensor> ema;
  };
  std::vector<Unread> unread;
  std::optional<Restore> restore_point;
  MeasuredSteps<StepResult> measured;  // read, not yet taken
  // A loaded checkpoint replaces the run: its unread steps and results are not its own.
  void forget_unread() {
    unread.clear();
    restore_point.reset();
    measured.clear();
  }

  int read_every() const {
    // Ranks agree on a NaN through a host all-reduce each step; the loss-aware sampler
    // learns from each step's losses before the next draw.
    if (measured.replaying() || dist || timesteps.kind() != TimestepSamplerKind::Uniform) return 1;
    const int n = config.train.loss_read_every;
    return n > 0 ? n : (device.is_cuda() ? 16 : 1);
  }

  StepResult result_of(const double* v, int64_t done, double lr, double allreduce_s) const {
    StepResult r{done, v[2], lr, v[1]};
    r.loss_simple = v[3];
    if (config.diffusion.loss == LossKind::Hybrid) r.loss_vlb = v[4];
    r.allreduce_s = allreduce_s;
    return r;
  }

  void save_restore_point(const HostState& host) {
    restore_point = Restore{host, step, take_snapshot(model->parameters(), *optimizer),
                            copy_tensors(ema->parameters())};
  }

  void go_back(const Restore& r) {
    restore_snapshot(r.weights, model->parameters(), *optimizer);  // as before the first step
    copy_back(r.ema, ema->parameters());
    gen.set_state(r.host.rng);
    batches.set_state(r.host.epoch, r.host.position);
    step = r.step;
  }
  void drain_pending() {
    if (pending.empty()) return;
    std::vector<at::Tensor> ts, ls;
    for (auto& [t, l] : pending) {
      ts.push_back(t);
      ls.push_back(l);
    }
    pending.clear();
    const auto tc = torch::cat(ts).contiguous();
    const auto lc = torch::cat(ls).to(torch::kCPU, torch::kFloat32).contiguous();
    const auto* tp = tc.data_ptr<int64_t>();
    const auto* lp = lc.data_ptr<float>();
    for (int64_t i = 0; i < tc.numel(); ++i) recent.emplace_back(static_cast<int>(tp[i]), lp[i]);
    while (recent.size() > kLossHistory) recent.pop_front();
  }

  Impl(Config c, std::shared_ptr<const DatasetSplits> d, c10::Device dev,
       std::shared_ptr<Distributed> group)
      : config(std::move(c)),
        data(std::move(d)),
        device(dev),
        dist(group && group->world_size() > 1 ? std::move(group) : nullptr),
        diffusion(NoiseSchedule::named(config.diffusion.schedule, config.diffusion.timesteps),
                  config.diffusion.prediction, dev),
        gen(at::make_generator<at::CPUGeneratorImpl>(config.train.seed)),
        batches(data->train.size(), config.train.batch_size * world(), config.train.seed),
        timesteps(config.train.timestep_sampler, config.diffusion.timesteps,
                  config.train.timestep_uniform_mix) {
    const auto& dc = config.diffusion;
    if (dc.objective == Objective::Ddpm && dc.loss_weighting == LossWeighting::MinSnr)
      snr_weights = torch::tensor(min_snr_weights(diffusion.schedule(), dc.prediction,
                                                  dc.min_snr_gamma),
                                  torch::kFloat64)
                        .to(dev, torch::kFloat32);
  }

  int64_t world() const { return dist ? dist->world_size() : 1; }
  int64_t rank() const { return dist ? dist->rank() : 0; }
  bool conditional() const { return model->num_classes() > 0; }
  Objective objective() const { return config.diffusion.objective; }

  // What the network sees and is regressed on for one batch, for every objective: the
  // DDPM rows t (drawn by the caller's timestep sampler) or EDM's σ / flow matching's t,
  // drawn here from `g`. `weight` (B): min-SNR or EDM's λ c_out² (1 for uniform DDPM).
  // Data-parallel: σ or t are drawn for all `drawn` rows of the global batch and this
  // rank's B rows from `first` on are used.
  ObjectiveBatch objective_batch(const at::Tensor& x0, const at::Tensor& noise,
                                 const at::Tensor& t_rows, at::Generator& g, int64_t drawn,
                                 int64_t first) const {
    const auto& d = config.diffusion;
    const int64_t b = x0.size(0);
    switch (objective()) {
      case Objective::Edm:
        return edm_training_batch(
            d, x0, noise,
            edm_sigmas(d, torch::randn({drawn}, g, torch::kFloat32)).slice(0, first, first + b));
      case Objective::FlowMatching:
        return flow_training_batch(d, x0, noise,
                                   flow_times(d, drawn, g).slice(0, first, first + b));
      default: {
        ObjectiveBatch b;
        const auto t_dev = to_device(t_rows, device);
        b.input = diffusion.q_sample(x0, t_dev, noise);
        b.net_time = diffusion.model_timesteps(t_dev);
        b.target = diffusion.training_target(x0, t_dev, noise);
        b.weight = snr_weights.defined() ? snr_weights.index_select(0, t_dev)
                                         : torch::ones({x0.size(0)}, x0.options());
        b.level = t_rows;
        return b;
      }
    }
  }
  bool learn_sigma() const { return config.diffusion.learn_sigma; }

  double lr_at(int64_t s) const {
    const auto& t = config.train;
    return LrSchedule{t.lr, t.warmup_steps, t.lr_schedule, t.lr_min, t.steps}.at(s);
  }

  // The step's AdamW update at its learning rate, then the EMA; returns the rate.
  double apply_update() {
    const double lr = lr_at(step);
    for (auto& group : optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer->step();
    ++step;
    update_ema();
    return lr;
  }

  void update_ema() {
    torch::NoGradGuard no_grad;
    auto src = model->parameters();
    auto dst = ema->parameters();
    if (step <= config.train.ema_start) {
      for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
      return;
    }
    const double d = config.train.ema_decay;
    for (size_t i = 0; i < src.size(); ++i) dst[i].mul_(d).add_(src[i], 1.0 - d);
  }
};

Trainer::Trainer(Config config, std::shared_ptr<const DatasetSplits> data, c10::Device device,
                 std::shared_ptr<Distributed> dist) {
  if (!data || data->train.size() == 0) throw TrainingError("training needs a non-empty dataset");
  if (config.model.class_conditional) {
    if (data->shape.num_classes < 1)
      throw TrainingError("model.class_conditional is on, but the dataset has no labels");
    config.model.num_classes = data->shape.num_classes;
  }
  validate(config, "training config");
  // A preset's sampler may not apply to the objective (configs/mnist.yaml says ddim; with
  // --set diffusion.objective=edm it cannot run): previews, and `sample` from the checkpoints
  // (which keep this config), then use the objective's default sampler.
  if (!sampler_applies(config.sample.sampler, config.diffusion.objective))
    config.sample.sampler = default_sampler(config.diffusion.objective);
  m = std::make_unique<Impl>(std::move(config), std::move(data), device, std::move(dist));
  if (m->world() > 1 && m->data->train.size() < m->config.train.batch_size * m->world())
    throw TrainingError("the global batch (" + std::to_string(m->config.train.batch_size) +
                        " × " + std::to_string(m->world()) + " ranks) is larger than the " +
                        std::to_string(m->data->train.size()) + " training images");
  {
    // Initial weights depend on train.seed alone (reproducible runs). They come from the
    // process-wide generator: trainers made on two threads at once (the ranks of a test,
    // the GUI's worker beside a tool) take turns.
    static std::mutex init_mutex;
    std::lock_guard<std::mutex> lock(init_mutex);
    torch::manual_seed(m->config.train.seed);
    m->model = make_model(m->config, m->data->shape);
    m->ema = make_model(m->config, m->data->shape);
  }
  m->model->to(device);
  m->ema->to(device);
  if (m->dist) {
    // Every rank starts from rank 0's weights (the seed already agrees; this also covers
    // ranks whose LibTorch initialises differently).
    torch::NoGradGuard no_grad;
    for (auto& p : m->model->parameters()) m->dist->broadcast(p);
    for (auto& b : m->model->buffers()) m->dist->broadcast(b);
  }
  copy_weights(*m->model, *m->ema);
  m->ema->eval();
  for (auto& p : m->ema->parameters()) p.set_requires_grad(false);
  m->optimizer = make_optimizer(m->model, m->config.train);
}

Trainer::~Trainer() = default;

StepResult Trainer::train_step() {
  auto& s = *m;
  // The generator and batch position before the step. A step that fails (a non-finite
  // loss or gradient, or a collective when another rank died) leaves the weights of the
  // last good step, and these go back with them: the run is exactly as after that step,
  // and a checkpoint written now resumes there.
  HostState before;
  before.rng = s.gen.get_state();
  before.epoch = s.batches.epoch();
  before.position = s.batches.position();
  try {
    return step_once(before);
  } catch (const DistributedError&) {
    s.gen.set_state(before.rng);
    s.batches.set_state(before.epoch, before.position);
    s.optimizer->zero_grad();
    throw;
  }
}

StepResult Trainer::step_once(HostState& before) {
  auto& s = *m;
  // Resolved before the step's draws: `auto` times a few passes (on rank 0 only) that must
  // not move this step's dropout counter.
  const bool bf16 = precision().chosen == Precision::Bf16;
  const bool deferred = s.read_every() > 1;
  if (deferred && s.unread.empty()) s.save_restore_point(before);
  s.model->train();
  // Every rank draws what one process training the whole global batch would draw (same
  // generator, same state) and keeps its own rows [first, first + b) of it.
  const int64_t world = s.world();
  // Dropout masks hash a seed drawn from this run's own generator, so every step is a
  // function of the run's RNG state alone and a resumed run repeats exactly what the
  // uninterrupted one would have done.
  const uint64_t dropout_seed = static_cast<uint64_t>(
      torch::randint(0, int64_t{1} << 62, {1}, s.gen, torch::kLong).item<int64_t>());
  const auto global_idx = s.batches.next();
  const int64_t drawn = global_idx.size(0);
  const int64_t b = drawn / world, first = s.rank() * b;
  const auto mine = [&](const at::Tensor& x) {
    return world > 1 ? x.slice(0, first, first + b) : x;
  };
  set_dropout_seed(dropout_seed, first);
  const auto idx = mine(global_idx);
  auto x0 = gather_batch(s.data->train, idx);
  const bool ddpm = s.objective() == Objective::Ddpm;
  // Uniform draws consume `gen` exactly as before the timestep samplers existed. The other
  // objectives draw their σ or t after the noise (objective_batch).
  const auto global_draw = ddpm ? s.timesteps.sample(drawn, s.gen)
                                : TimestepSampler::Draw{torch::zeros({drawn}, torch::kLong),
                                                        torch::ones({drawn}, torch::kFloat32)};
  const auto t = mine(global_draw.t);
  const auto draw_weights = mine(global_draw.weights);
  auto noise_shape = x0.sizes().vec();
  noise_shape[0] = drawn;
  auto noise = mine(torch::randn(noise_shape, s.gen, torch::kFloat32));
  at::Tensor y;
  if (s.conditional()) {
    y = s.data->train.labels.index_select(0, idx);
    // Label dropout: with probability p_uncond train on the null label (CFG).
    auto drop = mine(torch::rand({drawn}, s.gen, torch::kFloat32) < s.config.train.p_uncond);
    y = to_device(torch::where(drop, torch::full_like(y, s.model->num_classes()), y), s.device);
  }
  // Queued behind the previous step's work on CUDA: nothing in a step waits for the GPU.
  x0 = to_device(x0, s.device);
  noise = to_device(noise, s.device);
  const auto t_dev = to_device(t, s.device);

  const ObjectiveBatch batch = s.objective_batch(x0, noise, t, s.gen, drawn, first);
  const auto& xt = batch.input;
  // bf16: the network's matrix work under autocast; its output, the loss and everything
  // after it in float32 (the weights, gradients, AdamW state and EMA stay float32).
  at::Tensor raw;
  {
    PrecisionScope scope(bf16, s.device);
    raw = s.model->forward(xt, batch.net_time, y);
  }
  const auto out = split_model_output(bf16 ? raw.to(torch::kFloat32) : raw, s.learn_sigma());
  const auto mse = s.diffusion.simple_loss(out.prediction, batch.target);
  // The objective's weight: min-SNR-γ, EDM's λ(σ) c_out² (= 1), or 1.
  auto per_example = mse * batch.weight;
  at::Tensor vlb;
  if (s.config.diffusion.loss == LossKind::Hybrid) {
    // L_hybrid (Nichol & Dhariwal 2021, eq. 16): the VLB term sees the prediction
    // detached, so it trains only the variance; L_simple alone trains the mean. λ weighs
    // L_vlb = Σ_t L_t; one sampled t stands for the sum, hence λ·T (T/1000 for λ = 0.001).
    const auto p = s.diffusion.p_mean_variance({out.prediction.detach(), out.variance}, xt, t_dev,
                                               VarianceKind::Learned, /*clip=*/false);
    vlb = s.diffusion.vlb_terms_bpd(p, x0, xt, t_dev);
    per_example = per_example + (s.config.diffusion.vlb_weight * s.diffusion.num_steps()) * vlb;
  }
  // Importance weights 1/(T p_t) (all 1 for uniform t).
  auto loss = (per_example * to_device(draw_weights, s.device)).mean();
  s.optimizer->zero_grad();
  loss.backward();
  auto params = s.model->parameters();
  // Data-parallel: each rank's gradient is of the mean over its rows; their average is
  // the gradient of the mean over the global batch.
  const double allreduce_s = s.dist ? s.dist->average_gradients(params) : 0.0;
  // The gradient norm stays on the device (clip_grad_norm_ would read it back) ...
  const auto grad_norm_t = clip_grad_norm_on_device(params, s.config.train.grad_clip);
  // ... and is read with the loss and its parts in one transfer, the step's only one: the
  // NaN guard below needs it before the weights change.
  const auto zero = torch::zeros({}, loss.options());
  auto on_device = torch::stack({loss.detach(), grad_norm_t.to(loss.scalar_type()),
                                 per_example.detach().mean(), mse.detach().mean(),
                                 vlb.defined() ? vlb.detach().mean() : zero});
  if (deferred) {
    // The check moves to the read; a non-finite step is put right then (read_back).
    const double lr = s.apply_update();
    s.unread.push_back(Impl::Unread{s.step, lr, on_device, batch.level, mse.detach()});
    if (static_cast<int>(s.unread.size()) >= s.read_every()) {
      read_back();  // throws on a non-finite step
      return s.measured.back();
    }
    StepResult r;
    r.step = s.step;
    r.lr = lr;
    r.loss = r.grad_norm = r.loss_simple = std::nan("");
    r.measured = false;
    return r;
  }
  auto values = on_device.to(torch::kCPU, torch::kDouble);
  const bool loss_aware = s.timesteps.kind() != TimestepSamplerKind::Uniform;
  at::Tensor global_per_example;  // read back only when the sampler learns from it
  if (loss_aware) global_per_example = per_example.detach().to(torch::kCPU, torch::kDouble);
  if (s.dist) {
    // One all-reduce for the rest: the ranks' means (averaged) and, for the loss-aware
    // timestep sampler, every row's loss in its place in the global batch (summed). The
    // gradient norm is of the averaged gradients already: the same on every rank. A NaN
    // anywhere reaches every rank, so all stop at the same step.
    auto rows = torch::zeros({loss_aware ? drawn : 0}, torch::kDouble);
    if (loss_aware) rows.slice(0, first, first + b).copy_(global_per_example);
    auto shared = torch::cat({values, rows});
    s.dist->all_reduce_sum(shared);
    const double grad_norm_global = values[1].item<double>();
    values = shared.slice(0, 0, 5) / static_cast<double>(world);
    values[1] = grad_norm_global;
    if (loss_aware) global_per_example = shared.slice(0, 5);
  }
  const double* v = values.data_ptr<double>();
  const double loss_value = v[0], grad_norm = v[1];
  if (!std::isfinite(loss_value) || !std::isfinite(grad_norm)) {
    s.optimizer->zero_grad();
    s.gen.set_state(before.rng);
    s.batches.set_state(before.epoch, before.position);
    throw nonfinite_step(loss_value, grad_norm, s.step + 1);
  }
  const double lr = s.apply_update();

  // The loss-aware sampler learns from the unweighted per-example loss (as
  // improved-diffusion), each step; the uniform one needs nothing.
  if (loss_aware) s.timesteps.update(global_draw.t, global_per_example.to(torch::kFloat32));
  // Per-example losses for loss_by_timestep() wait on the device and are read in batches.
  if (!s.measured.replaying()) s.pending.emplace_back(batch.level, mse.detach());
  if (s.pending.size() >= kReadbackEvery) s.drain_pending();
  const StepResult r = s.result_of(v, s.step, lr, allreduce_s);
  s.measured.keep(r);
  return r;
}

void Trainer::read_back() {
  auto& s = *m;
  if (s.unread.empty()) return;
  std::vector<at::Tensor> rows;
  for (const auto& u : s.unread) rows.push_back(u.values);
  const auto host = torch::stack(rows).to(torch::kCPU, torch::kDouble).contiguous();
  const double* v = host.data_ptr<double>();
  size_t bad = s.unread.size();
  for (size_t i = 0; i < s.unread.size(); ++i) {
    const double* r = v + 5 * i;
    if (!std::isfinite(r[0]) || !std::isfinite(r[1])) {
      bad = i;
      break;
    }
    s.measured.keep(s.result_of(r, s.unread[i].step, s.unread[i].lr, 0.0));
    s.pending.emplace_back(s.unread[i].level, s.unread[i].mse);
  }
  const size_t good = bad;
  const bool failed = bad < s.unread.size();
  const int64_t bad_step = failed ? s.unread[bad].step : 0;
  s.unread.clear();
  Impl::Restore from = std::move(*s.restore_point);
  s.restore_point.reset();
  if (!failed) {
    if (s.pending.size() >= kReadbackEvery) s.drain_pending();
    return;
  }
  // Back to before the group, then its good steps again, each read at once: the run is
  // then exactly where reading every step would have stopped it (the same draws; on the
  // CPU the same bits).
  s.go_back(from);
  s.measured.redo(good, [this] { train_step(); }, [&s] { return s.step; });
  throw nonfinite_step(v[5 * bad], v[5 * bad + 1], bad_step);
}

std::vector<StepResult> Trainer::take_measured() {
  return m->measured.take();
}

int Trainer::loss_read_every() const { return m->read_every(); }

double Trainer::evaluate(int batches) {
  auto& s = *m;
  torch::NoGradGuard no_grad;
  s.ema->eval();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(s.config.train.seed + kEvalSeedOffset);
  const int64_t n = s.data->test.size();
  if (n == 0) return std::nan("");  // no test split (e.g. an image folder with test_fraction 0)
  const int64_t bs = std::min<int64_t>(s.config.train.batch_size, n);
  double total = 0.0;
  int64_t count = 0;
  for (int i = 0; i < batches; ++i) {
    const int64_t start = (i * bs) % n;
    const int64_t len = std::min(bs, n - start);
    auto idx = torch::arange(start, start + len, torch::kLong);
    auto x0 = gather_batch(s.data->test, idx);
    auto t = torch::randint(0, s.diffusion.num_steps(), {len}, gen, torch::kLong);
    auto noise = torch::randn(x0.sizes(), gen, torch::kFloat32);
    at::Tensor y;
    if (s.conditional()) y = s.data->test.labels.index_select(0, idx).to(s.device);
    x0 = x0.to(s.device);
    noise = noise.to(s.device);
    // The unweighted MSE of the objective's own target (L_simple for ddpm).
    const ObjectiveBatch batch = s.objective_batch(x0, noise, t, gen, len, 0);
    auto out = split_model_output(s.ema->forward(batch.input, batch.net_time, y), s.learn_sigma())
                   .prediction;
    total += s.diffusion.simple_loss(out, batch.target).sum().item<double>();
    count += len;
  }
  return count ? total / static_cast<double>(count) : std::nan("");
}

SampleResult Trainer::sample(const SampleConfig& sample, bool record_trajectory,
                             const StepCallback& callback) {
  const SamplingModel model = sampling_model(*this, sample.use_ema);
  SampleRequest request;
  request.config = sample;
  request.record_trajectory = record_trajectory;
  request.classifier = load_classifier_guidance(sample, model, m->device);
  request.guide = load_guide_model(sample, model, m->device);
  return run_sampling(model, request, m->device, callback);
}

SamplingModel sampling_model(const Trainer& trainer, bool ema) {
  return sampling_model(ema ? trainer.ema_model() : trainer.model(), trainer.config().diffusion,
                        trainer.data().shape);
}

void Trainer::save_checkpoint(const std::string& path) {
  read_back();  // only checked steps go into a checkpoint
  const auto& s = *m;
  torch::serialize::OutputArchive archive;
  write_checkpoint_kind(archive, CheckpointKind::Model);
  archive.write("config", c10::IValue(config_to_yaml(s.config)));
  write_shape(archive, s.data->shape);
  archive.write("step", c10::IValue(s.step));
  archive.write("epoch", c10::IValue(s.batches.epoch()));
  archive.write("position", c10::IValue(s.batches.position()));
  write_module_weights(archive, "model", *s.model);
  write_module_weights(archive, "ema", *s.ema);
  torch::serialize::OutputArchive opt(archive.compilation_unit());
  s.optimizer->save(opt);
  archive.write("optimizer", opt);
  archive.write("rng", s.gen.get_state());
  // The loss-aware sampler's history, so a resumed run draws the same t (absent in
  // checkpoints from before the samplers existed; loading those starts a fresh history).
  archive.write("timestep_sampler_history", s.timesteps.history());
  archive.write("timestep_sampler_counts", s.timesteps.counts());
  save_archive_atomic(archive, path);
}

void Trainer::load_checkpoint(const std::string& path) {
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::Model);
  load_checkpoint(archive, path);
}

void Trainer::load_checkpoint(torch::serialize::InputArchive& archive, const std::string& path) {
  auto& s = *m;
  const CheckpointInfo info = read_checkpoint_info(archive, path);
  const auto& shape = s.data->shape;
  if (info.shape.channels != shape.channels || info.shape.height != shape.height ||
      info.shape.width != shape.width || info.shape.points != shape.points ||
      info.shape.num_classes != shape.num_classes)
    throw CheckpointError("checkpoint " + path + ": trained on data of another shape or class count than the current dataset");
  // Settings that change what the weights mean without changing any tensor's shape.
  const auto& d = info.config.diffusion;
  if (d.learn_sigma != s.config.diffusion.learn_sigma)
    throw CheckpointError("checkpoint " + path + ": trained with diffusion.learn_sigma = " +
                          (d.learn_sigma ? "true" : "false") + " but this run uses " +
                          (s.config.diffusion.learn_sigma ? "true" : "false"));
  if (d.schedule != s.config.diffusion.schedule || d.timesteps != s.config.diffusion.timesteps ||
      d.prediction != s.config.diffusion.prediction)
    throw CheckpointError("checkpoint " + path + ": trained with diffusion " +
                          std::string(to_string(d.schedule)) + "/" + std::to_string(d.timesteps) +
                          "/" + std::string(to_string(d.prediction)) + " but this run uses " +
                          std::string(to_string(s.config.diffusion.schedule)) + "/" +
                          std::to_string(s.config.diffusion.timesteps) + "/" +
                          std::string(to_string(s.config.diffusion.prediction)) +
                          " (schedule/timesteps/prediction)");

  if (d.objective != s.config.diffusion.objective)
    throw CheckpointError("checkpoint " + path + ": trained with diffusion.objective = " +
                          std::string(to_string(d.objective)) + " but this run uses " +
                          std::string(to_string(s.config.diffusion.objective)));
  if (d.objective == Objective::Edm &&
      (d.edm_sigma_data != s.config.diffusion.edm_sigma_data ||
       d.edm_sigma_min != s.config.diffusion.edm_sigma_min ||
       d.edm_sigma_max != s.config.diffusion.edm_sigma_max))
    throw CheckpointError("checkpoint " + path +
                          ": trained with other EDM settings (diffusion.edm_sigma_data, "
                          "edm_sigma_min, edm_sigma_max) than this run");

  // Load into fresh objects and swap them in only when everything has been read.
  auto model = make_model(s.config, shape);
  auto ema = make_model(s.config, shape);
  // An exported checkpoint (core/train/export.h) holds the EMA weights alone: training
  // goes on from them with a fresh optimizer and this trainer's RNG, from the first batch.
  c10::IValue exported;
  const bool ema_only = archive.try_read("exported", exported);
  load_module(archive, ema_only ? "ema" : "model", *model, path);
  load_module(archive, "ema", *ema, path);
  model->to(s.device);
  ema->to(s.device);
  auto optimizer = make_optimizer(model, s.config.train);
  if (ema_only) {
    s.model = model;
    s.ema = ema;
    s.ema->eval();
    for (auto& p : s.ema->parameters()) p.set_requires_grad(false);
    s.optimizer = std::move(optimizer);
    s.step = read_int(archive, "step", path);
    s.batches.set_state(0, 0);
    s.timesteps = TimestepSampler(s.config.train.timestep_sampler, s.config.diffusion.timesteps,
                                  s.config.train.timestep_uniform_mix);
    s.recent.clear();
    s.pending.clear();
    s.forget_unread();
    return;
  }
  try {
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer->load(opt);
  } catch (const c10::Error& e) {
    throw CheckpointError("checkpoint " + path + ": optimizer state unreadable: " +
                          e.what_without_backtrace());
  }
  torch::Tensor rng;
  try {
    archive.read("rng", rng);
  } catch (const c10::Error&) {
    throw CheckpointError("checkpoint " + path + ": missing RNG state");
  }
  const int64_t step = read_int(archive, "step", path);
  const int64_t epoch = read_int(archive, "epoch", path);
  // The position counts examples, so a run continues on any number of ranks where it was.
  const int64_t position = read_int(archive, "position", path);
  TimestepSampler timesteps(s.config.train.timestep_sampler, s.config.diffusion.timesteps,
                            s.config.train.timestep_uniform_mix);
  torch::Tensor history, counts;
  if (archive.try_read("timestep_sampler_history", history) &&
      archive.try_read("timestep_sampler_counts", counts)) {
    try {
      timesteps.set_state(history, counts);
    } catch (const std::invalid_argument& e) {
      throw CheckpointError("checkpoint " + path + ": " + e.what());
    }
  }

  s.model = model;
  s.ema = ema;
  s.ema->eval();
  for (auto& p : s.ema->parameters()) p.set_requires_grad(false);
  s.optimizer = std::move(optimizer);
  s.gen.set_state(rng);
  s.step = step;
  s.batches.set_state(epoch, position);
  s.timesteps = std::move(timesteps);
  s.recent.clear();
  s.pending.clear();
  s.forget_unread();
}

const PrecisionChoice& Trainer::precision() {
  auto& s = *m;
  if (!s.precision) {
    PrecisionProbe probe;
    probe.training = true;
    probe.batch = s.config.train.batch_size;
    probe.shape = s.data->shape;
    if (!s.dist || s.dist->is_main()) {
      // bf16 weight gradients that would stall on a busy machine are taken in float32
      // (core/model/conv_grad.h); measured before `auto` times bf16, so it times what runs.
      // Not for data-parallel ranks: they usually run one thread each, and probing beside
      // each other would be the contention it measures.
      ConvStallReport stalls;
      // (auto on a CPU without bf16 instructions is fp32 at once: nothing to protect.)
      const auto requested = s.config.train.precision;
      const bool bf16_possible =
          requested == Precision::Bf16 || (requested == Precision::Auto && !bf16_emulated(s.device));
      if (bf16_possible && !s.dist)
        stalls = protect_stalling_convs(s.model, probe, s.device);
      s.precision = resolve_precision(s.config.train.precision, s.model, probe, s.device);
      if (s.precision->chosen == Precision::Bf16 && !stalls.reason.empty())
        s.precision->reason += "; " + stalls.reason;
    }
    if (s.dist) {
      // All ranks compute in the precision rank 0 chose (it measured for them all).
      auto chosen = torch::tensor(
          {static_cast<int>(s.dist->is_main() ? s.precision->chosen : Precision::Fp32)},
          torch::kInt);
      s.dist->broadcast(chosen);
      if (!s.dist->is_main()) {
        PrecisionChoice c;
        c.chosen = static_cast<Precision>(chosen.item<int>());
        c.reason = std::string(c.chosen == Precision::Bf16 ? "bf16" : "fp32") +
                   ", as rank 0 chose";
        s.precision = c;
      }
    }
  }
  return *s.precision;
}

void Trainer::set_train_config(const TrainConfig& train) {
  auto& s = *m;
  // Unread steps are checked under the settings they ran with (their restore point refers
  // to the batch sampler that a new batch size replaces).
  read_back();
  if (train.precision != s.config.train.precision || train.batch_size != s.config.train.batch_size)
    s.precision.reset();
  const bool new_batches = train.batch_size != s.config.train.batch_size;
  s.config.train = train;
  for (auto& group : s.optimizer->param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    o.lr(s.lr_at(s.step)).betas({train.adam_beta1, train.adam_beta2}).weight_decay(train.weight_decay);
  }
  if (train.timestep_sampler != s.timesteps.kind())
    s.timesteps = TimestepSampler(train.timestep_sampler, s.diffusion.num_steps(),
                                  train.timestep_uniform_mix);
  else
    s.timesteps.set_uniform_mix(train.timestep_uniform_mix);
  if (new_batches) {
    const int64_t epoch = s.batches.epoch();
    s.batches = BatchSampler(s.data->train.size(), train.batch_size * s.world(), train.seed);
    s.batches.set_state(epoch + 1, 0);  // start the new batch size on a fresh epoch
  }
}

int64_t Trainer::step() const { return m->step; }
int64_t Trainer::epoch() const { return m->batches.epoch(); }
int Trainer::world_size() const { return static_cast<int>(m->world()); }
const Config& Trainer::config() const { return m->config; }
const DatasetSplits& Trainer::data() const { return *m->data; }
c10::Device Trainer::device() const { return m->device; }
DenoiserNet Trainer::model() const { return m->model; }
DenoiserNet Trainer::ema_model() const { return m->ema; }
int64_t Trainer::parameter_count() const { return count_parameters(*m->model); }

std::vector<double> Trainer::loss_weight_by_timestep(int buckets) const {
  return loss_weight_curve(m->config.diffusion, buckets);
}

std::vector<double> Trainer::timestep_probabilities() const {
  return m->timesteps.probabilities();
}

std::vector<double> Trainer::loss_by_timestep(int buckets) const {
  m->drain_pending();
  std::vector<double> sum(buckets, 0.0);
  std::vector<int> count(buckets, 0);
  const int steps = m->diffusion.num_steps();
  for (const auto& [t, loss] : m->recent) {
    const int k = std::min(buckets - 1, t * buckets / steps);
    sum[k] += loss;
    ++count[k];
  }
  std::vector<double> out(buckets);
  for (int k = 0; k < buckets; ++k) out[k] = count[k] ? sum[k] / count[k] : std::nan("");
  return out;
}

}  // namespace difflab
