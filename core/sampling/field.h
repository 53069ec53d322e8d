// The model's field on 2-D points: what the 2-D toy view draws as arrows at the scrubbed
// step, so DDPM's curved paths and flow matching's straight ones can be seen coming from
// the network itself. (Defined in sampler.cpp, beside run_sampling, whose Denoiser it asks.)
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "core/sampling/sampler.h"

namespace difflab {

// For a point model (2-D toy sets; any D), at `points` (G, D) in the coordinates the trajectory records
// x_t in, at the model timestep a trajectory frame records (original scale; T·t for flow
// matching; EDM's network time), the direction sampling moves a particle there:
//   ddpm:          the score ∇ₓ log p_t(x) = −ε̂ / √(1 − ᾱ_t)
//   edm:           the score of the recorded (variance-preserving) x_t: a times −ε̂(a x) / σ,
//                  a = √(1 + σ²), σ from the network time
//   flow_matching: −v̂, the velocity as t runs from 1 to 0
// for class `label` with classifier-free guidance `guidance` (label < 0: unconditional),
// limited to noise levels in (guidance_sigma_min, guidance_sigma_max] as sampling limits it
// (Denoiser::set_guidance_interval; 0 = no limit), and with autoguidance by `guide` when
// sampling has one (Denoiser::set_guide; `guidance` is then its scale, also unconditional).
// Returns (G, D) float32 on the CPU. Throws std::invalid_argument for image models.
at::Tensor sampling_field(const SamplingModel& model, const at::Tensor& points, int timestep,
                          int64_t label, double guidance, c10::Device device,
                          double guidance_sigma_min = 0.0, double guidance_sigma_max = 0.0,
                          const DenoiserNet& guide = nullptr);

}  // namespace difflab
