// Every sampler in one table (sampler_registry.cpp): one row per SamplerKind with its
// config name, family, factory, paper and a one-line help text. make_sampler dispatches
// through it; the GUI's combo help, the CLI's --sampler help and every "is this a σ-space
// sampler?" question read it. Adding a sampler: its file (with a make_*_sampler factory),
// its SamplerKind and name in core/config/enums.h, its row, and CMakeLists.txt.
//
// Torch-free (the Sampler type is only named), so the GUI can include it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/config/config.h"

namespace difflab {

class Sampler;

// Where a sampler's noise levels come from: the (respaced) schedule's rows (DDPM, DDIM),
// or σ = √((1−ᾱ)/ᾱ) laid out by sample.sigmas and sample.karras_rho (Euler, Heun, ...).
enum class SamplerFamily { Discrete, Sigma };

// Which objectives a sampler applies to, as a bit set over Objective.
constexpr unsigned objective_bit(Objective o) { return 1u << static_cast<unsigned>(o); }

struct SamplerInfo {
  SamplerKind kind;
  std::string_view name;  // the config's spelling, to_string(kind)
  SamplerFamily family;
  unsigned objectives;    // objective_bit()s of the objectives it can sample
  std::unique_ptr<Sampler> (*make)(const SampleConfig& config);
  std::string_view paper;  // where the update comes from
  std::string_view help;   // one line for the GUI and --help
};

const SamplerInfo& sampler_info(SamplerKind kind);
// True for the samplers that read sample.sigmas and sample.karras_rho.
inline bool is_sigma_space(SamplerKind kind) {
  return sampler_info(kind).family == SamplerFamily::Sigma;
}
// True when `kind` can sample a model trained with `objective`.
inline bool sampler_applies(SamplerKind kind, Objective objective) {
  return (sampler_info(kind).objectives & objective_bit(objective)) != 0;
}
// "a, b, c": the samplers that apply to `objective`, in table order.
std::string sampler_names(Objective objective);
// The sampler an objective gets when its config names one that does not apply: ddim for
// ddpm, heun for edm (Karras et al. 2022, Alg. 1) and euler for flow matching.
SamplerKind default_sampler(Objective objective);
// Throws std::invalid_argument naming the sampler, the objective and the ones that apply.
void check_sampler_applies(SamplerKind kind, Objective objective);
// One line per sampler, "name: help (paper)", in table order.
const std::string& sampler_help();
// "a, b, c": the names of one family, in table order.
std::string sampler_names(SamplerFamily family);

}  // namespace difflab
