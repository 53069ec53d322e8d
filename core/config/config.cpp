// YAML <-> Config. One field table per section (visit_fields) drives parsing, writing and
// the "known keys" lists, so the three can never disagree about a field's name.
//
// [SECTION] Field tables
// [SECTION] Text of one value (numbers that round-trip, quoted strings)
// [SECTION] Reading: YAML node -> field, with errors that name file:line:col and the key
// [SECTION] Writing: the full resolved config
// [SECTION] Validation
// [SECTION] Public API

#include "core/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <type_traits>

#include "core/util/paths.h"

namespace difflab {
namespace {

namespace fs = std::filesystem;

// Linear, quadratic and sigmoid schedules scale Ho et al.'s β_end = 0.02 (for T = 1000) by
// 1000/T (see core/schedule/noise_schedule.cpp), so β_end < 1 needs T > 20.
constexpr int kMinScaledTimesteps = 21;
// An unknown key within this edit distance of a known one gets a "did you mean".
constexpr size_t kMaxSuggestionDistance = 2;

// ---------------------------------------------------------------------------------------
// [SECTION] Field tables
// ---------------------------------------------------------------------------------------
// visit_fields(section, v) calls v(name, field) for every field, in file order. The
// section may be const (writing) or not (reading).

template <typename T, typename S>
using IfSection = std::enable_if_t<std::is_same_v<std::remove_const_t<S>, T>>;

template <typename S, typename V>
IfSection<DataConfig, S> visit_fields(S& s, V&& v) {
  v("kind", s.kind);
  v("path", s.path);
  v("image_size", s.image_size);
  v("channels", s.channels);
  v("test_fraction", s.test_fraction);
  v("max_train", s.max_train);
  v("toy", s.toy);
  v("toy_points", s.toy_points);
  v("toy_noise", s.toy_noise);
  v("seed", s.seed);
}

template <typename S, typename V>
IfSection<DiffusionConfig, S> visit_fields(S& s, V&& v) {
  v("objective", s.objective);
  v("schedule", s.schedule);
  v("timesteps", s.timesteps);
  v("prediction", s.prediction);
  v("learn_sigma", s.learn_sigma);
  v("loss", s.loss);
  v("vlb_weight", s.vlb_weight);
  v("loss_weighting", s.loss_weighting);
  v("min_snr_gamma", s.min_snr_gamma);
  v("edm_sigma_data", s.edm_sigma_data);
  v("edm_p_mean", s.edm_p_mean);
  v("edm_p_std", s.edm_p_std);
  v("edm_sigma_min", s.edm_sigma_min);
  v("edm_sigma_max", s.edm_sigma_max);
  v("flow_t_sampling", s.flow_t_sampling);
  v("flow_logit_mean", s.flow_logit_mean);
  v("flow_logit_std", s.flow_logit_std);
}

template <typename S, typename V>
IfSection<ModelConfig, S> visit_fields(S& s, V&& v) {
  v("kind", s.kind);
  v("base_channels", s.base_channels);
  v("channel_mult", s.channel_mult);
  v("num_res_blocks", s.num_res_blocks);
  v("attention_resolutions", s.attention_resolutions);
  v("num_heads", s.num_heads);
  v("dropout", s.dropout);
  v("activation", s.activation);
  v("norm_groups", s.norm_groups);
  v("init", s.init);
  v("zero_init_last", s.zero_init_last);
  v("class_conditional", s.class_conditional);
  v("num_classes", s.num_classes);
  v("mlp_hidden", s.mlp_hidden);
  v("mlp_layers", s.mlp_layers);
}

template <typename S, typename V>
IfSection<TrainConfig, S> visit_fields(S& s, V&& v) {
  v("batch_size", s.batch_size);
  v("steps", s.steps);
  v("lr", s.lr);
  v("weight_decay", s.weight_decay);
  v("adam_beta1", s.adam_beta1);
  v("adam_beta2", s.adam_beta2);
  v("warmup_steps", s.warmup_steps);
  v("lr_schedule", s.lr_schedule);
  v("lr_min", s.lr_min);
  v("grad_clip", s.grad_clip);
  v("ema_decay", s.ema_decay);
  v("ema_start", s.ema_start);
  v("p_uncond", s.p_uncond);
  v("log_every", s.log_every);
  v("eval_every", s.eval_every);
  v("eval_batches", s.eval_batches);
  v("sample_every", s.sample_every);
  v("checkpoint_every", s.checkpoint_every);
  v("autosave_minutes", s.autosave_minutes);
  v("seed", s.seed);
  v("timestep_sampler", s.timestep_sampler);
  v("timestep_uniform_mix", s.timestep_uniform_mix);
  v("out_dir", s.out_dir);
  v("threads", s.threads);
  v("precision", s.precision);
  v("loss_read_every", s.loss_read_every);
}

template <typename S, typename V>
IfSection<SampleConfig, S> visit_fields(S& s, V&& v) {
  v("sampler", s.sampler);
  v("steps", s.steps);
  v("eta", s.eta);
  v("variance", s.variance);
  v("sigmas", s.sigmas);
  v("karras_rho", s.karras_rho);
  v("s_churn", s.s_churn);
  v("flow_shift", s.flow_shift);
  v("guidance", s.guidance);
  v("guidance_sigma_min", s.guidance_sigma_min);
  v("guidance_sigma_max", s.guidance_sigma_max);
  v("n", s.n);
  v("class_label", s.class_label);
  v("seed", s.seed);
  v("clip_denoised", s.clip_denoised);
  v("use_ema", s.use_ema);
  v("classifier", s.classifier);
  v("classifier_scale", s.classifier_scale);
  v("guide_model", s.guide_model);
  v("chunk", s.chunk);
  v("precision", s.precision);
}

template <typename S, typename V>
IfSection<ControlNetConfig, S> visit_fields(S& s, V&& v) {
  v("base_checkpoint", s.base_checkpoint);
  v("hint", s.hint);
  v("canny_low", s.canny_low);
  v("canny_high", s.canny_high);
  v("mask_threshold", s.mask_threshold);
  v("batch_size", s.batch_size);
  v("steps", s.steps);
  v("lr", s.lr);
  v("warmup_steps", s.warmup_steps);
  v("lr_schedule", s.lr_schedule);
  v("lr_min", s.lr_min);
  v("grad_clip", s.grad_clip);
  v("p_uncond", s.p_uncond);
  v("scale", s.scale);
  v("checkpoint_every", s.checkpoint_every);
  v("seed", s.seed);
  v("out_dir", s.out_dir);
  v("loss_read_every", s.loss_read_every);
}

// v(name, section) for every section, in file order.
template <typename C, typename V>
void visit_sections(C& config, V&& v) {
  v("data", config.data);
  v("diffusion", config.diffusion);
  v("model", config.model);
  v("train", config.train);
  v("sample", config.sample);
  v("controlnet", config.controlnet);
}

template <typename S>
std::vector<std::string> field_names() {
  std::vector<std::string> names;
  const S defaults{};
  visit_fields(defaults, [&](const char* name, const auto&) { names.emplace_back(name); });
  return names;
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  const Config defaults{};
  visit_sections(defaults, [&](const char* name, const auto&) { names.emplace_back(name); });
  return names;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// [SECTION] Text of one value
// ---------------------------------------------------------------------------------------

// Shortest text that reads back as exactly `v` ("0.1", "0.0002", "1.0", "1.0e-20"), always
// with a '.' so that YAML readers see a float. Non-finite values use YAML's spellings.
std::string format_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  const double a = std::fabs(v);
  const bool fixed = a == 0.0 || (a >= 1e-5 && a < 1e15);
  char buf[400];  // fixed notation of anything below 1e15 is far shorter
  const auto res = std::to_chars(buf, buf + sizeof buf, v,
                                 fixed ? std::chars_format::fixed : std::chars_format::scientific);
  std::string s(buf, res.ptr);
  if (s.find('.') == std::string::npos) {
    const size_t e = s.find('e');
    s.insert(e == std::string::npos ? s.size() : e, ".0");
  }
  return s;
}

// A YAML double-quoted scalar, escaped by yaml-cpp itself.
std::string quote(const std::string& s) {
  YAML::Emitter out;
  out << YAML::DoubleQuoted << s;
  return out.c_str();
}

std::string format_value(int v) { return std::to_string(v); }
std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(uint64_t v) { return std::to_string(v); }
std::string format_value(double v) { return format_double(v); }
std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(const std::string& v) { return quote(v); }
std::string format_value(const std::vector<int>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}
template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
std::string format_value(E v) {
  const auto i = static_cast<size_t>(v);
  if (i >= EnumNames<E>::names.size()) return "<invalid " + std::to_string(i) + ">";
  return std::string(to_string(v));
}

// ---------------------------------------------------------------------------------------
// [SECTION] Reading
// ---------------------------------------------------------------------------------------

// "file:line:col: " (1-based) when the mark is known, else "file: ".
std::string where(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return source + ": ";
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
         ": ";
}

// How a node reads in an error message: the scalar text, or what kind of node it is.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an empty value";
  }
}

// One value being read: the file, "section.key" and where the value sits.
struct ValueSite {
  const std::string& source;
  std::string key;
  YAML::Mark mark;

  [[noreturn]] void fail(const YAML::Node& node, const std::string& expected) const {
    throw ConfigError(where(source, mark) + key + ": expected " + expected + ", got " +
                      describe(node));
  }
};

// Scalar text with an optional leading '+' removed (from_chars does not take one).
std::string_view number_text(const YAML::Node& node) {
  std::string_view s = node.Scalar();
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  return s;
}

template <typename I>
bool parse_integer(const YAML::Node& node, I& out) {
  if (!node.IsScalar()) return false;
  const std::string_view s = number_text(node);
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
}

void read_value(const YAML::Node& node, int& out, const ValueSite& site) {
  if (!parse_integer(node, out)) site.fail(node, "an integer (32-bit)");
}
void read_value(const YAML::Node& node, int64_t& out, const ValueSite& site) {
  if (!parse_integer(node, out)) site.fail(node, "an integer");
}
void read_value(const YAML::Node& node, uint64_t& out, const ValueSite& site) {
  if (!parse_integer(node, out)) site.fail(node, "a non-negative integer (64-bit)");
}

void read_value(const YAML::Node& node, double& out, const ValueSite& site) {
  if (!node.IsScalar()) site.fail(node, "a number");
  const std::string_view s = number_text(node);
  double v = 0.0;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || res.ec != std::errc() || res.ptr != s.data() + s.size() || !std::isfinite(v))
    site.fail(node, "a finite number");
  out = v;
}

void read_value(const YAML::Node& node, bool& out, const ValueSite& site) {
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, out)) site.fail(node, "true or false");
}

void read_value(const YAML::Node& node, std::string& out, const ValueSite& site) {
  if (node.IsNull()) {  // `path:` and `path: ~` mean the empty string
    out.clear();
    return;
  }
  if (!node.IsScalar()) site.fail(node, "a string");
  out = node.Scalar();
}

void read_value(const YAML::Node& node, std::vector<int>& out, const ValueSite& site) {
  if (!node.IsSequence()) site.fail(node, "a list of integers such as [1, 2, 4]");
  std::vector<int> values;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const ValueSite item_site{site.source, site.key + "[" + std::to_string(i) + "]", item.Mark()};
    int v = 0;
    read_value(item, v, item_site);
    values.push_back(v);
  }
  out = std::move(values);
}

template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
void read_value(const YAML::Node& node, E& out, const ValueSite& site) {
  if (!node.IsScalar()) site.fail(node, "one of: " + enum_choices<E>());
  const auto parsed = parse_enum<E>(node.Scalar());
  if (!parsed)
    throw ConfigError(where(site.source, site.mark) + site.key + ": unknown value " +
                      describe(node) + " (choices: " + enum_choices<E>() + ")");
  out = *parsed;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// "unknown key 'x' in section 's' (did you mean 'y'? known: a, b, c)".
std::string unknown_name_message(const std::string& what, const std::string& name,
                                 const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = kMaxSuggestionDistance + 1;
  for (const std::string& k : known) {
    const size_t d = edit_distance(name, k);
    if (d < best_distance && d < k.size()) {
      best = k;
      best_distance = d;
    }
  }
  std::string msg = "unknown " + what + " (";
  if (!best.empty()) msg += "did you mean '" + best + "'? ";
  return msg + "known: " + join(known) + ")";
}

// Calls on_entry(name, key node, value node) for every entry of a mapping, after checking
// that each key is a plain name and appears once. `context` reads "in section 'train'".
template <typename F>
void for_each_entry(const YAML::Node& map, const std::string& source, const std::string& context,
                    F&& on_entry) {
  std::map<std::string, YAML::Mark> seen;
  for (const auto& entry : map) {  // entry is a pair of Nodes, held by value
    const YAML::Node& key = entry.first;
    if (!key.IsScalar())
      throw ConfigError(where(source, key.Mark()) + "expected a key name " + context + ", got " +
                        describe(key));
    const std::string name = key.Scalar();
    const auto [previous, inserted] = seen.emplace(name, key.Mark());
    if (!inserted)
      throw ConfigError(where(source, key.Mark()) + "duplicate key '" + name + "' " + context +
                        " (first at line " + std::to_string(previous->second.line + 1) + ")");
    on_entry(name, key, entry.second);
  }
}

template <typename S>
void read_section(const YAML::Node& node, const std::string& section_name, S& section,
                  const std::string& source, const YAML::Mark& section_mark) {
  if (node.IsNull()) return;  // `train:` with nothing under it
  if (!node.IsMap())
    throw ConfigError(where(source, node.Mark().is_null() ? section_mark : node.Mark()) +
                      "section '" + section_name + "' must be a mapping of keys, got " +
                      describe(node));
  const std::string context = "in section '" + section_name + "'";
  for_each_entry(node, source, context,
                 [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
                   bool found = false;
                   visit_fields(section, [&](const char* field_name, auto& field) {
                     if (found || name != field_name) return;
                     found = true;
                     // A null value's mark points past the key; the key's is clearer.
                     const YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
                     read_value(value, field, ValueSite{source, section_name + "." + name, mark});
                   });
                   if (!found)
                     throw ConfigError(where(source, key.Mark()) +
                                       unknown_name_message("key '" + name + "' " + context, name,
                                                            field_names<S>()));
                 });
}

Config read_config(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(where(source, e.mark) + "YAML syntax error: " + e.msg);
  }
  Config config;
  if (root.IsNull()) return config;  // empty file: all defaults
  if (!root.IsMap())
    throw ConfigError(where(source, root.Mark()) + "expected a mapping of sections (" +
                      join(section_names()) + "), got " + describe(root));
  for_each_entry(root, source, "at the top level",
                 [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
                   bool found = false;
                   visit_sections(config, [&](const char* section_name, auto& section) {
                     if (found || name != section_name) return;
                     found = true;
                     read_section(value, name, section, source, key.Mark());
                   });
                   if (!found)
                     throw ConfigError(where(source, key.Mark()) +
                                       unknown_name_message("section '" + name + "'", name,
                                                            section_names()));
                 });
  return config;
}

// ---------------------------------------------------------------------------------------
// [SECTION] Writing
// ---------------------------------------------------------------------------------------

template <typename T>
std::string choices_comment(const T&) {
  if constexpr (std::is_enum_v<T>)
    return "  # " + enum_choices<T>();
  else
    return "";
}

// ---------------------------------------------------------------------------------------
// [SECTION] Validation
// ---------------------------------------------------------------------------------------

// Collects every problem so one error lists them all.
class Checker {
 public:
  template <typename T>
  void require(bool ok, const std::string& key, const T& value, const std::string& rule) {
    if (!ok) m_problems.push_back(key + " = " + format_value(value) + ": " + rule);
  }
  const std::vector<std::string>& problems() const { return m_problems; }

 private:
  std::vector<std::string> m_problems;
};

// NaN-safe: every comparison below is false for NaN, so NaN fails each check.
bool in_closed(double v, double lo, double hi) { return v >= lo && v <= hi; }
bool in_half_open(double v, double lo, double hi) { return v >= lo && v < hi; }
bool at_least(double v, double lo) { return v >= lo && std::isfinite(v); }

void check_data(const DataConfig& d, Checker& c) {
  c.require(d.image_size >= 8, "data.image_size", d.image_size, "must be >= 8");
  c.require(d.channels == 1 || d.channels == 3, "data.channels", d.channels, "must be 1 or 3");
  c.require(in_half_open(d.test_fraction, 0.0, 1.0), "data.test_fraction", d.test_fraction,
            "must be in [0, 1)");
  c.require(d.max_train >= 0, "data.max_train", d.max_train, "must be >= 0 (0 = all)");
  c.require(d.toy_points >= 16, "data.toy_points", d.toy_points, "must be >= 16");
  c.require(at_least(d.toy_noise, 0.0), "data.toy_noise", d.toy_noise,
            "must be a finite number >= 0");
}

void check_diffusion(const DiffusionConfig& d, Checker& c) {
  c.require(d.timesteps >= 2, "diffusion.timesteps", d.timesteps, "must be >= 2");
  const bool scaled = d.schedule == ScheduleKind::Linear ||
                      d.schedule == ScheduleKind::Quadratic ||
                      d.schedule == ScheduleKind::Sigmoid;
  if (d.timesteps >= 2 && scaled)
    c.require(d.timesteps >= kMinScaledTimesteps, "diffusion.timesteps", d.timesteps,
              "must be >= " + std::to_string(kMinScaledTimesteps) + " for the " +
                  std::string(to_string(d.schedule)) +
                  " schedule (its betas are scaled by 1000/T and must stay below 1)");
  c.require(at_least(d.vlb_weight, 0.0), "diffusion.vlb_weight", d.vlb_weight,
            "must be a finite number >= 0");
  // With a fixed variance the hybrid loss's VLB term (mean detached) has no gradient, and
  // with L_simple alone the variance channels never learn.
  if (d.loss == LossKind::Hybrid)
    c.require(d.learn_sigma, "diffusion.loss", d.loss,
              "needs diffusion.learn_sigma = true (the VLB term trains only the variance)");
  if (d.learn_sigma)
    c.require(d.loss == LossKind::Hybrid, "diffusion.learn_sigma", d.learn_sigma,
              "needs diffusion.loss = hybrid (L_simple alone never trains the variance)");
  c.require(d.min_snr_gamma > 0.0 && std::isfinite(d.min_snr_gamma), "diffusion.min_snr_gamma",
            d.min_snr_gamma, "must be a finite number > 0");
  if (d.objective != Objective::Ddpm) {
    // The DDPM-only keys would be silently ignored; say so instead.
    const std::string other = "applies to diffusion.objective = ddpm only, not " +
                              std::string(to_string(d.objective));
    c.require(d.prediction == Prediction::Eps, "diffusion.prediction", d.prediction,
              other + " (edm trains its preconditioned F, flow_matching the velocity; "
                      "leave prediction at eps)");
    c.require(!d.learn_sigma, "diffusion.learn_sigma", d.learn_sigma, other);
    c.require(d.loss == LossKind::Simple, "diffusion.loss", d.loss, other);
  }
  if (d.objective == Objective::Edm)
    c.require(d.loss_weighting == LossWeighting::Uniform, "diffusion.loss_weighting",
              d.loss_weighting,
              "applies to the ddpm and flow_matching objectives; edm has its own weight "
              "λ(σ) = (σ² + σ_data²)/(σ σ_data)²");
  c.require(d.edm_sigma_data > 0.0 && std::isfinite(d.edm_sigma_data), "diffusion.edm_sigma_data",
            d.edm_sigma_data, "must be a finite number > 0");
  c.require(std::isfinite(d.edm_p_mean), "diffusion.edm_p_mean", d.edm_p_mean,
            "must be a finite number");
  c.require(d.edm_p_std > 0.0 && std::isfinite(d.edm_p_std), "diffusion.edm_p_std", d.edm_p_std,
            "must be a finite number > 0");
  c.require(d.edm_sigma_min > 0.0 && std::isfinite(d.edm_sigma_min), "diffusion.edm_sigma_min",
            d.edm_sigma_min, "must be a finite number > 0");
  c.require(d.edm_sigma_max > d.edm_sigma_min && std::isfinite(d.edm_sigma_max),
            "diffusion.edm_sigma_max", d.edm_sigma_max,
            "must be a finite number > diffusion.edm_sigma_min");
  c.require(std::isfinite(d.flow_logit_mean), "diffusion.flow_logit_mean", d.flow_logit_mean,
            "must be a finite number");
  c.require(d.flow_logit_std > 0.0 && std::isfinite(d.flow_logit_std), "diffusion.flow_logit_std",
            d.flow_logit_std, "must be a finite number > 0");
}

void check_model(const ModelConfig& m, Checker& c) {
  c.require(m.base_channels >= 1, "model.base_channels", m.base_channels, "must be >= 1");
  c.require(!m.channel_mult.empty(), "model.channel_mult", m.channel_mult, "must not be empty");
  for (size_t i = 0; i < m.channel_mult.size(); ++i)
    c.require(m.channel_mult[i] >= 1, "model.channel_mult[" + std::to_string(i) + "]",
              m.channel_mult[i], "must be >= 1");
  for (size_t i = 0; i < m.attention_resolutions.size(); ++i)
    c.require(m.attention_resolutions[i] >= 1,
              "model.attention_resolutions[" + std::to_string(i) + "]",
              m.attention_resolutions[i], "must be >= 1");
  c.require(m.num_res_blocks >= 1, "model.num_res_blocks", m.num_res_blocks, "must be >= 1");
  c.require(m.num_heads >= 1, "model.num_heads", m.num_heads, "must be >= 1");
  c.require(m.norm_groups >= 1, "model.norm_groups", m.norm_groups, "must be >= 1");
  // GroupNorm needs every level's width (base_channels * mult) divisible by the groups.
  if (m.norm_groups >= 1 && m.base_channels >= 1) {
    for (int mult : m.channel_mult) {
      if (mult < 1) continue;
      const int64_t width = static_cast<int64_t>(m.base_channels) * mult;
      if (width % m.norm_groups != 0) {
        c.require(false, "model.norm_groups", m.norm_groups,
                  "must divide base_channels * channel_mult = " + std::to_string(m.base_channels) +
                      " * " + std::to_string(mult) + " = " + std::to_string(width));
        break;
      }
    }
  }
  c.require(in_half_open(m.dropout, 0.0, 1.0), "model.dropout", m.dropout, "must be in [0, 1)");
  c.require(m.num_classes >= 1, "model.num_classes", m.num_classes, "must be >= 1");
  c.require(m.mlp_hidden >= 1, "model.mlp_hidden", m.mlp_hidden, "must be >= 1");
  c.require(m.mlp_layers >= 1, "model.mlp_layers", m.mlp_layers, "must be >= 1");
}

void check_train(const TrainConfig& t, Checker& c) {
  c.require(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be >= 1");
  c.require(t.steps >= 0, "train.steps", t.steps, "must be >= 0");
  c.require(t.lr > 0.0 && std::isfinite(t.lr), "train.lr", t.lr, "must be a finite number > 0");
  c.require(at_least(t.weight_decay, 0.0), "train.weight_decay", t.weight_decay,
            "must be a finite number >= 0");
  c.require(in_half_open(t.adam_beta1, 0.0, 1.0), "train.adam_beta1", t.adam_beta1,
            "must be in [0, 1)");
  c.require(in_half_open(t.adam_beta2, 0.0, 1.0), "train.adam_beta2", t.adam_beta2,
            "must be in [0, 1)");
  c.require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "must be >= 0");
  // Checked only where used: a constant run may lower lr past a stray lr_min.
  c.require(t.lr_schedule == LrScheduleKind::Constant || (t.lr_min >= 0.0 && t.lr_min <= t.lr),
            "train.lr_min", t.lr_min, "must be in [0, train.lr] with a decaying train.lr_schedule");
  c.require(at_least(t.grad_clip, 0.0), "train.grad_clip", t.grad_clip,
            "must be a finite number >= 0 (0 = off)");
  c.require(in_closed(t.ema_decay, 0.0, 1.0), "train.ema_decay", t.ema_decay, "must be in [0, 1]");
  c.require(t.ema_start >= 0, "train.ema_start", t.ema_start, "must be >= 0");
  c.require(in_closed(t.p_uncond, 0.0, 1.0), "train.p_uncond", t.p_uncond, "must be in [0, 1]");
  c.require(t.log_every >= 1, "train.log_every", t.log_every, "must be >= 1");
  c.require(t.eval_every >= 0, "train.eval_every", t.eval_every, "must be >= 0");
  c.require(t.eval_batches >= 1, "train.eval_batches", t.eval_batches, "must be >= 1");
  c.require(t.sample_every >= 0, "train.sample_every", t.sample_every, "must be >= 0 (0 = off)");
  c.require(t.checkpoint_every >= 0, "train.checkpoint_every", t.checkpoint_every,
            "must be >= 0");
  c.require(in_closed(t.autosave_minutes, 0.0, 1e6), "train.autosave_minutes", t.autosave_minutes,
            "must be a number of minutes >= 0 (0 = off)");
  c.require(t.threads >= 0 && t.threads <= 4096, "train.threads", t.threads,
            "must be in [0, 4096] (0 = all cores; more than 4x the cores are not used)");
  c.require(in_closed(t.timestep_uniform_mix, 0.0, 1.0), "train.timestep_uniform_mix",
            t.timestep_uniform_mix, "must be in [0, 1]");
  c.require(t.loss_read_every >= 0 && t.loss_read_every <= 1024, "train.loss_read_every",
            t.loss_read_every, "must be in [0, 1024] (0 = auto: 1 on the CPU, 16 on CUDA)");
}

void check_controlnet(const ControlNetConfig& n, Checker& c) {
  c.require(in_closed(n.canny_low, 0.0, 1e6), "controlnet.canny_low", n.canny_low,
            "must be a finite number >= 0");
  c.require(n.canny_high >= n.canny_low && std::isfinite(n.canny_high), "controlnet.canny_high",
            n.canny_high, "must be a finite number >= controlnet.canny_low");
  c.require(n.mask_threshold >= 0.0 && n.mask_threshold < 1.0, "controlnet.mask_threshold",
            n.mask_threshold, "must be in [0, 1)");
  c.require(n.batch_size >= 1, "controlnet.batch_size", n.batch_size, "must be >= 1");
  c.require(n.steps >= 1, "controlnet.steps", n.steps, "must be >= 1");
  c.require(n.lr > 0.0 && std::isfinite(n.lr), "controlnet.lr", n.lr, "must be a finite number > 0");
  c.require(n.warmup_steps >= 0, "controlnet.warmup_steps", n.warmup_steps, "must be >= 0");
  c.require(n.lr_schedule == LrScheduleKind::Constant || (n.lr_min >= 0.0 && n.lr_min <= n.lr),
            "controlnet.lr_min", n.lr_min,
            "must be in [0, controlnet.lr] with a decaying controlnet.lr_schedule");
  c.require(at_least(n.grad_clip, 0.0), "controlnet.grad_clip", n.grad_clip,
            "must be a finite number >= 0 (0 = off)");
  c.require(in_closed(n.p_uncond, 0.0, 1.0), "controlnet.p_uncond", n.p_uncond, "must be in [0, 1]");
  c.require(std::isfinite(n.scale), "controlnet.scale", n.scale, "must be a finite number");
  c.require(n.checkpoint_every >= 0, "controlnet.checkpoint_every", n.checkpoint_every,
            "must be >= 0 (0 = only at the end)");
  c.require(n.loss_read_every >= 0 && n.loss_read_every <= 1024, "controlnet.loss_read_every",
            n.loss_read_every, "must be in [0, 1024] (0 = auto: 1 on the CPU, 16 on CUDA)");
}

void check_sample(const SampleConfig& s, const Config& config, Checker& c) {
  const int timesteps = config.diffusion.timesteps;
  c.require(s.steps >= 1 && s.steps <= timesteps, "sample.steps", s.steps,
            "must be in [1, diffusion.timesteps = " + std::to_string(timesteps) + "]");
  c.require(at_least(s.eta, 0.0), "sample.eta", s.eta, "must be a finite number >= 0");
  c.require(s.karras_rho > 0.0 && std::isfinite(s.karras_rho), "sample.karras_rho", s.karras_rho,
            "must be a finite number > 0");
  c.require(at_least(s.s_churn, 0.0), "sample.s_churn", s.s_churn,
            "must be a finite number >= 0 (0 = deterministic)");
  c.require(s.flow_shift > 0.0 && std::isfinite(s.flow_shift), "sample.flow_shift", s.flow_shift,
            "must be a finite number > 0 (1 = no shift)");
  c.require(at_least(s.guidance, 0.0), "sample.guidance", s.guidance,
            "must be a finite number >= 0");
  c.require(at_least(s.guidance_sigma_min, 0.0), "sample.guidance_sigma_min",
            s.guidance_sigma_min, "must be a finite number >= 0 (0 = no lower limit)");
  c.require(at_least(s.guidance_sigma_max, 0.0), "sample.guidance_sigma_max",
            s.guidance_sigma_max, "must be a finite number >= 0 (0 = no upper limit)");
  c.require(s.guidance_sigma_max == 0.0 || !(s.guidance_sigma_max <= s.guidance_sigma_min),
            "sample.guidance_sigma_max", s.guidance_sigma_max,
            "must be above sample.guidance_sigma_min (or 0 = no upper limit)");
  c.require(s.n >= 1, "sample.n", s.n, "must be >= 1");
  c.require(s.chunk >= 0, "sample.chunk", s.chunk, "must be >= 0 (0 = auto)");
  if (s.variance == VarianceKind::Learned)
    c.require(config.diffusion.learn_sigma, "sample.variance", s.variance,
              "needs a model trained with diffusion.learn_sigma = true");
  c.require(std::isfinite(s.classifier_scale), "sample.classifier_scale", s.classifier_scale,
            "must be a finite number");
  c.require(s.classifier_scale == 0.0 || !s.classifier.empty(), "sample.classifier_scale",
            s.classifier_scale, "needs sample.classifier (a train-classifier checkpoint)");
  const int num_classes = config.model.num_classes;
  c.require(s.class_label >= -1 && s.class_label <= num_classes - 1, "sample.class_label",
            s.class_label,
            "must be in [-1, model.num_classes - 1 = " + std::to_string(num_classes - 1) +
                "] (-1 = cycle through the classes)");
}

// Enum fields set from code (not from YAML) could hold any integer.
void check_enums(const Config& config, Checker& c) {
  visit_sections(config, [&](const char* section_name, const auto& section) {
    visit_fields(section, [&](const char* name, const auto& field) {
      using T = std::decay_t<decltype(field)>;
      if constexpr (std::is_enum_v<T>) {
        const auto i = static_cast<size_t>(field);
        c.require(i < EnumNames<T>::names.size(), std::string(section_name) + "." + name, field,
                  "must be one of: " + enum_choices<T>());
      }
    });
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------
// [SECTION] Public API
// ---------------------------------------------------------------------------------------

Config config_from_yaml(const std::string& text, const std::string& source) {
  Config config = read_config(text, source);
  validate(config, source);
  return config;
}

Config load_config(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw ConfigError("cannot read config '" + path + "': no such file");
  if (fs::is_directory(path, ec))
    throw ConfigError("cannot read config '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read config '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError("cannot read config '" + path + "': read error");
  return config_from_yaml(text.str(), path);
}

std::string config_to_yaml(const Config& config) {
  std::string out = "# Diffusion Lab config: every field (see core/config/config.h).\n";
  visit_sections(config, [&](const char* section_name, const auto& section) {
    out += std::string(section_name) + ":\n";
    visit_fields(section, [&](const char* name, const auto& field) {
      out += "  " + std::string(name) + ": " + format_value(field) + choices_comment(field) + "\n";
    });
  });
  return out;
}

void save_config(const Config& config, const std::string& path) {
  const std::string text = config_to_yaml(config);
  try {
    write_file_atomic(path, text);
  } catch (const std::runtime_error& e) {
    throw ConfigError(std::string("config: ") + e.what());
  }
}

void validate(const Config& config, const std::string& source) {
  Checker c;
  check_enums(config, c);
  check_data(config.data, c);
  check_diffusion(config.diffusion, c);
  check_model(config.model, c);
  check_train(config.train, c);
  check_sample(config.sample, config, c);
  if (config.diffusion.objective != Objective::Ddpm)
    c.require(config.train.timestep_sampler == TimestepSamplerKind::Uniform,
              "train.timestep_sampler", config.train.timestep_sampler,
              "loss_aware draws DDPM's timestep rows; edm and flow_matching draw their own "
              "noise levels (diffusion.edm_p_mean / edm_p_std, diffusion.flow_t_sampling)");
  check_controlnet(config.controlnet, c);
  const auto& problems = c.problems();
  if (problems.empty()) return;
  if (problems.size() == 1) throw ConfigError(source + ": invalid " + problems.front());
  std::string msg = source + ": " + std::to_string(problems.size()) + " invalid values:";
  for (const std::string& p : problems) msg += "\n  " + p;
  throw ConfigError(msg);
}

std::string guidance_interval_text(const SampleConfig& s) {
  const bool lo = s.guidance_sigma_min > 0.0, hi = s.guidance_sigma_max > 0.0;
  const std::string how = s.guide_model.empty() ? "cfg" : "autoguided by " + s.guide_model;
  if (!lo && !hi) return s.guide_model.empty() ? "" : how;
  char text[96];
  if (lo && hi)
    std::snprintf(text, sizeof text, " at sigma %g..%g", s.guidance_sigma_min, s.guidance_sigma_max);
  else if (lo)
    std::snprintf(text, sizeof text, " at sigma > %g", s.guidance_sigma_min);
  else
    std::snprintf(text, sizeof text, " at sigma <= %g", s.guidance_sigma_max);
  return how + text;
}

}  // namespace difflab
