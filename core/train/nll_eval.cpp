#include "core/train/nll_eval.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace difflab {

NllEvalResult evaluate_nll(const DenoiserNet& net, const GaussianDiffusion& diffusion,
                           const TensorDataset& test, const NllEvalOptions& options,
                           const std::function<void(int, int, int, int)>& progress) {
  if (test.size() == 0) throw std::invalid_argument("NLL: the test split is empty");
  if (test.data.scalar_type() != torch::kUInt8 || test.data.dim() != 4)
    throw std::invalid_argument(
        "NLL in bits/dim needs 8-bit images (the decoder integrates over pixel bins of width "
        "2/255); this dataset holds continuous values (e.g. 2-D points)");
  if (options.batches < 1 || options.batch_size < 1)
    throw std::invalid_argument("NLL: batches and batch size must be >= 1");
  if (options.variance == VarianceKind::Learned && !net->learns_variance())
    throw std::invalid_argument(
        "NLL with variance 'learned' needs a model trained with diffusion.learn_sigma = true; "
        "use fixed_small or fixed_large for this one");

  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(net);  // the caller's mode comes back on every exit

  const auto device = diffusion.device();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const int64_t n = test.size();
  const int64_t bs = std::min<int64_t>(options.batch_size, n);
  const int batches =
      static_cast<int>(std::min<int64_t>(options.batches, (n + bs - 1) / bs));
  const bool conditional = net->num_classes() > 0;
  const bool learned = net->learns_variance();

  // The images, spread evenly over the split (loaders may keep it ordered by class, so the
  // first batches alone could be one digit).
  const int64_t total = std::min<int64_t>(static_cast<int64_t>(batches) * bs, n);
  const auto spread = torch::arange(total, torch::kLong).mul(n).div(total, "floor");
  NllEvalResult r;
  std::vector<at::Tensor> totals;
  at::Tensor terms_sum = torch::zeros({diffusion.num_steps()}, torch::kFloat64);
  double prior = 0, kl_sum = 0, decoder = 0;
  for (int i = 0; i < batches; ++i) {
    const int64_t start = i * bs;
    const int64_t len = std::min(bs, total - start);
    const auto idx = spread.narrow(0, start, len);
    const auto x0 = gather_batch(test, idx).to(device);
    at::Tensor y;
    if (conditional)
      y = options.use_labels ? test.labels.index_select(0, idx).to(device)
                             : torch::full({len}, net->num_classes(),
                                           torch::TensorOptions().dtype(torch::kLong).device(device));
    const ModelFn model = [&](const at::Tensor& xt, const at::Tensor& t) {
      return split_model_output(net->forward(xt, diffusion.model_timesteps(t), y), learned);
    };
    const auto bound = diffusion.nll_bits_per_dim(
        model, x0, options.variance, options.clip_denoised, gen, options.t_samples,
        [&](int done, int total) {
          if (progress) progress(i + 1, batches, done, total);
        });
    totals.push_back(bound.total.to(torch::kCPU, torch::kFloat64));
    prior += bound.prior.to(torch::kFloat64).sum().item<double>();
    kl_sum += bound.kl_sum.to(torch::kFloat64).sum().item<double>();
    decoder += bound.decoder.to(torch::kFloat64).sum().item<double>();
    terms_sum += bound.terms.to(torch::kCPU, torch::kFloat64).sum(0);
    r.estimate = r.estimate || bound.estimate;
    r.images += len;
  }
  const auto all = torch::cat(totals);
  const double count = static_cast<double>(r.images);
  r.total = all.mean().item<double>();
  r.total_stderr = r.images > 1 ? all.std().item<double>() / std::sqrt(count) : std::nan("");
  r.prior = prior / count;
  r.kl_sum = kl_sum / count;
  r.decoder = decoder / count;
  const auto mean_terms = (terms_sum / count).contiguous();
  r.terms.assign(mean_terms.data_ptr<double>(), mean_terms.data_ptr<double>() + mean_terms.numel());
  return r;
}

}  // namespace difflab
