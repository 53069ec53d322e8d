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
// The objectives each row applies to. DDPM and DDIM walk the discrete VP chain's rows, so
// only ddpm. The σ-space solvers run on x = x₀ + σ ε, which is DDPM's chain rescaled and
// EDM's own variable. Flow matching integrates dx/dt = v̂ in t: Euler and Heun are written
// on a generic ODE variable (SigmaSpace, sigmas.h); the ancestral step and DPM-Solver++'s
// update are σ-space formulas, so they are not offered for it.
constexpr unsigned kDdpm = objective_bit(Objective::Ddpm);
constexpr unsigned kVe = kDdpm | objective_bit(Objective::Edm);
constexpr unsigned kAll = kVe | objective_bit(Objective::FlowMatching);

// One row per SamplerKind, in enum order.
constexpr SamplerInfo kSamplers[] = {
    {SamplerKind::Ddpm, "ddpm", F::Discrete, kDdpm, make_ddpm_sampler,
     "Ho et al. 2020, Alg. 2; learned variance: Nichol & Dhariwal 2021",
     "ancestral sampling, fresh noise every step; variance fixed_small, fixed_large or learned"},
    {SamplerKind::Ddim, "ddim", F::Discrete, kDdpm, make_ddim_sampler, "Song et al. 2021, eq. 12",
     "deterministic when η = 0, so fewer steps still work; η = 1 is as noisy as DDPM"},
    {SamplerKind::Euler, "euler", F::Sigma, kAll, make_euler_sampler,
     "Karras et al. 2022, Alg. 2 without the 2nd-order step",
     "1st-order ODE solver on σ = √((1−ᾱ)/ᾱ) (edm: its σ; flow matching: in t); on the "
     "model's own σ's it is DDIM with η = 0; sample.s_churn adds Karras's churn"},
    {SamplerKind::EulerAncestral, "euler_ancestral", F::Sigma, kVe, make_euler_ancestral_sampler,
     "k-diffusion's sample_euler_ancestral (Song et al. 2021, ancestral sampling)",
     "Euler plus fresh noise every step; on the model's own σ's it is DDPM"},
    {SamplerKind::Heun, "heun", F::Sigma, kAll, make_heun_sampler,
     "Karras et al. 2022, Alg. 1; with sample.s_churn Alg. 2",
     "2nd-order ODE solver: two network calls per step (one on the last); flow matching: in t"},
    {SamplerKind::DpmppTwoM, "dpmpp_2m", F::Sigma, kVe, make_dpmpp_2m_sampler,
     "Lu et al. 2022, DPM-Solver++, Alg. 2",
     "2nd-order multistep ODE solver: one network call per step"},
};
static_assert(std::size(kSamplers) == static_cast<size_t>(SamplerKind::Count),
              "one row per SamplerKind");

constexpr bool rows_match_enum() {
  for (size_t i = 0; i < std::size(kSamplers); ++i)
    if (kSamplers[i].kind != static_cast<SamplerKind>(i) ||
        kSamplers[i].name != to_string(kSamplers[i].kind))
      return false;
  return true;
}
// (Each row's factory is checked by a test: with -fsanitize GCC does not treat a function's
// address compared with nullptr as a constant expression.)
static_assert(rows_match_enum(), "rows in SamplerKind order, each named as in core/config/enums.h");

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

std::string sampler_names(Objective objective) {
  std::string out;
  for (const auto& row : kSamplers) {
    if (!(row.objectives & objective_bit(objective))) continue;
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out;
}

SamplerKind default_sampler(Objective objective) {
  switch (objective) {
    case Objective::Edm: return SamplerKind::Heun;
    case Objective::FlowMatching: return SamplerKind::Euler;
    default: return SamplerKind::Ddim;
  }
}

void check_sampler_applies(SamplerKind kind, Objective objective) {
  if (sampler_applies(kind, objective)) return;
  throw std::invalid_argument("sample.sampler = " + std::string(to_string(kind)) +
                              " does not apply to a model trained with diffusion.objective = " +
                              std::string(to_string(objective)) +
                              " (samplers for it: " + sampler_names(objective) + ")");
}

std::unique_ptr<Sampler> make_sampler(const SampleConfig& config) {
  return sampler_info(config.sampler).make(config);
}

}  // namespace difflab
