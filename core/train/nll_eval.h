// The test-set negative log-likelihood bound of a trained model in bits/dim (Ho et al.
// 2020, eq. 5; Nichol & Dhariwal 2021, §2.3 / Table 2): L_T + Σ_{t≥1} L_t + L_0 averaged
// over test images, with the discretized Gaussian decoder for 8-bit data in [−1, 1].
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/config/enums.h"
#include "core/data/dataset.h"
#include "core/diffusion/gaussian_diffusion.h"
#include "core/model/denoiser_net.h"

namespace difflab {

struct NllEvalOptions {
  VarianceKind variance = VarianceKind::Learned;  // learned needs a learn_sigma net
  bool clip_denoised = true;  // clip x̂₀ to [−1, 1] (improved-diffusion's image_nll default)
  int batches = 1;            // test batches of images spread evenly over the test split
  int batch_size = 64;
  // 0 = exact over all T timesteps (T network calls a batch). K > 0 = stratified estimate
  // from K log-spaced strata of t, K + 1 calls a batch (GaussianDiffusion::nll_bits_per_dim).
  int t_samples = 0;
  // Class-conditional nets: condition on the true labels (−log p(x | y), as
  // improved-diffusion's image_nll), or on the null label (−log p(x), unconditional).
  bool use_labels = true;
  uint64_t seed = 0;          // noise for each t
};

struct NllEvalResult {
  int64_t images = 0;
  // Means over the images, bits/dim.
  double total = 0, prior = 0, kl_sum = 0, decoder = 0;
  double total_stderr = 0;        // standard error of `total` over the images
  std::vector<double> terms;      // mean L_t for each row t (0 where not evaluated)
  bool estimate = false;          // some stratum had more than one t
};

// Runs the bound over options.batches × batch_size images of `test` spread evenly over it (fewer if
// the split is smaller) under no-grad / eval. `test` must hold 8-bit images (uint8): the
// decoder's bins are the 256 pixel values; anything else throws std::invalid_argument.
// progress(batch, batches, step, steps) after every network call.
NllEvalResult evaluate_nll(const DenoiserNet& net, const GaussianDiffusion& diffusion,
                           const TensorDataset& test, const NllEvalOptions& options,
                           const std::function<void(int, int, int, int)>& progress = {});

}  // namespace difflab
