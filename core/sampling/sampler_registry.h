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

struct SamplerInfo {
  SamplerKind kind;
  std::string_view name;  // the config's spelling, to_string(kind)
  SamplerFamily family;
  std::unique_ptr<Sampler> (*make)(const SampleConfig& config);
  std::string_view paper;  // where the update comes from
  std::string_view help;   // one line for the GUI and --help
};

const SamplerInfo& sampler_info(SamplerKind kind);
// True for the samplers that read sample.sigmas and sample.karras_rho.
inline bool is_sigma_space(SamplerKind kind) {
  return sampler_info(kind).family == SamplerFamily::Sigma;
}
// One line per sampler, "name: help (paper)", in table order.
const std::string& sampler_help();
// "a, b, c": the names of one family, in table order.
std::string sampler_names(SamplerFamily family);

}  // namespace difflab
