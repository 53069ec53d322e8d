#include "core/sampling/sampler_registry.h"

#include <iterator>
#include <stdexcept>

#include "core/sampling/samplers.h"

namespace difflab {

// Each factory lives in its sampler's own file (ddpm.cpp, ddim.cpp, ...).
std::unique_ptr<Sampler> make_ddpm_sampler(const SampleConfig& config);
std::unique_ptr<Sampler> make_ddim_sampler(const SampleConfig& config);
std::unique_ptr<Sampler> make_euler_sampler(const SampleConfig& config);
std::unique_ptr<Sampler> make_euler_ancestral_sampler(const SampleConfig& config);
std::unique_ptr<Sampler> make_heun_sampler(const SampleConfig& config);
std::unique_ptr<Sampler> make_dpmpp_2m_sampler(const SampleConfig& config);

namespace {

using F = SamplerFamily;

// One row per SamplerKind, in enum order.
constexpr SamplerInfo kSamplers[] = {
    {SamplerKind::Ddpm, "ddpm", F::Discrete, make_ddpm_sampler,
     "Ho et al. 2020, Alg. 2; learned variance: Nichol & Dhariwal 2021",
     "ancestral sampling, fresh noise every step; variance fixed_small, fixed_large or learned"},
    {SamplerKind::Ddim, "ddim", F::Discrete, make_ddim_sampler, "Song et al. 2021, eq. 12",
     "deterministic when η = 0, so fewer steps still work; η = 1 is as noisy as DDPM"},
    {SamplerKind::Euler, "euler", F::Sigma, make_euler_sampler,
     "Karras et al. 2022, Alg. 2 without churn",
     "1st-order ODE solver on σ = √((1−ᾱ)/ᾱ); on the model's own σ's it is DDIM with η = 0"},
    {SamplerKind::EulerAncestral, "euler_ancestral", F::Sigma, make_euler_ancestral_sampler,
     "k-diffusion's sample_euler_ancestral (Song et al. 2021, ancestral sampling)",
     "Euler plus fresh noise every step; on the model's own σ's it is DDPM"},
    {SamplerKind::Heun, "heun", F::Sigma, make_heun_sampler, "Karras et al. 2022, Alg. 1",
     "2nd-order ODE solver: two network calls per step (one on the last)"},
    {SamplerKind::DpmppTwoM, "dpmpp_2m", F::Sigma, make_dpmpp_2m_sampler,
     "Lu et al. 2022, DPM-Solver++, Alg. 2",
     "2nd-order multistep ODE solver: one network call per step"},
};
static_assert(std::size(kSamplers) == static_cast<size_t>(SamplerKind::Count),
              "one row per SamplerKind");

constexpr bool rows_match_enum() {
  for (size_t i = 0; i < std::size(kSamplers); ++i)
    if (kSamplers[i].kind != static_cast<SamplerKind>(i) ||
        kSamplers[i].name != to_string(kSamplers[i].kind) || kSamplers[i].make == nullptr)
      return false;
  return true;
}
static_assert(rows_match_enum(),
              "rows in SamplerKind order, each named as in core/config/enums.h, with a factory");

}  // namespace

const SamplerInfo& sampler_info(SamplerKind kind) {
  const auto i = static_cast<size_t>(kind);
  if (i >= std::size(kSamplers)) throw std::invalid_argument("bad sampler kind");
  return kSamplers[i];
}

const std::string& sampler_help() {
  static const std::string text = [] {
    std::string out;
    for (const auto& row : kSamplers) {
      if (!out.empty()) out += "\n";
      out += std::string(row.name) + ": " + std::string(row.help) + " (" + std::string(row.paper) +
             ").";
    }
    return out;
  }();
  return text;
}

std::string sampler_names(SamplerFamily family) {
  std::string out;
  for (const auto& row : kSamplers) {
    if (row.family != family) continue;
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out;
}

std::unique_ptr<Sampler> make_sampler(const SampleConfig& config) {
  return sampler_info(config.sampler).make(config);
}

}  // namespace difflab
