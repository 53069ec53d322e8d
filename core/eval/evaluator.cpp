#include "core/eval/evaluator.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/eval/frechet.h"
#include "core/train/checkpoint_io.h"

namespace difflab {
namespace {

namespace fs = std::filesystem;

// Images per forward pass when scoring.
constexpr int64_t kEvalBatch = 500;
// Widths of the evaluator's conv layers: small enough to train in about a minute on one
// CPU core, wide enough for ~98 % on MNIST.
constexpr int kConv1 = 16;
constexpr int kConv2 = 32;

// Two conv layers (3x3, ReLU, 2x2 max-pool) and a feature layer: the LeNet-style digit
// classifier (LeCun et al. 1998) with ReLUs. The feature layer's activations are what the
// Fréchet distance compares.
class EvalNetImpl : public torch::nn::Module {
 public:
  EvalNetImpl(const DataShape& shape, int feature_dim)
      : conv1(torch::nn::Conv2dOptions(shape.channels, kConv1, 3).padding(1)),
        conv2(torch::nn::Conv2dOptions(kConv1, kConv2, 3).padding(1)),
        fc(kConv2 * (shape.height / 4) * (shape.width / 4), feature_dim),
        head(feature_dim, shape.num_classes) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("fc", fc);
    register_module("head", head);
  }
  torch::Tensor features(const torch::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(conv1(x)), 2);
    h = torch::max_pool2d(torch::relu(conv2(h)), 2);
    return torch::relu(fc(h.flatten(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head(features(x)); }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc, head;
};
TORCH_MODULE(EvalNet);

// FNV-1a over raw bytes (not cryptographic: it tells datasets apart, nothing more).
uint64_t fnv1a(const at::Tensor& t, uint64_t h = 1469598103934665603ull) {
  auto c = t.to(torch::kCPU).contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Random translations by up to kShift pixels (background −1 fills in): the usual MNIST
// augmentation (Simard et al. 2003 use elastic distortions; shifts are the cheap part),
// which matters with the ~9k training digits of the npm package.
constexpr int64_t kShift = 2;

at::Tensor random_shift(const at::Tensor& x, at::Generator& gen) {
  const auto h = x.size(2), w = x.size(3);
  auto padded = torch::constant_pad_nd(x, {kShift, kShift, kShift, kShift}, -1.0);
  auto offsets = torch::randint(2 * kShift + 1, {x.size(0), 2}, gen, torch::kLong);
  auto acc = offsets.accessor<int64_t, 2>();
  std::vector<at::Tensor> out;
  out.reserve(x.size(0));
  for (int64_t i = 0; i < x.size(0); ++i)
    out.push_back(padded[i].narrow(1, acc[i][0], h).narrow(2, acc[i][1], w));
  return torch::stack(out);
}

void check_image_data(const DatasetSplits& data) {
  if (data.shape.points)
    throw EvaluatorError("the evaluator needs image data; 2-D point sets are not supported");
  if (data.shape.num_classes < 2)
    throw EvaluatorError("the evaluator needs labelled data with at least 2 classes");
  if (data.shape.height < 4 || data.shape.width < 4)
    throw EvaluatorError("the evaluator needs images of at least 4x4 pixels");
  if (data.train.size() < 2 || data.test.size() < 2)
    throw EvaluatorError("the evaluator needs at least 2 training and 2 test images");
}

}  // namespace

struct Evaluator::Impl {
  EvalNet net{nullptr};
  EvaluatorInfo info;
  c10::Device device = torch::kCPU;
};

std::pair<at::Tensor, at::Tensor> Evaluator::features_and_logits(const at::Tensor& images) const {
  torch::NoGradGuard no_grad;
  m->net->eval();
  std::vector<at::Tensor> feats, logits;
  for (int64_t i = 0; i < images.size(0); i += kEvalBatch) {
    auto x = images.narrow(0, i, std::min(kEvalBatch, images.size(0) - i))
                 .to(m->device, torch::kFloat32)
                 .clamp(-1.0, 1.0);
    auto f = m->net->features(x);
    logits.push_back(m->net->head(f).to(torch::kCPU));
    feats.push_back(f.to(torch::kCPU));
  }
  return {torch::cat(feats), torch::cat(logits)};
}

at::Tensor Evaluator::logits(const at::Tensor& images) const {
  return features_and_logits(images).second;
}

at::Tensor Evaluator::features(const at::Tensor& images) const {
  return features_and_logits(images).first;
}

const EvaluatorInfo& Evaluator::info() const { return m->info; }

Evaluator Evaluator::train(const DatasetSplits& data, const EvaluatorOptions& options,
                           c10::Device device, const EvalLog& log) {
  check_image_data(data);
  const auto start = std::chrono::steady_clock::now();
  torch::manual_seed(options.seed);
  Evaluator e;
  e.m = std::make_shared<Impl>();
  e.m->device = device;
  e.m->net = EvalNet(data.shape, options.feature_dim);
  e.m->net->to(device);
  e.m->net->train();
  torch::optim::Adam opt(e.m->net->parameters(), torch::optim::AdamOptions(options.lr));
  BatchSampler batches(data.train.size(), options.batch_size, options.seed);
  const int64_t steps =
      std::max<int64_t>(1, (options.train_examples + options.batch_size - 1) / options.batch_size);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed + 1);
  double running = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    // Cosine decay of the learning rate to 0 (Loshchilov & Hutter 2017, without restarts).
    const double lr = 0.5 * options.lr * (1.0 + std::cos(M_PI * (step - 1) / steps));
    for (auto& group : opt.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    auto index = batches.next();
    auto x = gather_batch(data.train, index);
    if (options.augment) x = random_shift(x, gen);
    x = x.to(device);
    auto y = data.train.labels.index_select(0, index).to(device);
    auto loss = torch::cross_entropy_loss(e.m->net->forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    running = step == 1 ? loss.item<double>() : 0.98 * running + 0.02 * loss.item<double>();
    if (log && (step % 200 == 0 || step == steps)) {
      char line[128];
      std::snprintf(line, sizeof line, "evaluator: step %lld/%lld, loss %.4f",
                    static_cast<long long>(step), static_cast<long long>(steps), running);
      log(line);
    }
  }
  auto test_x = gather_batch(data.test, torch::arange(data.test.size(), torch::kLong));
  auto& info = e.m->info;
  info.test_accuracy = classification_accuracy(e.logits(test_x), data.test.labels);
  info.dataset_key = dataset_key(data);
  info.shape = data.shape;
  info.feature_dim = options.feature_dim;
  info.train_examples = steps * std::min<int64_t>(options.batch_size, data.train.size());
  info.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return e;
}

void Evaluator::save(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  const auto& info = m->info;
  write_checkpoint_kind(archive, CheckpointKind::Evaluator);
  archive.write("dataset_key", c10::IValue(info.dataset_key));
  archive.write("feature_dim", c10::IValue(static_cast<int64_t>(info.feature_dim)));
  archive.write("test_accuracy", c10::IValue(info.test_accuracy));
  archive.write("train_seconds", c10::IValue(info.train_seconds));
  archive.write("train_examples", c10::IValue(info.train_examples));
  write_shape(archive, info.shape);
  write_module_weights(archive, "model", *m->net);
  try {
    save_archive_atomic(archive, path);
  } catch (const CheckpointError& err) {
    throw EvaluatorError(std::string("evaluator cache: ") + err.what());
  }
}

Evaluator Evaluator::load(const std::string& path, c10::Device device) {
  const std::string what = "evaluator cache " + path + ": ";
  torch::serialize::InputArchive archive;
  try {
    open_checkpoint(path, archive, CheckpointKind::Evaluator);
  } catch (const CheckpointError& err) {
    throw EvaluatorError(err.what());  // it names the file
  }
  auto read = [&](const std::string& key) {
    c10::IValue value;
    if (!archive.try_read(key, value)) throw EvaluatorError(what + "missing entry '" + key + "'");
    return value;
  };
  Evaluator e;
  e.m = std::make_shared<Impl>();
  e.m->device = device;
  auto& info = e.m->info;
  try {
    info.dataset_key = read("dataset_key").toStringRef();
    info.feature_dim = static_cast<int>(read("feature_dim").toInt());
    info.test_accuracy = read("test_accuracy").toDouble();
    info.train_seconds = read("train_seconds").toDouble();
    info.train_examples = read("train_examples").toInt();
    info.shape = read_shape(archive, path);
    e.m->net = EvalNet(info.shape, info.feature_dim);
    load_module(archive, "model", *e.m->net, path);
  } catch (const CheckpointError& err) {
    throw EvaluatorError(what + err.what());
  } catch (const c10::Error& err) {
    std::string msg = err.what_without_backtrace();
    throw EvaluatorError(what + "bad entry: " + msg.substr(0, msg.find('\n')));
  }
  e.m->net->to(device);
  e.m->net->eval();
  return e;
}

std::string dataset_key(const DatasetSplits& data) {
  uint64_t h = fnv1a(data.train.data);
  h = fnv1a(data.train.labels, h);
  h = fnv1a(data.test.data, h);
  h = fnv1a(data.test.labels, h);
  std::ostringstream key;
  key << data.description << " | train " << data.train.size() << ", test " << data.test.size()
      << " | fnv1a " << std::hex << h;
  return key.str();
}

std::string evaluator_cache_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "evaluator.pt").string();
}

std::string checkpoint_folder(const std::string& checkpoint_path) {
  auto dir = fs::path(checkpoint_path).parent_path();
  if (dir.filename() == "checkpoints") dir = dir.parent_path();
  return dir.empty() ? "." : dir.string();
}

Evaluator load_or_train_evaluator(const std::string& cache_path, const DatasetSplits& data,
                                  const EvaluatorOptions& options, c10::Device device,
                                  const EvalLog& log) {
  const std::string key = dataset_key(data);
  if (fs::exists(cache_path)) {
    try {
      auto cached = Evaluator::load(cache_path, device);
      if (cached.info().dataset_key == key && cached.info().feature_dim == options.feature_dim)
        return cached;
      if (log)
        log("evaluator cache " + cache_path + " is for another dataset (" +
            cached.info().dataset_key + "): retraining");
    } catch (const EvaluatorError& err) {
      if (log) log(std::string(err.what()) + ": retraining");
    }
  }
  if (log) log("training the evaluator classifier on " + data.description);
  auto e = Evaluator::train(data, options, device, log);
  e.save(cache_path);
  if (log) {
    char line[160];
    std::snprintf(line, sizeof line, "evaluator: test accuracy %.2f %%, %.1f s; cached in ",
                  100.0 * e.info().test_accuracy, e.info().train_seconds);
    log(line + cache_path);
  }
  return e;
}

RunEvaluation evaluation_record(const std::string& checkpoint, int64_t step,
                                const SampleConfig& sample, const EvalResult& result,
                                double seconds) {
  RunEvaluation e;
  e.checkpoint = checkpoint;
  e.step = step;
  e.n = result.n;
  e.sampler = std::string(to_string(sample.sampler));
  // The file's columns predate guidance intervals: an interval goes with the sampler.
  const std::string interval = guidance_interval_text(sample);
  if (!interval.empty()) e.sampler += " (" + interval + ")";
  e.steps = sample.steps;
  e.eta = sample.eta;
  e.guidance = sample.guidance;
  e.classifier_scale = sample.classifier_scale;
  e.seed = sample.seed;
  e.accuracy = result.accuracy;
  e.fd = result.fd;
  e.fd_floor = result.fd_floor;
  e.reference_images = result.reference_size;
  e.seconds = seconds;
  return e;
}

EvalResult evaluate_samples(const Evaluator& evaluator, const at::Tensor& samples,
                            const at::Tensor& labels, const DatasetSplits& data, uint64_t seed) {
  check_image_data(data);
  const auto& shape = evaluator.info().shape;
  if (samples.dim() != 4 || samples.size(1) != shape.channels ||
      samples.size(2) != shape.height || samples.size(3) != shape.width)
    throw EvaluatorError("evaluate_samples: samples must be (N, " +
                         std::to_string(shape.channels) + ", " + std::to_string(shape.height) +
                         ", " + std::to_string(shape.width) + ") like the evaluator's data");
  if (labels.numel() != samples.size(0))
    throw EvaluatorError("evaluate_samples: one label per sample needed");
  const int64_t n = samples.size(0);
  if (n < 2) throw EvaluatorError("evaluate_samples: need at least 2 samples");
  if (n > data.train.size())
    throw EvaluatorError("evaluate_samples: " + std::to_string(n) +
                         " samples but only " + std::to_string(data.train.size()) +
                         " training images for the floor");
  EvalResult r;
  r.n = n;
  auto [sample_features, sample_logits] = evaluator.features_and_logits(samples);
  r.accuracy = classification_accuracy(sample_logits, labels);
  auto test_x = gather_batch(data.test, torch::arange(data.test.size(), torch::kLong));
  const auto reference = feature_stats(evaluator.features(test_x));
  r.reference_size = data.test.size();
  r.fd = frechet_distance(feature_stats(sample_features), reference);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto pick = torch::randperm(data.train.size(), gen, torch::kLong).narrow(0, 0, n);
  r.fd_floor = frechet_distance(feature_stats(evaluator.features(gather_batch(data.train, pick))),
                                reference);
  return r;
}

EvalResult evaluate_model(const SamplingModel& model, const SampleRequest& request,
                          c10::Device device, const Evaluator& evaluator, const DatasetSplits& data,
                          const StepCallback& callback, double* seconds) {
  const auto start = std::chrono::steady_clock::now();
  auto result = run_sampling(model, request, device, callback);
  if (seconds)
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (result.cancelled) throw EvaluatorError("evaluation cancelled while sampling");
  return evaluate_samples(evaluator, result.images, result.labels, data, request.config.seed);
}

}  // namespace difflab
