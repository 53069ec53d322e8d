// Config: YAML parsing, error messages, validation, writing, presets.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/config/config.h"

namespace difflab {
namespace {

namespace fs = std::filesystem;

// A fresh, empty folder under DIFFLAB_TEST_TMP for one test.
fs::path test_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / "config" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The message of the ConfigError that `f` throws ("" plus a test failure when none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

std::string parse_error(const std::string& text, const std::string& source = "x.yaml") {
  return error_of([&] { config_from_yaml(text, source); });
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.data.kind, b.data.kind);
  EXPECT_EQ(a.data.path, b.data.path);
  EXPECT_EQ(a.data.image_size, b.data.image_size);
  EXPECT_EQ(a.data.channels, b.data.channels);
  EXPECT_EQ(a.data.test_fraction, b.data.test_fraction);
  EXPECT_EQ(a.data.max_train, b.data.max_train);
  EXPECT_EQ(a.data.toy, b.data.toy);
  EXPECT_EQ(a.data.toy_points, b.data.toy_points);
  EXPECT_EQ(a.data.toy_noise, b.data.toy_noise);
  EXPECT_EQ(a.data.seed, b.data.seed);

  EXPECT_EQ(a.diffusion.schedule, b.diffusion.schedule);
  EXPECT_EQ(a.diffusion.timesteps, b.diffusion.timesteps);
  EXPECT_EQ(a.diffusion.prediction, b.diffusion.prediction);
  EXPECT_EQ(a.diffusion.learn_sigma, b.diffusion.learn_sigma);
  EXPECT_EQ(a.diffusion.loss, b.diffusion.loss);
  EXPECT_EQ(a.diffusion.vlb_weight, b.diffusion.vlb_weight);

  EXPECT_EQ(a.model.kind, b.model.kind);
  EXPECT_EQ(a.model.base_channels, b.model.base_channels);
  EXPECT_EQ(a.model.channel_mult, b.model.channel_mult);
  EXPECT_EQ(a.model.num_res_blocks, b.model.num_res_blocks);
  EXPECT_EQ(a.model.attention_resolutions, b.model.attention_resolutions);
  EXPECT_EQ(a.model.num_heads, b.model.num_heads);
  EXPECT_EQ(a.model.dropout, b.model.dropout);
  EXPECT_EQ(a.model.activation, b.model.activation);
  EXPECT_EQ(a.model.norm_groups, b.model.norm_groups);
  EXPECT_EQ(a.model.init, b.model.init);
  EXPECT_EQ(a.model.zero_init_last, b.model.zero_init_last);
  EXPECT_EQ(a.model.class_conditional, b.model.class_conditional);
  EXPECT_EQ(a.model.num_classes, b.model.num_classes);
  EXPECT_EQ(a.model.mlp_hidden, b.model.mlp_hidden);
  EXPECT_EQ(a.model.mlp_layers, b.model.mlp_layers);

  EXPECT_EQ(a.train.batch_size, b.train.batch_size);
  EXPECT_EQ(a.train.steps, b.train.steps);
  EXPECT_EQ(a.train.lr, b.train.lr);
  EXPECT_EQ(a.train.weight_decay, b.train.weight_decay);
  EXPECT_EQ(a.train.adam_beta1, b.train.adam_beta1);
  EXPECT_EQ(a.train.adam_beta2, b.train.adam_beta2);
  EXPECT_EQ(a.train.warmup_steps, b.train.warmup_steps);
  EXPECT_EQ(a.train.lr_schedule, b.train.lr_schedule);
  EXPECT_EQ(a.train.lr_min, b.train.lr_min);
  EXPECT_EQ(a.train.grad_clip, b.train.grad_clip);
  EXPECT_EQ(a.train.ema_decay, b.train.ema_decay);
  EXPECT_EQ(a.train.ema_start, b.train.ema_start);
  EXPECT_EQ(a.train.p_uncond, b.train.p_uncond);
  EXPECT_EQ(a.train.log_every, b.train.log_every);
  EXPECT_EQ(a.train.eval_every, b.train.eval_every);
  EXPECT_EQ(a.train.eval_batches, b.train.eval_batches);
  EXPECT_EQ(a.train.sample_every, b.train.sample_every);
  EXPECT_EQ(a.train.checkpoint_every, b.train.checkpoint_every);
  EXPECT_EQ(a.train.seed, b.train.seed);
  EXPECT_EQ(a.train.timestep_sampler, b.train.timestep_sampler);
  EXPECT_EQ(a.train.timestep_uniform_mix, b.train.timestep_uniform_mix);
  EXPECT_EQ(a.train.loss_read_every, b.train.loss_read_every);
  EXPECT_EQ(a.train.out_dir, b.train.out_dir);
  EXPECT_EQ(a.train.threads, b.train.threads);
  EXPECT_EQ(a.train.precision, b.train.precision);

  EXPECT_EQ(a.sample.sampler, b.sample.sampler);
  EXPECT_EQ(a.sample.steps, b.sample.steps);
  EXPECT_EQ(a.sample.eta, b.sample.eta);
  EXPECT_EQ(a.sample.variance, b.sample.variance);
  EXPECT_EQ(a.sample.sigmas, b.sample.sigmas);
  EXPECT_EQ(a.sample.karras_rho, b.sample.karras_rho);
  EXPECT_EQ(a.sample.guidance, b.sample.guidance);
  EXPECT_EQ(a.sample.guidance_sigma_min, b.sample.guidance_sigma_min);
  EXPECT_EQ(a.sample.guidance_sigma_max, b.sample.guidance_sigma_max);
  EXPECT_EQ(a.sample.n, b.sample.n);
  EXPECT_EQ(a.sample.class_label, b.sample.class_label);
  EXPECT_EQ(a.sample.seed, b.sample.seed);
  EXPECT_EQ(a.sample.clip_denoised, b.sample.clip_denoised);
  EXPECT_EQ(a.sample.use_ema, b.sample.use_ema);
  EXPECT_EQ(a.sample.chunk, b.sample.chunk);
  EXPECT_EQ(a.sample.precision, b.sample.precision);

  EXPECT_EQ(a.controlnet.base_checkpoint, b.controlnet.base_checkpoint);
  EXPECT_EQ(a.controlnet.hint, b.controlnet.hint);
  EXPECT_EQ(a.controlnet.canny_low, b.controlnet.canny_low);
  EXPECT_EQ(a.controlnet.canny_high, b.controlnet.canny_high);
  EXPECT_EQ(a.controlnet.mask_threshold, b.controlnet.mask_threshold);
  EXPECT_EQ(a.controlnet.batch_size, b.controlnet.batch_size);
  EXPECT_EQ(a.controlnet.steps, b.controlnet.steps);
  EXPECT_EQ(a.controlnet.lr, b.controlnet.lr);
  EXPECT_EQ(a.controlnet.warmup_steps, b.controlnet.warmup_steps);
  EXPECT_EQ(a.controlnet.lr_schedule, b.controlnet.lr_schedule);
  EXPECT_EQ(a.controlnet.lr_min, b.controlnet.lr_min);
  EXPECT_EQ(a.controlnet.grad_clip, b.controlnet.grad_clip);
  EXPECT_EQ(a.controlnet.p_uncond, b.controlnet.p_uncond);
  EXPECT_EQ(a.controlnet.scale, b.controlnet.scale);
  EXPECT_EQ(a.controlnet.checkpoint_every, b.controlnet.checkpoint_every);
  EXPECT_EQ(a.controlnet.seed, b.controlnet.seed);
  EXPECT_EQ(a.controlnet.out_dir, b.controlnet.out_dir);
  EXPECT_EQ(a.controlnet.loss_read_every, b.controlnet.loss_read_every);
}

// Every field differs from its default (and the values need all digits to round-trip).
Config non_default_config() {
  Config c;
  c.data.kind = DatasetKind::ImageFolder;
  c.data.path = "/data/my images: #1 \"quoted\"";
  c.data.image_size = 64;
  c.data.channels = 3;
  c.data.test_fraction = 1.0 / 3.0;
  c.data.max_train = 5000000000;
  c.data.toy = Toy2dKind::Checkerboard;
  c.data.toy_points = 12345;
  c.data.toy_noise = 0.1 + 0.2;  // 0.30000000000000004
  c.data.seed = std::numeric_limits<uint64_t>::max();

  c.diffusion.schedule = ScheduleKind::Sigmoid;
  c.diffusion.timesteps = 4000;
  c.diffusion.prediction = Prediction::V;
  c.diffusion.learn_sigma = true;
  c.diffusion.loss = LossKind::Hybrid;
  c.diffusion.vlb_weight = 0.1 + 0.7;  // 0.7999999999999999

  c.model.kind = ModelKind::Mlp;
  c.model.base_channels = 48;
  c.model.channel_mult = {1, 2, 3, 4};
  c.model.num_res_blocks = 3;
  c.model.attention_resolutions = {};
  c.model.num_heads = 2;
  c.model.dropout = 0.25;
  c.model.activation = Activation::Mish;
  c.model.norm_groups = 12;
  c.model.init = WeightInit::He;
  c.model.zero_init_last = false;
  c.model.class_conditional = false;
  c.model.num_classes = 100;
  c.model.mlp_hidden = 256;
  c.model.mlp_layers = 6;

  c.train.batch_size = 17;
  c.train.steps = 10000000000;
  c.train.lr = 3e-5;
  c.train.weight_decay = 1e-20;
  c.train.adam_beta1 = 0.8;
  c.train.adam_beta2 = 0.95;
  c.train.warmup_steps = 0;
  c.train.grad_clip = 0.0;
  c.train.ema_decay = 0.9999;
  c.train.ema_start = 0;
  c.train.p_uncond = 0.2;
  c.train.log_every = 7;
  c.train.eval_every = 0;
  c.train.eval_batches = 3;
  c.train.sample_every = 0;
  c.train.checkpoint_every = 250;
  c.train.seed = 18446744073709551557ull;
  c.train.timestep_sampler = TimestepSamplerKind::LossAware;
  c.train.timestep_uniform_mix = 0.05;
  c.train.loss_read_every = 16;
  c.train.lr_schedule = LrScheduleKind::Cosine;
  c.train.lr_min = 1.5e-5;
  c.train.out_dir = "runs/with space/ünïcode";
  c.train.threads = 3;
  c.train.precision = Precision::Auto;

  c.sample.sampler = SamplerKind::Ddpm;
  c.sample.steps = 4000;
  c.sample.eta = 1.0;
  c.sample.variance = VarianceKind::Learned;
  c.sample.sigmas = SigmaSpacing::Karras;
  c.sample.karras_rho = 2.0 / 3.0;
  c.sample.guidance = 7.5;
  c.sample.guidance_sigma_min = 0.28;
  c.sample.guidance_sigma_max = 5.42;
  c.sample.guide_model = "runs/weak model: #2";
  c.sample.n = 9;
  c.sample.class_label = 99;
  c.sample.seed = 42;
  c.sample.clip_denoised = false;
  c.sample.use_ema = false;
  c.sample.chunk = 250;
  c.sample.precision = Precision::Bf16;

  c.controlnet.base_checkpoint = "runs/base #3/checkpoints/latest";
  c.controlnet.hint = HintKind::Distance;
  c.controlnet.canny_low = 50.5;
  c.controlnet.canny_high = 150.25;
  c.controlnet.mask_threshold = 0.35;
  c.controlnet.batch_size = 48;
  c.controlnet.steps = 7000;
  c.controlnet.lr = 3.3e-4;
  c.controlnet.warmup_steps = 11;
  c.controlnet.lr_schedule = LrScheduleKind::Linear;
  c.controlnet.lr_min = 3.3e-4;  // = lr: allowed (the edge)
  c.controlnet.grad_clip = 0.0;
  c.controlnet.p_uncond = 0.3;
  c.controlnet.scale = 1.7;
  c.controlnet.checkpoint_every = 123;
  c.controlnet.seed = 77;
  c.controlnet.out_dir = "runs/my controlnet";
  c.controlnet.loss_read_every = 8;
  return c;
}

// ---- defaults and round trips ------------------------------------------------------------

TEST(Config, DefaultsValidate) { EXPECT_NO_THROW(validate(Config{})); }

TEST(Config, EmptyTextAndEmptySectionsGiveDefaults) {
  expect_same(config_from_yaml("", "empty.yaml"), Config{});
  expect_same(config_from_yaml("# only a comment\n", "c.yaml"), Config{});
  expect_same(config_from_yaml("data:\ntrain:\n", "s.yaml"), Config{});
}

TEST(Config, PartialSectionKeepsOtherDefaults) {
  const Config c = config_from_yaml("train:\n  lr: 1e-3\n  steps: 10\n", "p.yaml");
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_EQ(c.train.batch_size, TrainConfig{}.batch_size);
  EXPECT_EQ(c.model.channel_mult, ModelConfig{}.channel_mult);
}

TEST(Config, NonDefaultConfigIsValid) { EXPECT_NO_THROW(validate(non_default_config())); }

TEST(Config, AGuidanceIntervalMayBeOpenOnEitherSide) {
  Config c;
  EXPECT_EQ(guidance_interval_text(c.sample), "");  // the default guides everywhere
  c.sample.guidance_sigma_min = 0.28;
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(guidance_interval_text(c.sample), "cfg at sigma > 0.28");
  c.sample.guidance_sigma_max = 5.42;
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(guidance_interval_text(c.sample), "cfg at sigma 0.28..5.42");
  c.sample.guidance_sigma_min = 0.0;
  EXPECT_NO_THROW(validate(c));
  EXPECT_EQ(guidance_interval_text(c.sample), "cfg at sigma <= 5.42");
  c.sample.guidance_sigma_min = 5.42;  // an empty interval
  EXPECT_CONTAINS(error_of([&] { validate(c); }), "sample.guidance_sigma_max = 5.42");
  // Autoguidance names its guide model, with or without an interval.
  c.sample.guidance_sigma_min = 0.0;
  c.sample.guide_model = "runs/small";
  EXPECT_EQ(guidance_interval_text(c.sample), "autoguided by runs/small at sigma <= 5.42");
  c.sample.guidance_sigma_max = 0.0;
  EXPECT_EQ(guidance_interval_text(c.sample), "autoguided by runs/small");
}

TEST(Config, RoundTripEveryField) {
  const Config original = non_default_config();
  const std::string text = config_to_yaml(original);
  const Config back = config_from_yaml(text, "roundtrip.yaml");
  expect_same(original, back);
  EXPECT_EQ(config_to_yaml(back), text);  // and writing is stable
}

TEST(Config, RoundTripDefaults) {
  expect_same(config_from_yaml(config_to_yaml(Config{}), "d.yaml"), Config{});
}

TEST(Config, ToYamlIsBlockStyleWithEverySection) {
  const std::string text = config_to_yaml(Config{});
  for (const char* section : {"data:\n", "diffusion:\n", "model:\n", "train:\n", "sample:\n"})
    EXPECT_CONTAINS(text, std::string("\n") + section);
  EXPECT_CONTAINS(text, "\n  kind: mnist");
  EXPECT_CONTAINS(text, "\n  channel_mult: [1, 2, 4]\n");
  EXPECT_CONTAINS(text, "\n  out_dir: \"runs/mnist\"\n");
}

TEST(Config, DoublesUseShortestExactText) {
  const std::string text = config_to_yaml(Config{});
  EXPECT_CONTAINS(text, "\n  test_fraction: 0.1\n");
  EXPECT_CONTAINS(text, "\n  lr: 0.0002\n");
  EXPECT_CONTAINS(text, "\n  ema_decay: 0.999\n");
  EXPECT_CONTAINS(text, "\n  grad_clip: 1.0\n");
  EXPECT_CONTAINS(text, "\n  eta: 0.0\n");
  for (double v : {0.1, 1.0 / 3.0, 1e-300, 4.9406564584124654e-324, 1e300, 123456789.123456789,
                   2e-4, 0.1 + 0.2, 1e15, 1e-5, 9.999999999999999e-6, 0.0}) {
    Config c;
    c.data.toy_noise = v;
    const Config back = config_from_yaml(config_to_yaml(c), "d.yaml");
    EXPECT_EQ(back.data.toy_noise, v) << config_to_yaml(c);
  }
}

TEST(Config, AcceptsYamlSpellingsOfValues) {
  const Config c = config_from_yaml(
      "data: {path: ~, seed: +7}\n"
      "model: {class_conditional: no, zero_init_last: yes, channel_mult: [2, 4]}\n"
      "train: {lr: 5E-4, grad_clip: .5, steps: \"100\"}\n",
      "s.yaml");
  EXPECT_EQ(c.data.path, "");
  EXPECT_EQ(c.data.seed, 7u);
  EXPECT_FALSE(c.model.class_conditional);
  EXPECT_TRUE(c.model.zero_init_last);
  EXPECT_EQ(c.model.channel_mult, (std::vector<int>{2, 4}));
  EXPECT_EQ(c.train.lr, 5e-4);
  EXPECT_EQ(c.train.grad_clip, 0.5);
  EXPECT_EQ(c.train.steps, 100);
}

// ---- parse errors -------------------------------------------------------------------------

TEST(Config, UnknownKeyNamesFileLineKeyAndKnownKeys) {
  const std::string msg =
      parse_error("data:\n  kind: mnist\ntrain:\n  batch_size: 8\n  lerning_rate: 0.1\n",
                  "configs/x.yaml");
  EXPECT_CONTAINS(msg, "configs/x.yaml:5:3:");
  EXPECT_CONTAINS(msg, "unknown key 'lerning_rate'");
  EXPECT_CONTAINS(msg, "section 'train'");
  EXPECT_CONTAINS(msg, "known: batch_size, steps, lr,");
}

TEST(Config, UnknownKeySuggestsNearName) {
  const std::string msg = parse_error("train:\n  stpes: 10\n");
  EXPECT_CONTAINS(msg, "did you mean 'steps'?");
}

TEST(Config, UnknownSection) {
  const std::string msg = parse_error("data: {}\ntrian:\n  steps: 1\n", "u.yaml");
  EXPECT_CONTAINS(msg, "u.yaml:2:1:");
  EXPECT_CONTAINS(msg, "unknown section 'trian'");
  EXPECT_CONTAINS(msg, "did you mean 'train'?");
  EXPECT_CONTAINS(msg, "data, diffusion, model, train, sample");
}

TEST(Config, DuplicateKey) {
  const std::string msg = parse_error("train:\n  lr: 0.1\n  lr: 0.2\n", "dup.yaml");
  EXPECT_CONTAINS(msg, "dup.yaml:3:3:");
  EXPECT_CONTAINS(msg, "duplicate key 'lr'");
}

TEST(Config, BadTypeNamesFileLineKeyValueAndExpectation) {
  const std::string msg = parse_error("data: {}\ntrain:\n  steps: abc\n", "bad.yaml");
  EXPECT_CONTAINS(msg, "bad.yaml:3:10:");
  EXPECT_CONTAINS(msg, "train.steps");
  EXPECT_CONTAINS(msg, "'abc'");
  EXPECT_CONTAINS(msg, "expected an integer");
}

TEST(Config, BadTypesOfEveryKind) {
  struct Case {
    const char* text;
    const char* key;
    const char* expected;
  };
  const Case cases[] = {
      {"data: {image_size: 28.5}", "data.image_size", "integer"},
      {"data: {image_size: 99999999999}", "data.image_size", "integer (32-bit)"},
      {"data: {seed: -1}", "data.seed", "non-negative integer"},
      {"data: {path: [a, b]}", "data.path", "expected a string, got a list"},
      {"train: {lr: fast}", "train.lr", "expected a finite number, got 'fast'"},
      {"train: {lr: .inf}", "train.lr", "finite number"},
      {"train: {lr: nan}", "train.lr", "finite number"},
      {"train: {steps: }", "train.steps", "got an empty value"},
      {"model: {class_conditional: maybe}", "model.class_conditional", "true or false"},
      {"model: {channel_mult: 3}", "model.channel_mult", "list of integers"},
      {"model: {channel_mult: [1, two]}", "model.channel_mult[1]", "'two'"},
      {"model: {kind: {a: 1}}", "model.kind", "got a mapping"},
  };
  for (const Case& c : cases) {
    const std::string msg = parse_error(c.text, "t.yaml");
    EXPECT_CONTAINS(msg, "t.yaml:1:");
    EXPECT_CONTAINS(msg, c.key);
    EXPECT_CONTAINS(msg, c.expected);
  }
}

TEST(Config, SectionAndDocumentMustBeMappings) {
  EXPECT_CONTAINS(parse_error("train: 5\n"), "section 'train' must be a mapping");
  EXPECT_CONTAINS(parse_error("- a\n- b\n"), "expected a mapping of sections");
}

TEST(Config, BadEnumListsChoices) {
  const std::string msg = parse_error("data:\n  kind: mnistt\n", "e.yaml");
  EXPECT_CONTAINS(msg, "e.yaml:2:9:");
  EXPECT_CONTAINS(msg, "data.kind");
  EXPECT_CONTAINS(msg, "'mnistt'");
  EXPECT_CONTAINS(msg, enum_choices<DatasetKind>());
  EXPECT_CONTAINS(parse_error("sample: {sampler: eulr}"),
                  "ddpm, ddim, euler, euler_ancestral, heun, dpmpp_2m");
  const std::string sigmas = parse_error("sample:\n  sigmas: karas\n", "s.yaml");
  EXPECT_CONTAINS(sigmas, "s.yaml:2:11:");
  EXPECT_CONTAINS(sigmas, "sample.sigmas");
  EXPECT_CONTAINS(sigmas, "'karas'");
  EXPECT_CONTAINS(sigmas, "model, karras");
}

TEST(Config, BrokenYamlNamesFile) {
  const std::string msg = parse_error("data: {}\ntrain: [1, 2", "broken.yaml");
  EXPECT_CONTAINS(msg, "broken.yaml:");
  EXPECT_CONTAINS(msg, "YAML syntax error");
  EXPECT_CONTAINS(parse_error("train:\n  lr: 1\n   steps: 2\n", "indent.yaml"), "indent.yaml:");
}

TEST(Config, MissingFileNamesPath) {
  const std::string path = (test_dir("missing") / "nope.yaml").string();
  const std::string msg = error_of([&] { load_config(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "no such file");
  EXPECT_CONTAINS(error_of([&] { load_config(test_dir("a_dir").string()); }), "directory");
}

// ---- validation ---------------------------------------------------------------------------

TEST(Config, ValidateNamesKeyValueAndSource) {
  struct Case {
    std::function<void(Config&)> change;
    const char* key_and_value;
  };
  const std::vector<Case> cases = {
      {[](Config& c) { c.diffusion.timesteps = 1; }, "diffusion.timesteps = 1"},
      {[](Config& c) { c.diffusion.timesteps = 10; }, "diffusion.timesteps = 10"},
      {[](Config& c) { c.data.image_size = 4; }, "data.image_size = 4"},
      {[](Config& c) { c.data.channels = 2; }, "data.channels = 2"},
      {[](Config& c) { c.data.test_fraction = 1.0; }, "data.test_fraction = 1.0"},
      {[](Config& c) { c.data.test_fraction = -0.1; }, "data.test_fraction = -0.1"},
      {[](Config& c) { c.data.toy_points = 15; }, "data.toy_points = 15"},
      {[](Config& c) { c.model.base_channels = 0; }, "model.base_channels = 0"},
      {[](Config& c) { c.model.channel_mult = {}; }, "model.channel_mult = []"},
      {[](Config& c) { c.model.channel_mult = {1, 0}; }, "model.channel_mult[1] = 0"},
      {[](Config& c) { c.model.num_res_blocks = 0; }, "model.num_res_blocks = 0"},
      {[](Config& c) { c.model.num_heads = 0; }, "model.num_heads = 0"},
      {[](Config& c) { c.model.norm_groups = 5; }, "model.norm_groups = 5"},
      {[](Config& c) {
         c.model.base_channels = 4;
         c.model.channel_mult = {2, 3};  // 4 * 2 = 8 divides, 4 * 3 = 12 does not
       },
       "model.norm_groups = 8"},
      {[](Config& c) { c.model.dropout = 1.0; }, "model.dropout = 1.0"},
      {[](Config& c) { c.model.num_classes = 0; }, "model.num_classes = 0"},
      {[](Config& c) { c.model.mlp_hidden = 0; }, "model.mlp_hidden = 0"},
      {[](Config& c) { c.model.mlp_layers = 0; }, "model.mlp_layers = 0"},
      {[](Config& c) { c.train.batch_size = 0; }, "train.batch_size = 0"},
      {[](Config& c) { c.train.steps = -1; }, "train.steps = -1"},
      {[](Config& c) { c.train.lr = 0.0; }, "train.lr = 0.0"},
      {[](Config& c) { c.train.lr = std::numeric_limits<double>::quiet_NaN(); }, "train.lr = .nan"},
      {[](Config& c) { c.train.ema_decay = 1.5; }, "train.ema_decay = 1.5"},
      {[](Config& c) { c.train.p_uncond = -0.5; }, "train.p_uncond = -0.5"},
      {[](Config& c) { c.train.grad_clip = -1.0; }, "train.grad_clip = -1.0"},
      {[](Config& c) { c.train.threads = -2; }, "train.threads = -2"},
      {[](Config& c) { c.sample.steps = 0; }, "sample.steps = 0"},
      {[](Config& c) { c.sample.steps = 1001; }, "sample.steps = 1001"},
      {[](Config& c) { c.sample.eta = -0.1; }, "sample.eta = -0.1"},
      {[](Config& c) { c.sample.karras_rho = 0.0; }, "sample.karras_rho = 0.0"},
      {[](Config& c) { c.sample.karras_rho = std::numeric_limits<double>::infinity(); },
       "sample.karras_rho = .inf"},
      {[](Config& c) { c.sample.sigmas = static_cast<SigmaSpacing>(2); }, "sample.sigmas"},
      {[](Config& c) { c.sample.n = 0; }, "sample.n = 0"},
      {[](Config& c) { c.sample.chunk = -1; }, "sample.chunk = -1"},
      {[](Config& c) { c.sample.class_label = 10; }, "sample.class_label = 10"},
      {[](Config& c) { c.sample.class_label = -2; }, "sample.class_label = -2"},
      {[](Config& c) { c.sample.guidance = -1.0; }, "sample.guidance = -1.0"},
      {[](Config& c) { c.sample.guidance_sigma_min = -0.5; }, "sample.guidance_sigma_min = -0.5"},
      {[](Config& c) { c.sample.guidance_sigma_max = std::numeric_limits<double>::quiet_NaN(); },
       "sample.guidance_sigma_max = .nan"},
      {[](Config& c) {
         c.sample.guidance_sigma_min = 2.0;
         c.sample.guidance_sigma_max = 1.0;
       },
       "sample.guidance_sigma_max = 1.0: must be above sample.guidance_sigma_min"},
      {[](Config& c) { c.model.kind = static_cast<ModelKind>(7); }, "model.kind"},
      {[](Config& c) { c.diffusion.vlb_weight = -0.001; }, "diffusion.vlb_weight = -0.001"},
      {[](Config& c) { c.diffusion.loss = LossKind::Hybrid; }, "diffusion.loss = hybrid"},
      {[](Config& c) { c.diffusion.learn_sigma = true; }, "diffusion.learn_sigma = true"},
      {[](Config& c) { c.sample.variance = VarianceKind::Learned; }, "sample.variance = learned"},
      {[](Config& c) { c.train.timestep_uniform_mix = 1.5; }, "train.timestep_uniform_mix = 1.5"},
      {[](Config& c) { c.train.loss_read_every = -1; }, "train.loss_read_every = -1"},
      {[](Config& c) { c.train.loss_read_every = 5000; }, "train.loss_read_every = 5000"},
      {[](Config& c) { c.controlnet.loss_read_every = -2; }, "controlnet.loss_read_every = -2"},
      {[](Config& c) { c.controlnet.loss_read_every = 2000; },
       "controlnet.loss_read_every = 2000"},
      {[](Config& c) { c.train.timestep_uniform_mix = -0.1; },
       "train.timestep_uniform_mix = -0.1"},
      {[](Config& c) { c.train.timestep_sampler = static_cast<TimestepSamplerKind>(2); },
       "train.timestep_sampler"},
      {[](Config& c) {
         c.train.lr_schedule = LrScheduleKind::Cosine;
         c.train.lr_min = -1e-6;
       },
       "train.lr_min = -1.0e-06: must be in [0, train.lr]"},
      {[](Config& c) {
         c.train.lr_schedule = LrScheduleKind::Linear;
         c.train.lr = 1e-4;
         c.train.lr_min = 2e-4;
       },
       "train.lr_min = 0.0002"},
      {[](Config& c) {
         c.controlnet.lr_schedule = LrScheduleKind::Cosine;
         c.controlnet.lr_min = std::numeric_limits<double>::quiet_NaN();
       },
       "controlnet.lr_min = .nan"},
      {[](Config& c) { c.train.lr_schedule = static_cast<LrScheduleKind>(3); }, "train.lr_schedule"},
  };
  for (const Case& c : cases) {
    Config config;
    c.change(config);
    const std::string msg = error_of([&] { validate(config, "v.yaml"); });
    EXPECT_CONTAINS(msg, "v.yaml: ");
    EXPECT_CONTAINS(msg, c.key_and_value);
  }
}

TEST(Config, ValidateAcceptsBoundaries) {
  Config c;
  c.diffusion.schedule = ScheduleKind::Cosine;
  c.diffusion.timesteps = 2;
  c.sample.steps = 2;
  c.data.image_size = 8;
  c.data.test_fraction = 0.0;
  c.data.toy_points = 16;
  c.train.steps = 0;
  c.train.ema_decay = 1.0;
  c.train.p_uncond = 1.0;
  c.train.grad_clip = 0.0;
  c.sample.class_label = 9;
  c.sample.guidance = 0.0;
  EXPECT_NO_THROW(validate(c));
  // lr_min is checked only where a schedule uses it: a constant run may lower lr past it.
  c.train.lr = 1e-5;
  c.train.lr_min = 1e-4;
  EXPECT_NO_THROW(validate(c));
  c.train.lr_schedule = LrScheduleKind::Cosine;
  EXPECT_THROW(validate(c), ConfigError);
  c.train.lr_min = c.train.lr;  // the edge: no decay
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, ValidateListsEveryProblem) {
  Config c;
  c.train.batch_size = 0;
  c.sample.n = 0;
  const std::string msg = error_of([&] { validate(c, "many.yaml"); });
  EXPECT_CONTAINS(msg, "2 invalid values");
  EXPECT_CONTAINS(msg, "train.batch_size = 0");
  EXPECT_CONTAINS(msg, "sample.n = 0");
}

TEST(Config, FromYamlValidates) {
  const std::string msg = parse_error("diffusion: {timesteps: 100}\nsample: {steps: 200}\n");
  EXPECT_CONTAINS(msg, "x.yaml");
  EXPECT_CONTAINS(msg, "sample.steps = 200");
}

// ---- files --------------------------------------------------------------------------------

TEST(Config, PresetsLoadAndValidate) {
  const fs::path dir = fs::path(DIFFLAB_SOURCE_DIR) / "configs";
  int found = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++found;
    EXPECT_NO_THROW(load_config(entry.path().string())) << entry.path();
  }
  EXPECT_GE(found, 4);

  const Config mnist = load_config((dir / "mnist.yaml").string());
  EXPECT_EQ(mnist.data.kind, DatasetKind::Mnist);
  EXPECT_EQ(mnist.model.channel_mult, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(mnist.train.steps, 1800);  // a 20-minute CPU run in bf16
  // Flow matching measured best on this network (README, "The objectives side by side").
  EXPECT_EQ(mnist.diffusion.objective, Objective::FlowMatching);
  EXPECT_EQ(mnist.diffusion.flow_t_sampling, FlowTimeSampling::LogitNormal);
  EXPECT_EQ(mnist.sample.sampler, SamplerKind::Euler);
  // The same run with the other objectives.
  const Config ddpm = load_config((dir / "mnist_ddpm.yaml").string());
  const Config edm = load_config((dir / "mnist_edm.yaml").string());
  EXPECT_EQ(ddpm.diffusion.objective, Objective::Ddpm);
  EXPECT_EQ(ddpm.sample.sampler, SamplerKind::Ddim);
  EXPECT_EQ(edm.diffusion.objective, Objective::Edm);
  for (const Config* other : {&ddpm, &edm}) {
    EXPECT_EQ(other->model.base_channels, mnist.model.base_channels);
    EXPECT_EQ(other->model.channel_mult, mnist.model.channel_mult);
    EXPECT_EQ(other->train.lr, mnist.train.lr);
    EXPECT_EQ(other->train.steps, mnist.train.steps);
    EXPECT_EQ(other->train.ema_decay, mnist.train.ema_decay);
  }
  EXPECT_EQ(mnist.train.out_dir, "runs/mnist");
  // The presets measure bf16 against fp32 on the user's machine; a config without the key
  // stays fp32.
  EXPECT_EQ(mnist.train.precision, Precision::Auto);
  EXPECT_EQ(mnist.sample.precision, Precision::Auto);
  EXPECT_EQ(Config{}.train.precision, Precision::Fp32);

  const Config fashion = load_config((dir / "fashion_mnist.yaml").string());
  EXPECT_EQ(fashion.data.kind, DatasetKind::FashionMnist);
  EXPECT_EQ(fashion.diffusion.schedule, ScheduleKind::Cosine);
  EXPECT_EQ(fashion.train.out_dir, "runs/fashion_mnist");

  const Config toy = load_config((dir / "toy2d.yaml").string());
  EXPECT_EQ(toy.data.kind, DatasetKind::Toy2d);
  EXPECT_EQ(toy.model.kind, ModelKind::Mlp);
  EXPECT_FALSE(toy.model.class_conditional);
  EXPECT_EQ(toy.sample.sampler, SamplerKind::Ddpm);
  EXPECT_EQ(toy.sample.steps, toy.diffusion.timesteps);

  const Config cifar = load_config((dir / "cifar10.yaml").string());
  EXPECT_EQ(cifar.data.kind, DatasetKind::Cifar10);
  EXPECT_EQ(cifar.data.channels, 3);
  EXPECT_EQ(cifar.data.image_size, 32);
}

TEST(Config, SaveConfigIsAtomicAndRoundTrips) {
  const fs::path dir = test_dir("save");
  const fs::path path = dir / "sub" / "config.yaml";
  const Config original = non_default_config();
  save_config(Config{}, path.string());  // creates the folder
  save_config(original, path.string());  // replaces the file
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  expect_same(load_config(path.string()), original);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(path.parent_path())) ++files;
  EXPECT_EQ(files, 1);
}

TEST(Config, SaveConfigFailureNamesPath) {
  const fs::path dir = test_dir("save_fail");
  const fs::path target = dir / "is_a_dir";
  fs::create_directories(target / "inner");  // a non-empty folder cannot be replaced
  const std::string msg = error_of([&] { save_config(Config{}, target.string()); });
  EXPECT_CONTAINS(msg, target.string());
  EXPECT_FALSE(fs::exists(target.string() + ".tmp"));
}

// ---- enum name tables ---------------------------------------------------------------------

template <typename E>
void expect_enum_round_trip() {
  const auto count = static_cast<size_t>(E::Count);
  for (size_t i = 0; i < count; ++i) {
    const E e = static_cast<E>(i);
    const std::string_view name = to_string(e);
    EXPECT_FALSE(name.empty());
    const auto back = parse_enum<E>(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, e) << name;
    EXPECT_CONTAINS(enum_choices<E>(), std::string(name));
  }
  EXPECT_FALSE(parse_enum<E>("no_such_name").has_value());
  EXPECT_FALSE(parse_enum<E>("").has_value());
}

TEST(Config, EnumNamesRoundTrip) {
  expect_enum_round_trip<DatasetKind>();
  expect_enum_round_trip<Toy2dKind>();
  expect_enum_round_trip<ScheduleKind>();
  expect_enum_round_trip<Prediction>();
  expect_enum_round_trip<ModelKind>();
  expect_enum_round_trip<Activation>();
  expect_enum_round_trip<WeightInit>();
  expect_enum_round_trip<SamplerKind>();
  expect_enum_round_trip<VarianceKind>();
  expect_enum_round_trip<SigmaSpacing>();
  expect_enum_round_trip<LossKind>();
  expect_enum_round_trip<TimestepSamplerKind>();
  expect_enum_round_trip<LrScheduleKind>();
}

// The Improved-DDPM keys: defaults when absent (older configs and checkpoints), the hybrid
// loss only together with a learned variance, and learn_sigma part of the model's identity.
TEST(Config, ImprovedDdpmKeysDefaultAndDependOnEachOther) {
  const Config old = config_from_yaml(
      "diffusion: {schedule: cosine, timesteps: 100, prediction: eps}\ntrain: {seed: 3}\n",
      "old.yaml");
  EXPECT_FALSE(old.diffusion.learn_sigma);
  EXPECT_EQ(old.diffusion.loss, LossKind::Simple);
  EXPECT_EQ(old.diffusion.vlb_weight, 0.001);
  EXPECT_EQ(old.train.timestep_sampler, TimestepSamplerKind::Uniform);
  EXPECT_EQ(old.train.timestep_uniform_mix, 0.001);

  const Config hybrid = config_from_yaml(
      "diffusion: {learn_sigma: true, loss: hybrid, vlb_weight: 0.01}\n"
      "train: {timestep_sampler: loss_aware, timestep_uniform_mix: 0.1}\n"
      "sample: {sampler: ddpm, variance: learned}\n",
      "h.yaml");
  EXPECT_TRUE(hybrid.diffusion.learn_sigma);
  EXPECT_EQ(hybrid.diffusion.loss, LossKind::Hybrid);
  EXPECT_EQ(hybrid.diffusion.vlb_weight, 0.01);
  EXPECT_EQ(hybrid.train.timestep_sampler, TimestepSamplerKind::LossAware);
  EXPECT_EQ(hybrid.train.timestep_uniform_mix, 0.1);
  EXPECT_EQ(hybrid.sample.variance, VarianceKind::Learned);

  EXPECT_CONTAINS(parse_error("diffusion: {loss: hybrid}\n", "a.yaml"),
                  "diffusion.loss = hybrid: needs diffusion.learn_sigma = true");
  EXPECT_CONTAINS(parse_error("diffusion: {loss: vlb}\n", "b.yaml"), "choices: simple, hybrid");
  EXPECT_CONTAINS(parse_error("train: {timestep_sampler: importance}\n", "c.yaml"),
                  "choices: uniform, loss_aware");

  Config a, b;
  EXPECT_TRUE(same_model(a, b));
  b.diffusion.learn_sigma = true;
  EXPECT_FALSE(same_model(a, b));
  b = a;
  b.diffusion.loss = LossKind::Hybrid;  // a training setting, not the network's
  b.diffusion.vlb_weight = 0.5;
  EXPECT_TRUE(same_model(a, b));
}

}  // namespace
}  // namespace difflab

TEST(Config, CommandLineOverridesApplyInOrderAndNameTheirErrors) {
  const difflab::Config base;
  const difflab::Config c = difflab::apply_overrides(base, {"train.lr=1e-3", "model.channel_mult=[1,2]",
                                          "sample.sampler=ddpm", "train.lr=5e-4"});
  EXPECT_DOUBLE_EQ(c.train.lr, 5e-4);
  EXPECT_EQ(c.model.channel_mult, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.sample.sampler, difflab::SamplerKind::Ddpm);
  for (const std::string bad : {"train.lr", "lr=3", "train.lerning_rate=3", "train.steps=[1"}) {
    try {
      difflab::apply_overrides(base, {bad});
      FAIL() << "no error for " << bad;
    } catch (const difflab::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what.find("--set") != std::string::npos || what.find("lerning_rate") != std::string::npos)
          << what;
    }
  }
}
