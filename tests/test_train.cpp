// Trainer end to end on small data: learning, checkpoints, exact resume, bad input; the
// hybrid loss, loss-aware timesteps and the NLL bound.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "core/data/dataset.h"
#include "core/diffusion/gaussian_diffusion.h"
#include "core/train/checkpoint_io.h"
#include "core/train/lr_schedule.h"
#include "core/sampling/field.h"
#include "core/train/nll_eval.h"
#include "core/train/trainer.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("train_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// 8×8 grey images of four classes (a bright quadrant each), as a real loader would give.
std::shared_ptr<DatasetSplits> quadrant_images(int64_t n = 256) {
  auto data = std::make_shared<DatasetSplits>();
  auto make = [](int64_t count, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    TensorDataset s;
    s.labels = torch::randint(0, 4, {count}, gen, torch::kLong);
    s.data = torch::zeros({count, 1, 8, 8}, torch::kUInt8);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t k = s.labels[i].item<int64_t>();
      s.data[i][0].narrow(0, (k / 2) * 4, 4).narrow(1, (k % 2) * 4, 4).fill_(255);
    }
    return s;
  };
  data->train = make(n, 1);
  data->test = make(64, 2);
  data->shape = DataShape{1, 8, 8, false, 4};
  data->class_names = {"a", "b", "c", "d"};
  return data;
}

Config tiny_unet_config() {
  Config c;
  c.data.image_size = 8;
  c.diffusion.timesteps = 50;
  c.model.base_channels = 8;
  c.model.channel_mult = {1, 2};
  c.model.num_res_blocks = 1;
  c.model.attention_resolutions = {4};
  c.model.num_heads = 2;
  c.model.norm_groups = 4;
  c.model.dropout = 0.1;
  c.train.batch_size = 16;
  c.train.lr = 1e-3;
  c.train.warmup_steps = 2;
  c.train.ema_start = 1;
  c.train.ema_decay = 0.9;
  c.sample.steps = 5;
  c.sample.n = 4;
  return c;
}

std::vector<torch::Tensor> snapshot(const DenoiserNet& net) {
  std::vector<torch::Tensor> out;
  for (auto& p : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST(Trainer, LearnsEightGaussiansWithTheMlp) {
  Config c;
  c.data.kind = DatasetKind::Toy2d;
  c.data.toy = Toy2dKind::EightGaussians;
  c.data.toy_points = 4000;
  c.data.toy_noise = 0.02;
  c.model.kind = ModelKind::Mlp;
  c.model.class_conditional = false;
  c.model.mlp_hidden = 64;
  c.model.mlp_layers = 3;
  c.model.dropout = 0.0;
  c.diffusion.timesteps = 100;
  c.train.batch_size = 128;
  c.train.lr = 2e-3;
  c.train.warmup_steps = 20;
  c.train.ema_start = 100;
  c.train.ema_decay = 0.99;
  auto data = std::make_shared<DatasetSplits>(load_dataset(c.data));
  Trainer trainer(c, data, torch::kCPU);
  double first = 0, last = 0;
  const int steps = 1500;
  for (int i = 0; i < steps; ++i) {
    const double loss = trainer.train_step().loss;
    if (i < 100) first += loss / 100;
    if (i >= steps - 100) last += loss / 100;
  }
  EXPECT_LT(last, 0.8 * first);
  const double test_loss = trainer.evaluate(4);
  EXPECT_TRUE(std::isfinite(test_loss));
  EXPECT_EQ(test_loss, trainer.evaluate(4));  // fixed evaluation noise

  SampleConfig sc = c.sample;
  sc.sampler = SamplerKind::Ddpm;
  sc.steps = 100;
  sc.n = 800;
  auto points = trainer.sample(sc).images;
  // Fraction of samples within 0.25 of one of the 8 centres (radius 0.8).
  auto angles = torch::arange(8, torch::kFloat32) * (M_PI / 4);
  auto centres = torch::stack({0.8 * torch::cos(angles), 0.8 * torch::sin(angles)}, 1);
  auto dist = torch::cdist(points, centres).amin(1);
  const double near = (dist < 0.25).to(torch::kFloat32).mean().item<double>();
  EXPECT_GT(near, 0.6) << "only " << near << " of samples near a mode";

  // The field the 2-D view draws (core/sampling/field.h): at a small t, the score just
  // outside each mode points back to it; at a large t, far points are pulled inwards.
  const SamplingModel model = sampling_model(trainer, /*ema=*/true);
  const auto outside = centres * (1.0 + 0.2 / 0.8);
  const auto near_field = sampling_field(model, outside, 2, -1, 1.0, torch::kCPU);
  ASSERT_EQ(near_field.sizes(), outside.sizes());
  const auto back = ((centres - outside) * near_field).sum(1);
  EXPECT_GE((back > 0).sum().item<int64_t>(), 7) << near_field;
  const auto far = centres * (3.0 / 0.8);
  const auto far_field = sampling_field(model, far, 60, -1, 1.0, torch::kCPU);
  EXPECT_EQ(((-far * far_field).sum(1) > 0).sum().item<int64_t>(), 8) << far_field;
}

TEST(Trainer, TinyUNetLossFallsAndSamplesHaveTheDataShape) {
  Trainer trainer(tiny_unet_config(), quadrant_images(), torch::kCPU);
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    const auto r = trainer.train_step();
    EXPECT_EQ(r.step, i + 1);
    if (i < 10) first += r.loss / 10;
    if (i >= 50) last += r.loss / 10;
  }
  EXPECT_LT(last, first);
  auto result = trainer.sample(trainer.config().sample);
  EXPECT_EQ(result.images.sizes(), (std::vector<int64_t>{4, 1, 8, 8}));
  auto buckets = trainer.loss_by_timestep(5);
  ASSERT_EQ(buckets.size(), 5u);
  for (double b : buckets) EXPECT_TRUE(std::isfinite(b));
  // Losses are larger at small t for ε-prediction (noise is hard to see there).
  EXPECT_GT(buckets.front(), buckets.back());
}

TEST(Trainer, StepsAtTheScheduledLearningRateAndStretchesTheDecayWhenStepsGrow) {
  Config c = tiny_unet_config();
  c.train.steps = 10;
  c.train.lr_schedule = LrScheduleKind::Cosine;
  c.train.lr_min = 1e-4;
  Trainer trainer(c, quadrant_images(64), torch::kCPU);
  const LrSchedule ten{1e-3, 2, LrScheduleKind::Cosine, 1e-4, 10};
  for (int64_t i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(trainer.train_step().lr, ten.at(i)) << i;
  // Raising the steps lays the decay over the longer run from here on.
  TrainConfig longer = c.train;
  longer.steps = 30;
  trainer.set_train_config(longer);
  const LrSchedule thirty{1e-3, 2, LrScheduleKind::Cosine, 1e-4, 30};
  EXPECT_GT(thirty.at(6), ten.at(6));
  EXPECT_DOUBLE_EQ(trainer.train_step().lr, thirty.at(6));
}

TEST(Checkpoint, ARunFolderStandsForItsNewestCheckpointAndAnEmptyOneIsNamed) {
  const std::string dir = temp_dir("newest");
  fs::create_directories(dir + "/checkpoints");
  for (int64_t step : {2, 10}) std::ofstream(checkpoint_path(dir, step)) << "x";
  EXPECT_EQ(checkpoint_or_newest(dir, "--base"), checkpoint_path(dir, 10));
  mark_latest_checkpoint(dir, checkpoint_path(dir, 2), 3);  // `latest` wins over the highest step
  EXPECT_EQ(checkpoint_or_newest(dir, "--base"), checkpoint_path(dir, 2));
  // A file is taken as given, even one that is not there (loading it names it).
  EXPECT_EQ(checkpoint_or_newest(dir + "/model.pt", "--base"), dir + "/model.pt");
  const std::string empty = temp_dir("newest_empty");
  try {
    checkpoint_or_newest(empty, "guide model");
    ADD_FAILURE() << "no error for a folder without checkpoints";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("guide model " + empty + ": a folder with no checkpoint"),
              std::string::npos)
        << e.what();
  }
}

TEST(Trainer, CheckpointSaveLoadGivesIdenticalOutputs) {
  const auto dir = temp_dir("roundtrip");
  auto data = quadrant_images();
  Trainer a(tiny_unet_config(), data, torch::kCPU);
  for (int i = 0; i < 3; ++i) a.train_step();
  const std::string path = dir + "/a.pt";
  a.save_checkpoint(path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  Trainer b(tiny_unet_config(), data, torch::kCPU);
  b.load_checkpoint(path);
  EXPECT_EQ(b.step(), 3);
  EXPECT_TRUE(same(snapshot(a.model()), snapshot(b.model())));
  EXPECT_TRUE(same(snapshot(a.ema_model()), snapshot(b.ema_model())));
  auto sa = a.sample(a.config().sample).images;
  auto sb = b.sample(b.config().sample).images;
  EXPECT_TRUE(torch::equal(sa, sb));

  // The sampling loader gives the same network.
  CheckpointInfo info;
  auto net = load_checkpoint_model(path, true, torch::kCPU, &info);
  EXPECT_EQ(info.step, 3);
  EXPECT_EQ(info.shape.height, 8);
  EXPECT_EQ(info.config.model.base_channels, 8);
  EXPECT_TRUE(same(snapshot(net), snapshot(a.ema_model())));
}

TEST(Trainer, ResumeContinuesExactlyTheSameRun) {
  const auto dir = temp_dir("resume");
  auto data = quadrant_images();
  Trainer straight(tiny_unet_config(), data, torch::kCPU);
  for (int i = 0; i < 6; ++i) straight.train_step();

  {
    Trainer first(tiny_unet_config(), data, torch::kCPU);
    for (int i = 0; i < 3; ++i) first.train_step();
    first.save_checkpoint(checkpoint_path(dir, first.step()));
    mark_latest_checkpoint(dir, checkpoint_path(dir, first.step()));
  }
  Trainer resumed(tiny_unet_config(), data, torch::kCPU);
  resumed.load_checkpoint(latest_checkpoint(dir));
  for (int i = 0; i < 3; ++i) resumed.train_step();
  EXPECT_EQ(resumed.step(), 6);
  EXPECT_TRUE(same(snapshot(straight.model()), snapshot(resumed.model())));
  EXPECT_TRUE(same(snapshot(straight.ema_model()), snapshot(resumed.ema_model())));
}

TEST(Trainer, CorruptOrMissingCheckpointsNameTheFileAndChangeNothing) {
  const auto dir = temp_dir("corrupt");
  auto data = quadrant_images();
  Trainer t(tiny_unet_config(), data, torch::kCPU);
  t.train_step();
  const std::string good = dir + "/good.pt";
  t.save_checkpoint(good);
  const auto before = snapshot(t.model());

  // Truncated copy.
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string truncated = dir + "/truncated.pt";
  std::ofstream(truncated, std::ios::binary).write(bytes.data(), bytes.size() / 2);
  const std::string garbage = dir + "/garbage.pt";
  std::ofstream(garbage) << "this is not a checkpoint";
  for (const std::string& bad : {truncated, garbage, dir + "/missing.pt", dir}) {
    try {
      t.load_checkpoint(bad);
      FAIL() << "no error for " << bad;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(t.step(), 1);
  EXPECT_TRUE(same(before, snapshot(t.model())));
}

TEST(Checkpoint, TheOpenerNamesTheKindOfAFileOfAnotherKind) {
  const auto dir = temp_dir("kinds");
  // The tags are in files on disk: they never change.
  EXPECT_EQ(checkpoint_format(CheckpointKind::Model), "difflab-checkpoint-v1");
  EXPECT_EQ(checkpoint_format(CheckpointKind::ControlNet), "difflab-controlnet-v1");
  EXPECT_EQ(checkpoint_format(CheckpointKind::Classifier), "difflab-classifier-v1");
  EXPECT_EQ(checkpoint_format(CheckpointKind::Evaluator), "difflab-evaluator-v1");
  constexpr int kKinds = static_cast<int>(CheckpointKind::Count);
  for (int written = 0; written < kKinds; ++written) {
    const auto kind = static_cast<CheckpointKind>(written);
    const std::string path = dir + "/kind" + std::to_string(written) + ".pt";
    torch::serialize::OutputArchive out;
    write_checkpoint_kind(out, kind);
    save_archive_atomic(out, path);
    for (int expected = 0; expected < kKinds; ++expected) {
      const auto want = static_cast<CheckpointKind>(expected);
      torch::serialize::InputArchive archive;
      if (want == kind) {
        EXPECT_NO_THROW(open_checkpoint(path, archive, want));
        continue;
      }
      try {
        open_checkpoint(path, archive, want);
        FAIL() << "no error opening a " << checkpoint_kind_name(kind) << " as a "
               << checkpoint_kind_name(want);
      } catch (const CheckpointError& e) {
        const std::string says = path + " is a " + std::string(checkpoint_kind_name(kind)) +
                                 ", not a " + std::string(checkpoint_kind_name(want));
        EXPECT_EQ(std::string(e.what()).rfind(says, 0), 0u) << e.what();
      }
    }
  }
  // A file of ours from a real writer, through a public loader.
  auto data = quadrant_images(64);
  Trainer t(tiny_unet_config(), data, torch::kCPU);
  const std::string model_path = dir + "/model.pt";
  t.save_checkpoint(model_path);
  try {
    torch::serialize::InputArchive archive;
    open_checkpoint(model_path, archive, CheckpointKind::Classifier);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  model_path + " is a model checkpoint, not a noise classifier checkpoint", 0),
              0u)
        << e.what();
  }
  // A zip archive without our tag is not ours; the message names the file and the kind.
  const std::string untagged = dir + "/untagged.pt";
  torch::serialize::OutputArchive out;
  out.write("step", c10::IValue(int64_t{3}));
  save_archive_atomic(out, untagged);
  try {
    read_checkpoint_info(untagged);
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(untagged), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a Diffusion Lab model checkpoint"), std::string::npos)
        << e.what();
  }
}

TEST(Trainer, SamplingModelsFromTheTrainerAndItsCheckpointAgree) {
  const auto dir = temp_dir("sampling_model");
  Trainer t(tiny_unet_config(), quadrant_images(64), torch::kCPU);
  const SamplingModel live = sampling_model(t, /*ema=*/true);
  EXPECT_EQ(live.net, t.ema_model());
  EXPECT_EQ(sampling_model(t, false).net, t.model());
  EXPECT_EQ(live.shape, (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(live.num_classes, t.model()->num_classes());
  EXPECT_EQ(live.schedule.size(), t.config().diffusion.timesteps);
  EXPECT_EQ(live.prediction, t.config().diffusion.prediction);
  t.save_checkpoint(dir + "/a.pt");
  CheckpointInfo info;
  const SamplingModel loaded = load_sampling_model(dir + "/a.pt", true, torch::kCPU, &info);
  EXPECT_EQ(loaded.shape, live.shape);
  EXPECT_EQ(loaded.num_classes, live.num_classes);
  EXPECT_EQ(loaded.schedule.alphas_cumprod(), live.schedule.alphas_cumprod());
  EXPECT_EQ(loaded.prediction, live.prediction);
  EXPECT_EQ(info.step, 0);
  SampleConfig sc = t.config().sample;
  sc.n = 2;
  sc.steps = 3;
  SampleRequest request;
  request.config = sc;
  EXPECT_TRUE(torch::equal(run_sampling(loaded, request, torch::kCPU).images, t.sample(sc).images));
}

// Autoguidance's weaker model: a checkpoint or a run folder of the same data, objective
// and classes (another width is fine); anything else is refused naming the file and what
// differs, before any sampling.
TEST(Trainer, AGuideModelMustAnswerTheSameQuestion) {
  const auto dir = temp_dir("guide_model");
  auto data = quadrant_images(64);
  Trainer main_model(tiny_unet_config(), data, torch::kCPU);
  Config narrow = tiny_unet_config();
  narrow.model.base_channels = 4;
  narrow.model.norm_groups = 2;
  Trainer weak(narrow, data, torch::kCPU);
  // A few steps each: the zero-initialised output layers must have moved for the two
  // models (and their EMA) to answer differently.
  for (int i = 0; i < 3; ++i) {
    main_model.train_step();
    weak.train_step();
  }
  std::filesystem::create_directories(dir + "/weak/checkpoints");
  weak.save_checkpoint(dir + "/weak/checkpoints/step_00000001.pt");
  const SamplingModel model = sampling_model(main_model, true);

  SampleConfig sc = main_model.config().sample;
  EXPECT_EQ(load_guide_model(sc, model, torch::kCPU), nullptr);  // none named: off
  sc.guide_model = dir + "/weak/checkpoints/step_00000001.pt";
  const DenoiserNet guide = load_guide_model(sc, model, torch::kCPU);
  ASSERT_NE(guide, nullptr);
  // EMA weights, as the model's: the same tensors as the weak trainer's EMA.
  const auto theirs = weak.ema_model()->parameters();
  const auto ours = guide->parameters();
  ASSERT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_TRUE(torch::equal(ours[i], theirs[i]));
  sc.guide_model = dir + "/weak";  // a run folder: its newest checkpoint
  EXPECT_NE(load_guide_model(sc, model, torch::kCPU), nullptr);

  // Sampling with it: w = 1 is the model alone, any other w differs.
  sc.n = 2;
  sc.steps = 3;
  sc.guidance = 1.0;
  EXPECT_TRUE(torch::equal(main_model.sample(sc).images,
                           [&] { SampleConfig plain = sc; plain.guide_model.clear(); return main_model.sample(plain).images; }()));
  sc.guidance = 2.0;
  SampleConfig cfg = sc;
  cfg.guide_model.clear();
  EXPECT_FALSE(torch::allclose(main_model.sample(sc).images, main_model.sample(cfg).images));

  // Every refusal names the guide model, its file and what differs.
  auto refused = [&](const std::string& path, const std::string& what,
                     const SamplingModel& against) {
    SampleConfig c = main_model.config().sample;
    c.guide_model = path;
    try {
      load_guide_model(c, against, torch::kCPU);
      ADD_FAILURE() << path << " was accepted";
    } catch (const CheckpointError& e) {
      for (const std::string& part : {std::string("guide model"), path, what})
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  // A checkpoint of `narrow` changed by `change`, written as <dir>/<name>.pt.
  auto variant = [&](const std::string& name, const std::function<void(Config&)>& change) {
    Config c = narrow;
    change(c);
    Trainer t(c, data, torch::kCPU);
    t.save_checkpoint(dir + "/" + name + ".pt");
    return dir + "/" + name + ".pt";
  };
  std::filesystem::create_directories(dir + "/empty");
  refused(dir + "/empty", "no checkpoint", model);
  refused(dir + "/missing.pt", "no such file", model);
  refused(variant("flow", [](Config& c) { c.diffusion.objective = Objective::FlowMatching; }),
          "objective flow_matching", model);
  refused(variant("plain", [](Config& c) { c.model.class_conditional = false; }), "classes 0",
          model);
  refused(variant("cosine", [](Config& c) { c.diffusion.schedule = ScheduleKind::Cosine; }),
          "noise schedule", model);
  // EDM: σ_max sets how σ maps to the network's time input.
  Config edm = narrow;
  edm.diffusion.objective = Objective::Edm;
  Trainer edm_main(edm, data, torch::kCPU);
  refused(variant("edm20",
                  [](Config& c) {
                    c.diffusion.objective = Objective::Edm;
                    c.diffusion.edm_sigma_max = 20.0;
                  }),
          "sigma range", sampling_model(edm_main, true));
}

TEST(Trainer, CheckpointOfAnotherArchitectureIsRefused) {
  const auto dir = temp_dir("arch");
  auto data = quadrant_images();
  Config wide = tiny_unet_config();
  wide.model.base_channels = 16;
  Trainer w(wide, data, torch::kCPU);
  w.save_checkpoint(dir + "/wide.pt");
  Trainer t(tiny_unet_config(), data, torch::kCPU);
  try {
    t.load_checkpoint(dir + "/wide.pt");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("architecture"), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.step(), 0);
}

TEST(Trainer, NanLossStopsWithoutTouchingTheWeights) {
  auto data = std::make_shared<DatasetSplits>();
  data->train.data = torch::full({64, 2}, std::nanf(""));
  data->train.labels = torch::zeros({64}, torch::kLong);
  data->test = data->train;
  data->shape = DataShape{2, 0, 0, true, 1};
  Config c;
  c.model.kind = ModelKind::Mlp;
  c.model.class_conditional = false;
  c.model.zero_init_last = false;
  c.train.batch_size = 16;
  Trainer t(c, data, torch::kCPU);
  const auto before = snapshot(t.model());
  try {
    t.train_step();
    FAIL() << "no error";
  } catch (const TrainingError& e) {
    EXPECT_NE(std::string(e.what()).find("loss is nan"), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.step(), 0);
  EXPECT_TRUE(same(before, snapshot(t.model())));
}

namespace {

// 64 2-D points for an MLP, with row `poisoned` NaN (-1: none).
std::shared_ptr<DatasetSplits> points_with_a_nan(int64_t poisoned) {
  auto data = std::make_shared<DatasetSplits>();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  data->train.data = torch::randn({64, 2}, gen, torch::kFloat32);
  if (poisoned >= 0) data->train.data[poisoned].fill_(std::nanf(""));
  data->train.labels = torch::zeros({64}, torch::kLong);
  data->test = data->train;
  data->shape = DataShape{2, 0, 0, true, 1};
  return data;
}

Config point_mlp_config(int read_every) {
  Config c;
  c.model.kind = ModelKind::Mlp;
  c.model.class_conditional = false;
  c.model.zero_init_last = false;
  c.model.mlp_hidden = 32;
  c.model.mlp_layers = 2;
  c.diffusion.timesteps = 50;
  c.train.batch_size = 16;
  c.train.lr = 1e-3;
  c.train.warmup_steps = 2;
  c.train.ema_start = 1;
  c.train.ema_decay = 0.9;
  c.train.loss_read_every = read_every;
  return c;
}

}  // namespace

TEST(Trainer, DeferredReadBackTrainsExactlyAsReadingEachStep) {
  // The CUDA default (losses read every N steps, the NaN check with them) forced on the
  // CPU: the same steps bit for bit, and the same values once read.
  const auto data = quadrant_images(64);
  Config c = tiny_unet_config();
  c.train.loss_read_every = 1;
  Trainer each(c, data, torch::kCPU);
  c.train.loss_read_every = 5;
  Trainer deferred(c, data, torch::kCPU);
  EXPECT_EQ(each.loss_read_every(), 1);
  EXPECT_EQ(deferred.loss_read_every(), 5);
  for (int i = 1; i <= 12; ++i) {
    const StepResult a = each.train_step();
    const StepResult b = deferred.train_step();
    EXPECT_TRUE(a.measured);
    EXPECT_EQ(b.step, i);
    EXPECT_EQ(b.measured, i % 5 == 0) << "step " << i;
    EXPECT_EQ(b.lr, a.lr);
    if (b.measured) EXPECT_EQ(b.loss, a.loss);
    else EXPECT_TRUE(std::isnan(b.loss));
  }
  const auto from_each = each.take_measured();
  auto from_deferred = deferred.take_measured();
  ASSERT_EQ(from_deferred.size(), 10u);  // steps 1-10: read at 5 and 10
  deferred.read_back();
  for (const auto& r : deferred.take_measured()) from_deferred.push_back(r);
  ASSERT_EQ(from_each.size(), 12u);
  ASSERT_EQ(from_deferred.size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(from_deferred[i].step, static_cast<int64_t>(i + 1));
    EXPECT_EQ(from_deferred[i].loss, from_each[i].loss) << "step " << i + 1;
    EXPECT_EQ(from_deferred[i].grad_norm, from_each[i].grad_norm) << "step " << i + 1;
    EXPECT_EQ(from_deferred[i].loss_simple, from_each[i].loss_simple) << "step " << i + 1;
    EXPECT_TRUE(from_deferred[i].measured);
  }
  EXPECT_TRUE(same(snapshot(each.model()), snapshot(deferred.model())));
  EXPECT_TRUE(same(snapshot(each.ema_model()), snapshot(deferred.ema_model())));
  // Nothing left to read; a checkpoint of each holds the same weights.
  deferred.read_back();
  EXPECT_TRUE(deferred.take_measured().empty());
}

TEST(Trainer, DeferredReadBackUndoesANonFiniteStepAndWhatFollowedIt) {
  // The row that the third batch of the first epoch holds is NaN: reading every step stops
  // at step 3; reading every 7 finds it at step 7 and must leave everything exactly as the
  // first did (weights, EMA, AdamW moments and step counts, generator, batch position), so
  // that both go on identically once the data is mended.
  BatchSampler order(64, 16, Config().train.seed);
  order.next();
  order.next();
  const int64_t row = order.next()[5].item<int64_t>();
  const auto data = points_with_a_nan(row);
  Trainer each(point_mlp_config(1), data, torch::kCPU);
  Trainer deferred(point_mlp_config(7), data, torch::kCPU);
  std::string each_error, deferred_error;
  int deferred_calls = 0;
  try {
    for (int i = 0; i < 7; ++i) each.train_step();
  } catch (const TrainingError& e) {
    each_error = e.what();
  }
  try {
    for (int i = 0; i < 7; ++i, ++deferred_calls) deferred.train_step();
  } catch (const TrainingError& e) {
    deferred_error = e.what();
  }
  EXPECT_NE(each_error.find("loss is nan at step 3; the weights were left as they were after step 2"),
            std::string::npos) << each_error;
  EXPECT_EQ(deferred_error, each_error);
  EXPECT_EQ(deferred_calls, 6);  // the 7th call read the steps and threw
  EXPECT_EQ(each.step(), 2);
  EXPECT_EQ(deferred.step(), 2);
  EXPECT_TRUE(same(snapshot(each.model()), snapshot(deferred.model())));
  EXPECT_TRUE(same(snapshot(each.ema_model()), snapshot(deferred.ema_model())));
  const auto good = deferred.take_measured();
  ASSERT_EQ(good.size(), 2u);  // steps 1 and 2 were read before the bad one
  EXPECT_EQ(good[1].step, 2);

  // Mend the row; both go on from step 2 exactly alike.
  data->train.data[row].fill_(0.5f);
  each.take_measured();
  for (int i = 0; i < 9; ++i) {
    each.train_step();
    deferred.train_step();
  }
  deferred.read_back();
  const auto a = each.take_measured();
  const auto b = deferred.take_measured();
  ASSERT_EQ(a.size(), 9u);
  ASSERT_EQ(b.size(), 9u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].step, a[i].step);
    EXPECT_EQ(b[i].loss, a[i].loss) << "step " << a[i].step;
  }
  EXPECT_EQ(deferred.step(), 11);
  EXPECT_TRUE(same(snapshot(each.model()), snapshot(deferred.model())));
  EXPECT_TRUE(same(snapshot(each.ema_model()), snapshot(deferred.ema_model())));
}

TEST(Trainer, DeferredReadBackOfTheFirstStepLeavesAFreshOptimizer) {
  // A NaN in the very first step: the AdamW state it created is dropped, so the run is as
  // new (a checkpoint then holds no optimizer state, as one written before any step).
  const auto data = points_with_a_nan(-1);
  data->train.data.fill_(std::nanf(""));
  Trainer fresh(point_mlp_config(1), points_with_a_nan(-1), torch::kCPU);
  Trainer deferred(point_mlp_config(4), data, torch::kCPU);
  const auto before = snapshot(deferred.model());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(deferred.train_step().measured);
  try {
    deferred.train_step();
    FAIL() << "no error";
  } catch (const TrainingError& e) {
    EXPECT_NE(std::string(e.what()).find("loss is nan at step 1;"), std::string::npos) << e.what();
  }
  EXPECT_EQ(deferred.step(), 0);
  EXPECT_TRUE(same(before, snapshot(deferred.model())));
  EXPECT_TRUE(same(before, snapshot(deferred.ema_model())));
  // Mended, it trains as a fresh trainer on the same data does.
  data->train.data.copy_(points_with_a_nan(-1)->train.data);
  for (int i = 0; i < 4; ++i) {
    fresh.train_step();
    deferred.train_step();
  }
  EXPECT_TRUE(same(snapshot(fresh.model()), snapshot(deferred.model())));
}

TEST(Trainer, CheckpointsHoldOnlyCheckedSteps) {
  // save_checkpoint reads the waiting steps first; a non-finite one writes nothing.
  const auto dir = temp_dir("deferred_checkpoint");
  BatchSampler order(64, 16, Config().train.seed);
  order.next();
  const int64_t row = order.next()[0].item<int64_t>();  // a row of step 2
  Trainer t(point_mlp_config(8), points_with_a_nan(row), torch::kCPU);
  t.train_step();
  t.train_step();
  const std::string path = checkpoint_path(dir, 2);
  EXPECT_THROW(t.save_checkpoint(path), TrainingError);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(t.step(), 1);
  t.save_checkpoint(checkpoint_path(dir, 1));
  EXPECT_EQ(read_checkpoint_info(checkpoint_path(dir, 1)).step, 1);
}

TEST(Trainer, LossReadEveryResolvesPerDeviceAndRun) {
  const auto data = quadrant_images(64);
  Config c = tiny_unet_config();
  c.train.loss_read_every = 0;  // auto: every step on the CPU
  EXPECT_EQ(Trainer(c, data, torch::kCPU).loss_read_every(), 1);
  c.train.loss_read_every = 3;
  EXPECT_EQ(Trainer(c, data, torch::kCPU).loss_read_every(), 3);
  // The loss-aware sampler learns from each step's losses before the next draw.
  c.train.timestep_sampler = TimestepSamplerKind::LossAware;
  EXPECT_EQ(Trainer(c, data, torch::kCPU).loss_read_every(), 1);
}

TEST(Trainer, LatestCheckpointKeepsTheNewestThree) {
  const auto dir = temp_dir("latest");
  EXPECT_EQ(latest_checkpoint(dir), "");
  Trainer t(tiny_unet_config(), quadrant_images(64), torch::kCPU);
  for (int s = 1; s <= 5; ++s) {
    t.train_step();
    const auto path = checkpoint_path(dir, t.step());
    t.save_checkpoint(path);
    mark_latest_checkpoint(dir, path, 3);
  }
  EXPECT_EQ(latest_checkpoint(dir), checkpoint_path(dir, 5));
  EXPECT_FALSE(fs::exists(checkpoint_path(dir, 2)));
  EXPECT_TRUE(fs::exists(checkpoint_path(dir, 3)));
  // Without the pointer file, the highest step is taken.
  fs::remove(fs::path(dir) / "checkpoints" / "latest");
  EXPECT_EQ(latest_checkpoint(dir), checkpoint_path(dir, 5));
}

TEST(Dataset, BatchSamplerResumesAtTheSamePosition) {
  BatchSampler a(10, 4, 7);
  std::vector<torch::Tensor> seq;
  for (int i = 0; i < 5; ++i) seq.push_back(a.next());
  BatchSampler b(10, 4, 7);
  b.next();
  b.next();
  BatchSampler c(10, 4, 7);
  c.set_state(b.epoch(), b.position());
  for (int i = 2; i < 5; ++i) EXPECT_TRUE(torch::equal(c.next(), seq[i]));
  // Each epoch is a permutation: two full batches of distinct indices, remainder dropped.
  auto e0 = torch::cat({seq[0], seq[1]});
  EXPECT_EQ(std::get<0>(torch::_unique(e0)).size(0), 8);
  EXPECT_EQ(a.epoch(), 2);
}

TEST(Dataset, ImagesAreScaledToMinusOneOne) {
  auto data = quadrant_images(8);
  auto x = gather_batch(data->train, torch::arange(8));
  EXPECT_EQ(x.min().item<float>(), -1.0f);
  EXPECT_EQ(x.max().item<float>(), 1.0f);
  EXPECT_EQ(x.scalar_type(), torch::kFloat32);
}

TEST(Trainer, CheckpointWithOtherDiffusionSettingsIsRefused) {
  const auto dir = temp_dir("diffusion");
  auto data = quadrant_images(64);
  Trainer eps(tiny_unet_config(), data, torch::kCPU);
  eps.save_checkpoint(dir + "/eps.pt");
  Config v = tiny_unet_config();
  v.diffusion.prediction = Prediction::V;
  Trainer t(v, data, torch::kCPU);
  try {
    t.load_checkpoint(dir + "/eps.pt");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("prediction"), std::string::npos) << e.what();
  }
}

TEST(Trainer, EvaluateWithoutATestSplitIsNanNotACrash) {
  auto data = quadrant_images(64);
  data->test = TensorDataset{torch::zeros({0, 1, 8, 8}, torch::kUInt8), torch::zeros({0}, torch::kLong)};
  Trainer t(tiny_unet_config(), data, torch::kCPU);
  EXPECT_TRUE(std::isnan(t.evaluate(2)));
}

// ---- Improved DDPM: hybrid loss, loss-aware timesteps, NLL bound ------------------------

namespace {

Config hybrid_config() {
  Config c = tiny_unet_config();
  c.diffusion.learn_sigma = true;
  c.diffusion.loss = LossKind::Hybrid;
  return c;
}

torch::Tensor out_conv_grad(const DenoiserNet& net) {
  return net->named_parameters()["out_conv.weight"].grad().clone();
}

}  // namespace

TEST(Trainer, HybridLossTrainsAndItsVlbTermSeesTheMeanDetached) {
  Trainer trainer(hybrid_config(), quadrant_images(), torch::kCPU);
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    const auto r = trainer.train_step();
    ASSERT_TRUE(std::isfinite(r.loss) && std::isfinite(r.loss_vlb)) << i;
    EXPECT_GT(r.loss_vlb, 0.0);
    // loss = L_simple + λ·T·L_t (λ = 0.001, T = 50), before the (uniform, = 1) weights.
    EXPECT_NEAR(r.loss, r.loss_simple + 0.001 * 50 * r.loss_vlb, 1e-4 * r.loss);
    if (i < 10) first += r.loss / 10;
    if (i >= 50) last += r.loss / 10;
  }
  EXPECT_LT(last, first);
  EXPECT_TRUE(std::isfinite(trainer.evaluate(2)));
  auto images = trainer.sample(trainer.config().sample).images;
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{4, 1, 8, 8}));  // the prediction half only

  // The gradient of the last conv's prediction rows comes from L_simple alone (the VLB term
  // sees the mean detached): the same for λ = 0 and λ = 0.5. Its variance rows learn only
  // from the VLB term: zero for λ = 0. (The trainer leaves the last step's gradients.)
  Config c0 = hybrid_config(), c1 = hybrid_config();
  c0.diffusion.vlb_weight = 0.0;
  c1.diffusion.vlb_weight = 0.5;
  c0.train.grad_clip = c1.train.grad_clip = 0.0;  // clipping would scale both halves
  auto data = quadrant_images();
  Trainer a(c0, data, torch::kCPU), b(c1, data, torch::kCPU);
  a.train_step();
  b.train_step();
  const auto ga = out_conv_grad(a.model()), gb = out_conv_grad(b.model());
  ASSERT_EQ(ga.size(0), 2);  // 2·C output channels, C = 1
  EXPECT_GT(ga[0].abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(ga[0], gb[0], 1e-5, 1e-7)) << (ga[0] - gb[0]).abs().max();
  EXPECT_EQ(ga[1].abs().max().item<float>(), 0.0f);
  EXPECT_GT(gb[1].abs().max().item<float>(), 0.0f);
}

TEST(Trainer, LossAwareTimestepsResumeExactly) {
  Config c = hybrid_config();
  c.diffusion.schedule = ScheduleKind::Cosine;
  c.diffusion.timesteps = 10;  // warmed up (10 losses for each t) within a few steps
  c.sample.steps = 5;
  c.train.batch_size = 32;
  c.train.timestep_sampler = TimestepSamplerKind::LossAware;
  c.train.timestep_uniform_mix = 0.05;
  const auto dir = temp_dir("loss_aware");
  auto data = quadrant_images();

  Trainer straight(c, data, torch::kCPU);
  for (int i = 0; i < 12; ++i) straight.train_step();
  const auto p = straight.timestep_probabilities();
  ASSERT_EQ(p.size(), 10u);
  double sum = 0.0;
  for (double v : p) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-9);
  // Importance sampling is on: no longer uniform, and every p_t ≥ mix / T.
  EXPECT_GT(*std::max_element(p.begin(), p.end()) - *std::min_element(p.begin(), p.end()), 1e-3);
  for (double v : p) EXPECT_GE(v, 0.05 / 10 - 1e-12);

  std::vector<double> p_at_save;
  {
    Trainer first(c, data, torch::kCPU);
    for (int i = 0; i < 8; ++i) first.train_step();
    p_at_save = first.timestep_probabilities();
    first.save_checkpoint(dir + "/step8.pt");
  }
  ASSERT_GT(*std::max_element(p_at_save.begin(), p_at_save.end()), 0.1 + 1e-6)
      << "the run should be warmed up at the checkpoint";
  Trainer resumed(c, data, torch::kCPU);
  resumed.load_checkpoint(dir + "/step8.pt");
  EXPECT_EQ(resumed.timestep_probabilities(), p_at_save);
  for (int i = 0; i < 4; ++i) resumed.train_step();
  EXPECT_TRUE(same(snapshot(straight.model()), snapshot(resumed.model())));
  EXPECT_EQ(resumed.timestep_probabilities(), straight.timestep_probabilities());

  // A checkpoint of a learned-variance run is refused by a fixed-variance one.
  Trainer fixed(tiny_unet_config(), data, torch::kCPU);
  try {
    fixed.load_checkpoint(dir + "/step8.pt");
    FAIL() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("learn_sigma"), std::string::npos) << e.what();
  }
}

// A checkpoint written before the Improved-DDPM keys existed: its embedded config has no
// learn_sigma / loss / vlb_weight / timestep_* and it holds no timestep-sampler state.
TEST(Trainer, OldCheckpointWithoutTheNewKeysLoads) {
  const auto dir = temp_dir("old_checkpoint");
  auto data = quadrant_images(64);
  Trainer t(tiny_unet_config(), data, torch::kCPU);
  std::string yaml;
  std::istringstream in(config_to_yaml(t.config()));
  for (std::string line; std::getline(in, line);)
    if (line.find("learn_sigma") == std::string::npos && line.find("  loss:") == std::string::npos &&
        line.find("vlb_weight") == std::string::npos && line.find("timestep_") == std::string::npos)
      yaml += line + "\n";
  ASSERT_EQ(yaml.find("learn_sigma"), std::string::npos);
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string("difflab-checkpoint-v1")));  // as then
  archive.write("config", c10::IValue(yaml));
  write_shape(archive, data->shape);
  archive.write("step", c10::IValue(int64_t{0}));
  for (const char* key : {"model", "ema"}) {
    std::string names;
    c10::List<torch::Tensor> tensors;
    for (const auto& p : t.model()->named_parameters()) {
      names += p.key() + "\n";
      tensors.push_back(p.value().detach().clone());
    }
    for (const auto& b : t.model()->named_buffers()) {
      names += b.key() + "\n";
      tensors.push_back(b.value().detach().clone());
    }
    archive.write(std::string(key) + "_names", c10::IValue(names));
    archive.write(std::string(key) + "_tensors", c10::IValue(tensors));
  }
  const std::string path = dir + "/old.pt";
  archive.save_to(path);

  CheckpointInfo info;
  auto net = load_checkpoint_model(path, true, torch::kCPU, &info);
  EXPECT_FALSE(info.config.diffusion.learn_sigma);
  EXPECT_EQ(info.config.diffusion.loss, LossKind::Simple);
  EXPECT_EQ(info.config.diffusion.vlb_weight, 0.001);
  EXPECT_EQ(info.config.train.timestep_sampler, TimestepSamplerKind::Uniform);
  EXPECT_FALSE(net->learns_variance());
  EXPECT_TRUE(same(snapshot(net), snapshot(t.model())));

  // A run saved without sampler state (here: uniform) resumes as loss_aware from a fresh
  // history: uniform until every t has its losses.
  t.save_checkpoint(dir + "/uniform.pt");
  Config la = tiny_unet_config();
  la.train.timestep_sampler = TimestepSamplerKind::LossAware;
  Trainer resumed(la, data, torch::kCPU);
  resumed.load_checkpoint(dir + "/uniform.pt");
  for (double p : resumed.timestep_probabilities()) EXPECT_DOUBLE_EQ(p, 1.0 / 50);
}

TEST(Nll, BoundOfATinyHybridModelIsFiniteAndAddsUp) {
  auto data = quadrant_images(64);
  Trainer trainer(hybrid_config(), data, torch::kCPU);
  for (int i = 0; i < 20; ++i) trainer.train_step();
  const auto& c = trainer.config();
  GaussianDiffusion diffusion(NoiseSchedule::named(c.diffusion.schedule, c.diffusion.timesteps),
                              c.diffusion.prediction, torch::kCPU);
  NllEvalOptions o;
  o.batches = 2;
  o.batch_size = 8;
  int calls = 0;
  auto r = evaluate_nll(trainer.ema_model(), diffusion, data->test, o,
                        [&](int, int, int, int) { ++calls; });
  EXPECT_EQ(calls, 2 * 50);
  EXPECT_EQ(r.images, 16);
  EXPECT_FALSE(r.estimate);
  EXPECT_TRUE(std::isfinite(r.total) && std::isfinite(r.total_stderr));
  EXPECT_NEAR(r.total, r.prior + r.kl_sum + r.decoder, 1e-4 * r.total);
  ASSERT_EQ(r.terms.size(), 50u);
  double sum = 0.0;
  for (size_t t = 1; t < r.terms.size(); ++t) sum += r.terms[t];
  EXPECT_NEAR(sum, r.kl_sum, 1e-4 * r.kl_sum);
  EXPECT_NEAR(r.terms[0], r.decoder, 1e-6);
  // Upper bound on −log2 of a probability of 8-bit pixels: positive, and at most the
  // ~40 bits/dim the decoder's floor allows plus the KL terms of a barely trained net.
  EXPECT_GT(r.total, 0.0);
  // The raw weights of a model trained this little are in the same range; a fixed
  // variance works too; a stratified run is labelled an estimate.
  o.variance = VarianceKind::FixedLarge;
  o.t_samples = 7;
  o.batches = 1;
  auto est = evaluate_nll(trainer.model(), diffusion, data->test, o);
  EXPECT_TRUE(est.estimate);
  EXPECT_TRUE(std::isfinite(est.total));

  // Learned variance on a fixed-variance net, and continuous data, are refused.
  Trainer plain(tiny_unet_config(), data, torch::kCPU);
  o.variance = VarianceKind::Learned;
  EXPECT_THROW(evaluate_nll(plain.model(), diffusion, data->test, o), std::invalid_argument);
  TensorDataset points{torch::randn({8, 2}), torch::zeros({8}, torch::kLong)};
  o.variance = VarianceKind::FixedSmall;
  EXPECT_THROW(evaluate_nll(plain.model(), diffusion, points, o), std::invalid_argument);
}

// x₀ and v targets train end to end, with L_simple and with the hybrid loss (whose VLB term
// turns their prediction into the posterior mean through x̂₀).
TEST(Trainer, X0AndVPredictionsTrainWithBothLosses) {
  auto data = quadrant_images();
  for (auto prediction : {Prediction::X0, Prediction::V}) {
    for (bool hybrid : {false, true}) {
      Config c = hybrid ? hybrid_config() : tiny_unet_config();
      c.diffusion.prediction = prediction;
      Trainer trainer(c, data, torch::kCPU);
      double first = 0, last = 0;
      for (int i = 0; i < 30; ++i) {
        const auto r = trainer.train_step();
        ASSERT_TRUE(std::isfinite(r.loss)) << to_string(prediction) << " " << hybrid;
        EXPECT_EQ(std::isfinite(r.loss_vlb), hybrid);
        if (i < 5) first += r.loss_simple / 5;
        if (i >= 25) last += r.loss_simple / 5;
      }
      EXPECT_LT(last, first) << to_string(prediction) << " " << hybrid;
      SampleConfig s = trainer.config().sample;
      s.sampler = SamplerKind::Ddpm;
      s.variance = hybrid ? VarianceKind::Learned : VarianceKind::FixedLarge;
      auto images = trainer.sample(s).images;
      EXPECT_TRUE(torch::isfinite(images).all().item<bool>());
    }
  }
}

// train.precision bf16: the same run learns like fp32 (autocast only changes the network's
// matrix work), the weights and their optimizer stay float32, and a checkpoint of it
// resumes exactly.
TEST(Trainer, Bf16TrainsLikeFp32AndKeepsFloat32Weights) {
  Config c32 = tiny_unet_config();
  c32.model.dropout = 0.0;
  Config c16 = c32;
  c16.train.precision = Precision::Bf16;
  c16.sample.precision = Precision::Bf16;
  Trainer a(c32, quadrant_images(), torch::kCPU), b(c16, quadrant_images(), torch::kCPU);
  EXPECT_EQ(b.precision().chosen, Precision::Bf16);
  double la = 0, lb = 0;
  for (int i = 0; i < 60; ++i) {
    const double ra = a.train_step().loss, rb = b.train_step().loss;
    if (i >= 40) {
      la += ra / 20;
      lb += rb / 20;
    }
  }
  std::printf("mean loss of steps 41-60: fp32 %.4f, bf16 %.4f\n", la, lb);
  EXPECT_NEAR(lb, la, 0.25 * la);
  for (const auto& p : b.model()->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  for (const auto& p : b.ema_model()->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  // The weights did move apart (bf16 really ran) but not far.
  double diff = 0, norm = 0;
  const auto pa = a.model()->parameters(), pb = b.model()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    diff += (pa[i] - pb[i]).pow(2).sum().item<double>();
    norm += pa[i].pow(2).sum().item<double>();
  }
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(std::sqrt(diff / norm), 0.1);
  const auto images = b.sample(b.config().sample);
  EXPECT_EQ(images.precision.chosen, Precision::Bf16);
  EXPECT_EQ(images.images.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(images.images).all().item<bool>());

  // Resume in bf16 continues exactly as the uninterrupted bf16 run.
  const auto dir = temp_dir("bf16_resume");
  b.save_checkpoint(dir + "/step.pt");
  Trainer resumed(c16, quadrant_images(), torch::kCPU);
  resumed.load_checkpoint(dir + "/step.pt");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(b.train_step().loss, resumed.train_step().loss);
  EXPECT_TRUE(same(snapshot(b.model()), snapshot(resumed.model())));
}
