// Trainer end to end on small data: learning, checkpoints, exact resume, bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/data/dataset.h"
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
