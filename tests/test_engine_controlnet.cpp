// ControlNet training in the Engine, driven exactly as the GUI's ControlNet panel drives it
// (cmd::TrainControlNet, Pause, Resume, Stop, FindControlNets; snapshots out): it trains
// into the model's run folder without touching what is there, publishes its loss and the
// hint-following curve, pauses and stops between steps, becomes the loaded ControlNet,
// continues from its folder, and is listed only while it fits the model's weights.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/engine/engine.h"
#include "core/model/controlnet.h"
#include "core/train/controlnet_trainer.h"
#include "core/vision/png.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

constexpr int kSize = 16;

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("engine_controlnet_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// An image folder of three classes: a bright vertical bar at one of three places, with a
// varying height, so canny edges and strokes exist and differ per image.
std::string bar_folder(const std::string& dir) {
  const std::string root = dir + "/bars";
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 30; ++i) {
      Image8 img;
      img.width = img.height = kSize;
      img.channels = 1;
      img.pixels.assign(kSize * kSize, 0);
      const int top = 2 + i % 4, bottom = 12 + i % 3;
      for (int y = top; y < bottom; ++y)
        for (int x = 3 + 4 * k; x < 6 + 4 * k; ++x) img.pixels[y * kSize + x] = 255;
      write_png(root + "/class" + std::to_string(k) + "/" + std::to_string(i) + ".png", img);
    }
  return root;
}

Config tiny_config(const std::string& data_dir) {
  Config c;
  c.data.kind = DatasetKind::ImageFolder;
  c.data.path = data_dir;
  c.data.image_size = kSize;
  c.data.channels = 1;
  c.data.test_fraction = 0.2;
  c.diffusion.timesteps = 50;
  c.model.base_channels = 8;
  c.model.channel_mult = {1, 2};
  c.model.num_res_blocks = 1;
  c.model.attention_resolutions = {};
  c.model.norm_groups = 4;
  c.train.batch_size = 8;
  c.train.steps = 3;
  c.train.warmup_steps = 1;
  c.train.ema_start = 1;
  c.train.sample_every = 0;
  c.sample.steps = 4;
  c.sample.n = 2;
  c.controlnet.batch_size = 8;
  c.controlnet.lr = 2e-3;
  c.controlnet.warmup_steps = 1;
  c.controlnet.checkpoint_every = 0;
  return c;
}

EngineOptions options(const std::string& dir) {
  EngineOptions o;
  o.threads = 1;
  o.publish_interval_s = 0.02;
  o.runs_root = dir + "/runs";
  return o;
}

template <typename Pred>
std::shared_ptr<const Snapshot> wait_until(const Engine& e, Pred pred, double timeout_s = 60) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto s = e.snapshot();
  while (!pred(*s) && std::chrono::steady_clock::now() < end)
    s = e.wait_for_update(s->version, 0.1);
  return s;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Trains the tiny base model to train.steps (its run saves a checkpoint at the end).
std::shared_ptr<const Snapshot> train_base(Engine& engine, const Config& config) {
  engine.send(cmd::SetConfig{config});
  engine.send(cmd::StartTraining{});
  return wait_until(engine, [&](const Snapshot& s) {
    return s.step >= config.train.steps && s.status == JobStatus::Idle;
  });
}

}  // namespace

TEST(EngineControlNet, TrainsIntoTheRunFolderPausesStopsAndBecomesTheLoadedOne) {
  const std::string dir = temp_dir("train");
  const Config config = tiny_config(bar_folder(dir));
  Engine engine(config, options(dir));
  auto s = train_base(engine, config);
  ASSERT_EQ(s->step, 3) << s->error;
  ASSERT_FALSE(s->run.dir.empty());
  const std::string run = s->run.dir;
  // Someone's folder where the first ControlNet would go: it must stay as it is.
  const std::string taken = run + "/controlnets/scribble-1";
  fs::create_directories(taken);
  { std::ofstream(taken + "/controlnet.pt") << "not mine"; }

  cmd::TrainControlNet train;
  train.hint = HintKind::Scribble;
  train.steps = 100000;
  train.curve_every = 4;
  engine.send(train);
  s = wait_until(
      engine, [](const Snapshot& s) { return s.controlnet_training.f1.size() >= 2; }, 120);
  const ControlNetTraining& t = s->controlnet_training;
  ASSERT_GE(t.f1.size(), 2u) << s->error;
  EXPECT_TRUE(t.active);
  EXPECT_EQ(s->status, JobStatus::TrainingControlNet);
  EXPECT_EQ(fs::path(t.dir), fs::path(run) / "controlnets" / "scribble-2");
  EXPECT_EQ(t.hint, HintKind::Scribble);
  EXPECT_EQ(t.f1[0].step, 0);  // a point at the start
  EXPECT_EQ(t.f1[1].step, 4);
  EXPECT_GE(t.f1_without, 0.0);
  EXPECT_LE(t.f1_without, 1.0);
  for (const auto& p : t.f1) EXPECT_TRUE(p.value >= 0.0f && p.value <= 1.0f) << p.value;
  // Before a step the ControlNet is a no-op (zero convolutions): the same samples as the base.
  EXPECT_NEAR(t.f1[0].value, t.f1_without, 1e-6);
  EXPECT_FALSE(t.loss.empty());
  EXPECT_EQ(t.curve_images, 8);
  EXPECT_EQ(read_text(taken + "/controlnet.pt"), "not mine");

  engine.send(cmd::Pause{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_EQ(s->status, JobStatus::ControlNetPaused);
  const int64_t paused_at = s->controlnet_training.step;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(engine.snapshot()->controlnet_training.step, paused_at);
  // The model is frozen while its ControlNet trains: a command that would replace it is refused.
  engine.send(cmd::ResetModel{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_TRUE(s->model_ready);
  EXPECT_NE(s->error.find("a ControlNet is training"), std::string::npos) << s->error;
  EXPECT_EQ(s->status, JobStatus::ControlNetPaused);

  engine.send(cmd::Resume{});
  s = wait_until(engine,
                 [&](const Snapshot& s) { return s.controlnet_training.step > paused_at + 3; });
  EXPECT_GT(s->controlnet_training.step, paused_at + 3);
  EXPECT_EQ(s->status, JobStatus::TrainingControlNet);

  engine.send(cmd::Stop{});
  ASSERT_TRUE(engine.wait_idle(60));
  s = engine.snapshot();
  EXPECT_EQ(s->status, JobStatus::Idle) << s->error;
  const ControlNetTraining& done = s->controlnet_training;
  EXPECT_FALSE(done.active);
  const std::string path =
      (fs::path(run) / "controlnets" / "scribble-2" / "controlnet.pt").string();
  EXPECT_EQ(done.path, path);
  EXPECT_TRUE(fs::is_regular_file(path));
  EXPECT_EQ(done.saved_step, done.step);
  EXPECT_TRUE(fs::is_regular_file(done.dir + "/config.yaml"));
  const std::string metrics = read_text(done.dir + "/metrics.csv");
  EXPECT_NE(metrics.find("hint_f1"), std::string::npos);
  EXPECT_EQ(read_text(taken + "/controlnet.pt"), "not mine");
  EXPECT_EQ(s->job(JobKind::ControlNet).outcome, JobOutcome::Done)
      << s->job(JobKind::ControlNet).message;
  // It is the loaded ControlNet now, on the current model.
  ASSERT_TRUE(s->controlnet.ready);
  EXPECT_EQ(s->controlnet.path, path);
  EXPECT_EQ(s->controlnet.step, done.step);
  EXPECT_EQ(s->controlnet.config.hint, HintKind::Scribble);
  EXPECT_EQ(s->step, 3);  // the model did not train meanwhile
  // And listed: it fits; the file that is not a checkpoint does not.
  ASSERT_EQ(s->controlnets_found.size(), 2u);
  EXPECT_EQ(s->controlnets_found_serial, s->model_serial);
  for (const auto& f : s->controlnets_found) {
    if (f.path == path) {
      EXPECT_TRUE(f.fits) << f.why;
      EXPECT_EQ(f.step, done.step);
    } else {
      EXPECT_FALSE(f.fits);
      EXPECT_NE(f.why.find("scribble-1"), std::string::npos) << f.why;
    }
  }

  // Generate with it, as the panel does.
  cmd::Sample sample;
  sample.config = config.sample;
  sample.controlnet = true;
  sample.hint.assign(kHintChannels * kSize * kSize, 0.0f);
  for (int y = 3; y < 13; ++y) sample.hint[kSize * kSize + y * kSize + 8] = 1.0f;
  engine.send(sample);
  ASSERT_TRUE(engine.wait_idle(60));
  s = engine.snapshot();
  ASSERT_TRUE(s->samples) << s->error;
  EXPECT_EQ(s->samples->final_images.n, 2);
  EXPECT_FALSE(s->samples->hint.empty());
}

TEST(EngineControlNet, SavesUnsavedStepsFirstContinuesFromItsFolderAndStopsFittingANewerModel) {
  const std::string dir = temp_dir("resume");
  Config config = tiny_config(bar_folder(dir));
  Engine engine(config, options(dir));
  auto s = train_base(engine, config);
  ASSERT_EQ(s->step, 3) << s->error;
  // Steps that no checkpoint holds yet.
  config.train.steps = 100000;
  engine.send(cmd::SetConfig{config});
  engine.send(cmd::StartTraining{});
  s = wait_until(engine, [](const Snapshot& s) { return s.step >= 5; });
  engine.send(cmd::Stop{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  ASSERT_GT(s->run.unsaved_steps, 0);
  const int64_t model_step = s->step;

  cmd::TrainControlNet train;
  train.hint = HintKind::Canny;
  train.steps = 6;
  train.curve_every = 0;
  engine.send(train);
  s = wait_until(engine, [](const Snapshot& s) {
    return s.status == JobStatus::Idle && s.job(JobKind::ControlNet).outcome == JobOutcome::Done;
  });
  ASSERT_EQ(s->job(JobKind::ControlNet).outcome, JobOutcome::Done) << s->error;
  EXPECT_EQ(s->run.unsaved_steps, 0);  // saved first: the ControlNet's base is a checkpoint
  EXPECT_EQ(s->run.saved_step, model_step);
  EXPECT_EQ(s->controlnet_training.base_path, s->run.saved_path);
  EXPECT_TRUE(s->controlnet_training.f1.empty());  // the curve was off
  const std::string cn_dir = (fs::path(s->run.dir) / "controlnets" / "canny-1").string();
  EXPECT_EQ(s->controlnet_training.dir, cn_dir);
  ASSERT_TRUE(s->controlnet.ready) << s->error;
  EXPECT_EQ(s->controlnet.step, 6);

  // Continue it in its own folder, from step 6.
  train.steps = 10;
  train.resume_dir = cn_dir;
  engine.send(train);
  s = wait_until(engine, [](const Snapshot& s) {
    return s.status == JobStatus::Idle && s.controlnet.ready && s.controlnet.step == 10;
  });
  ASSERT_EQ(s->controlnet.step, 10) << s->error;
  EXPECT_EQ(s->controlnet_training.dir, cn_dir);
  EXPECT_FALSE(fs::exists(fs::path(s->run.dir) / "controlnets" / "canny-2"));
  EXPECT_EQ(s->controlnet_training.loss.front().step, 7);  // it went on from step 6

  // The model trains on: the ControlNet was trained for other weights and is no longer offered.
  engine.send(cmd::StartTraining{});
  s = wait_until(engine, [&](const Snapshot& s) { return s.step >= model_step + 2; });
  engine.send(cmd::Stop{});
  engine.send(cmd::FindControlNets{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  ASSERT_EQ(s->controlnets_found.size(), 1u);
  EXPECT_FALSE(s->controlnets_found[0].fits);
  EXPECT_NE(s->controlnets_found[0].why.find("other base weights"), std::string::npos)
      << s->controlnets_found[0].why;
  EXPECT_EQ(s->controlnets_found_step, s->step);
  // Continuing it now is refused, naming the file; nothing trains.
  engine.send(train);
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_EQ(s->job(JobKind::ControlNet).outcome, JobOutcome::Failed);
  EXPECT_NE(s->error.find("controlnet.pt"), std::string::npos) << s->error;
  EXPECT_FALSE(s->controlnet_training.active);
  EXPECT_EQ(s->status, JobStatus::Idle);
}

TEST(EngineControlNet, RefusesWithoutAModelAndWhileTheModelTrains) {
  const std::string dir = temp_dir("refuse");
  Config config = tiny_config(bar_folder(dir));
  Engine engine(config, options(dir));
  engine.send(cmd::TrainControlNet{});
  ASSERT_TRUE(engine.wait_idle(30));
  EXPECT_NE(engine.snapshot()->error.find("no model"), std::string::npos)
      << engine.snapshot()->error;
  config.train.steps = 100000;
  engine.send(cmd::SetConfig{config});
  engine.send(cmd::StartTraining{});
  wait_until(engine, [](const Snapshot& s) { return s.step >= 2; });
  engine.send(cmd::TrainControlNet{});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_NE(s->error.find("the model is training"), std::string::npos) << s->error;
  EXPECT_EQ(s->status, JobStatus::Training);
  EXPECT_FALSE(s->controlnet_training.active);
  engine.send(cmd::Stop{});
  ASSERT_TRUE(engine.wait_idle(30));
}

TEST(EngineControlNet, QuittingMidTrainingKeepsWhatItLearned) {
  const std::string dir = temp_dir("quit");
  const Config config = tiny_config(bar_folder(dir));
  std::string path;
  int64_t step = 0;
  {
    Engine engine(config, options(dir));
    auto s = train_base(engine, config);
    ASSERT_EQ(s->step, 3) << s->error;
    cmd::TrainControlNet train;
    train.hint = HintKind::Canny;
    train.steps = 100000;
    train.curve_every = 0;
    engine.send(train);
    s = wait_until(engine, [](const Snapshot& s) { return s.controlnet_training.step >= 5; });
    ASSERT_GE(s->controlnet_training.step, 5) << s->error;
    path = s->controlnet_training.path;
    step = s->controlnet_training.step;
    EXPECT_FALSE(fs::exists(path));  // checkpoint_every = 0: nothing written yet
  }                                  // the app quits
  ASSERT_TRUE(fs::is_regular_file(path));
  const LoadedControlNet cn = load_controlnet(path, torch::kCPU);
  EXPECT_GE(cn.step, step);
  EXPECT_EQ(cn.config.controlnet.hint, HintKind::Canny);
}

TEST(EngineControlNet, ADeferredReadBackStillShowsAndSavesEveryCheckedStep) {
  // CUDA's default (the loss read every N steps) forced on the CPU: a pause shows the loss
  // up to the step it stopped at, the panel's loss curve gets every step, and a stop
  // writes the file at the last step with a metrics row of checked values.
  const std::string dir = temp_dir("deferred");
  Config config = tiny_config(bar_folder(dir));
  config.controlnet.loss_read_every = 5;
  Engine engine(config, options(dir));
  auto s = train_base(engine, config);
  ASSERT_EQ(s->step, 3) << s->error;
  cmd::TrainControlNet train;
  train.hint = HintKind::Canny;
  train.steps = 100000;
  train.curve_every = 0;
  engine.send(train);
  s = wait_until(engine, [](const Snapshot& s) { return s.controlnet_training.step >= 2; });
  engine.send(cmd::Pause{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  ASSERT_EQ(s->status, JobStatus::ControlNetPaused) << s->error;
  {
    const ControlNetTraining& t = s->controlnet_training;
    ASSERT_FALSE(t.loss.empty());
    EXPECT_EQ(t.loss.back().step, t.step);
    EXPECT_EQ(static_cast<int64_t>(t.loss.size()), t.step);
  }
  engine.send(cmd::Resume{});
  const int64_t paused_at = s->controlnet_training.step;
  s = wait_until(engine, [&](const Snapshot& s) { return s.controlnet_training.step >= paused_at + 7; });
  engine.send(cmd::Stop{});
  ASSERT_TRUE(engine.wait_idle(60));
  s = engine.snapshot();
  const ControlNetTraining& done = s->controlnet_training;
  EXPECT_FALSE(done.active) << s->error;
  EXPECT_GE(done.step, paused_at + 7);
  EXPECT_EQ(done.saved_step, done.step);
  ASSERT_EQ(static_cast<int64_t>(done.loss.size()), done.step);
  for (size_t i = 0; i < done.loss.size(); ++i) {
    EXPECT_EQ(done.loss[i].step, static_cast<int64_t>(i + 1));
    EXPECT_TRUE(std::isfinite(done.loss[i].value)) << "step " << i + 1;
  }
  EXPECT_EQ(s->job(JobKind::ControlNet).outcome, JobOutcome::Done)
      << s->job(JobKind::ControlNet).message;
  EXPECT_NE(s->job(JobKind::ControlNet).message.find(
                "ControlNet stopped at step " + std::to_string(done.step)),
            std::string::npos)
      << s->job(JobKind::ControlNet).message;
  EXPECT_EQ(load_controlnet(done.path, torch::kCPU).step, done.step);
  // metrics.csv: the stop's row, at the last step, has a finite loss.
  const std::string metrics = read_text(done.dir + "/metrics.csv");
  ASSERT_EQ(metrics.rfind("step,loss,", 0), 0u) << metrics;
  const std::string last = "\n" + std::to_string(done.step) + ",";
  const size_t row = metrics.find(last);
  ASSERT_NE(row, std::string::npos) << metrics;
  const double loss = std::stod(metrics.substr(row + last.size()));
  EXPECT_TRUE(std::isfinite(loss) && loss > 0.0) << metrics;
}
