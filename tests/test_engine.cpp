// The Engine headless, driven exactly as the GUI's panels drive it: commands in,
// snapshots out, everything on the worker thread.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/engine/engine.h"
#include "core/train/checkpoint.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

Config toy_config() {
  Config c;
  c.data.kind = DatasetKind::Toy2d;
  c.data.toy = Toy2dKind::TwoMoons;
  c.data.toy_points = 2000;
  c.model.kind = ModelKind::Mlp;
  c.model.class_conditional = true;
  c.model.mlp_hidden = 32;
  c.model.mlp_layers = 2;
  c.diffusion.timesteps = 100;
  c.train.batch_size = 64;
  c.train.steps = 100000;
  c.train.eval_every = 50;
  c.sample.steps = 20;
  c.sample.n = 32;
  c.sample.guidance = 2.0;
  return c;
}

EngineOptions options() {
  EngineOptions o;
  o.threads = 1;
  o.publish_interval_s = 0.02;
  o.runs_root = (fs::path(DIFFLAB_TEST_TMP) / "engine_runs").string();
  return o;
}

// Polls snapshots until `pred` holds or `timeout_s` passes.
template <typename Pred>
std::shared_ptr<const Snapshot> wait_until(const Engine& e, Pred pred, double timeout_s = 30) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto s = e.snapshot();
  while (!pred(*s) && std::chrono::steady_clock::now() < end)
    s = e.wait_for_update(s->version, 0.1);
  return s;
}

// `c` with losses read every 1000 steps (CUDA reads every 16; forced here) and no metrics
// row, evaluation or checkpoint that would read them sooner (previews: SetPreviewEvery 0).
Config unread_config(Config c) {
  c.train.loss_read_every = 1000;
  c.train.log_every = 100000;
  c.train.eval_every = 0;
  c.train.checkpoint_every = 0;
  c.train.autosave_minutes = 0;
  return c;
}

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("engine_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST(Engine, LoadsDataAndPublishesAPreview) {
  Engine engine(toy_config(), options());
  engine.send(cmd::LoadData{});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_TRUE(s->data_ready) << s->error;
  EXPECT_TRUE(s->points);
  EXPECT_EQ(s->data_preview.c, 2);
  EXPECT_GT(s->data_preview.n, 100);
  EXPECT_EQ(s->class_counts.size(), 2u);
  EXPECT_NE(s->data_description.find("two_moons"), std::string::npos);
}

TEST(Engine, TrainPauseResumeStopActWithinOneStep) {
  Engine engine(toy_config(), options());
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.step >= 20; });
  ASSERT_GE(s->step, 20) << s->error;
  EXPECT_EQ(s->status, JobStatus::Training);
  EXPECT_TRUE(s->model_ready);
  EXPECT_FALSE(s->loss.empty());

  engine.send(cmd::Pause{});
  ASSERT_TRUE(engine.wait_idle(10));
  const int64_t paused_at = engine.snapshot()->step;
  EXPECT_EQ(engine.snapshot()->status, JobStatus::Paused);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(engine.snapshot()->step, paused_at);

  engine.send(cmd::Resume{});
  s = wait_until(engine, [&](const Snapshot& s) { return s.step > paused_at + 5; });
  EXPECT_GT(s->step, paused_at + 5);

  engine.send(cmd::Stop{});
  ASSERT_TRUE(engine.wait_idle(10));
  const int64_t stopped_at = engine.snapshot()->step;
  EXPECT_EQ(engine.snapshot()->status, JobStatus::Idle);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(engine.snapshot()->step, stopped_at);
  EXPECT_TRUE(engine.snapshot()->model_ready);  // the model stays after Stop
}

TEST(Engine, SamplesRecordATrajectoryForTheScrubber) {
  Engine engine(toy_config(), options());
  Config c = toy_config();
  c.train.steps = 30;
  engine.send(cmd::SetConfig{c});
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.step >= 30 && s.status == JobStatus::Idle; });
  ASSERT_EQ(s->step, 30) << s->error;
  SampleConfig sc = c.sample;
  sc.sampler = SamplerKind::Ddpm;
  sc.steps = 25;
  engine.send(cmd::Sample{sc, 10});
  ASSERT_TRUE(engine.wait_idle(60));
  s = engine.snapshot();
  ASSERT_TRUE(s->samples) << s->error;
  EXPECT_EQ(s->samples->final_images.n, 32);
  EXPECT_EQ(s->samples->final_images.c, 2);
  EXPECT_EQ(s->samples->x_t.size(), 10u);  // thinned to max_frames, ends kept
  EXPECT_EQ(s->samples->timesteps.front(), 99);
  EXPECT_EQ(s->samples->timesteps.back(), 0);
  EXPECT_EQ(s->samples->labels.size(), 32u);
  EXPECT_EQ(s->sample_step, 25);
}

TEST(Engine, CancelStopsSamplingWithinOneStep) {
  Engine engine(toy_config(), options());
  Config c = toy_config();
  c.train.steps = 5;
  engine.send(cmd::SetConfig{c});
  engine.send(cmd::StartTraining{});
  wait_until(engine, [](const Snapshot& s) { return s.step >= 5 && s.status == JobStatus::Idle; });
  SampleConfig sc = c.sample;
  sc.sampler = SamplerKind::Ddpm;
  sc.steps = 100;
  sc.n = 20000;  // slow enough to cancel midway
  engine.send(cmd::Sample{sc, 10});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.sample_step >= 2; });
  engine.send(cmd::Cancel{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_EQ(s->status, JobStatus::Idle);
  EXPECT_LT(s->sample_step, 100);
  EXPECT_FALSE(s->samples);  // nothing half-done is published
  EXPECT_NE(s->message.find("cancelled"), std::string::npos) << s->message;
}

TEST(Engine, ErrorsComeBackAsStatusAndTheWorkerLivesOn) {
  Engine engine(toy_config(), options());
  engine.send(cmd::LoadCheckpoint{"/no/such/checkpoint.pt"});
  engine.send(cmd::Sample{SampleConfig{}, 10});  // no model yet
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_NE(s->error.find("model"), std::string::npos) << s->error;
  bool named = false;
  for (const auto& line : s->log) named |= line.find("/no/such/checkpoint.pt") != std::string::npos;
  EXPECT_TRUE(named);

  Config bad = toy_config();
  bad.data.kind = DatasetKind::ImageFolder;
  bad.data.path = "/no/such/folder";
  engine.send(cmd::SetConfig{bad});
  engine.send(cmd::LoadData{});
  ASSERT_TRUE(engine.wait_idle(30));
  EXPECT_NE(engine.snapshot()->error.find("/no/such/folder"), std::string::npos);
  EXPECT_EQ(engine.snapshot()->status, JobStatus::Idle);

  // Still alive: a good config trains.
  engine.send(cmd::SetConfig{toy_config()});
  engine.send(cmd::StartTraining{});
  s = wait_until(engine, [](const Snapshot& s) { return s.step >= 3; });
  EXPECT_GE(s->step, 3);
}

TEST(Engine, ADeferredReadBackFillsTheLossChartWhenTrainingPauses) {
  // Losses read every 1000 steps (CUDA reads every 16; forced here, and so many that the
  // pause always finds steps unread): pausing reads them, so the chart holds every step up
  // to the one shown.
  Engine engine(unread_config(toy_config()), options());
  engine.send(cmd::SetPreviewEvery{0, 0.0});  // a preview would read too
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.step >= 10; });
  ASSERT_GE(s->step, 10) << s->error;
  ASSERT_LT(s->step, 1000);
  EXPECT_TRUE(s->loss.empty());  // nothing read yet
  engine.send(cmd::Pause{});
  ASSERT_TRUE(engine.wait_idle(10));
  s = engine.snapshot();
  ASSERT_EQ(s->status, JobStatus::Paused) << s->error;
  ASSERT_EQ(s->loss.size(), static_cast<size_t>(s->step));
  for (size_t i = 0; i < s->loss.size(); ++i) {
    EXPECT_EQ(s->loss[i].step, static_cast<int64_t>(i + 1));
    EXPECT_TRUE(std::isfinite(s->loss[i].value));
  }
}

TEST(Engine, DivergingTrainingStopsWithAnErrorNotACrash) {
  Config c = toy_config();
  c.train.lr = 1e12;
  c.train.grad_clip = 0.0;
  c.train.warmup_steps = 0;
  c.model.class_conditional = false;
  Engine engine(c, options());
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.status == JobStatus::Error; }, 60);
  EXPECT_EQ(s->status, JobStatus::Error);
  EXPECT_TRUE(s->error.find("loss is") != std::string::npos ||
              s->error.find("gradient") != std::string::npos) << s->error;
  EXPECT_TRUE(s->model_ready);  // the last good weights stay
  EXPECT_GT(s->step, 0) << s->error;
  std::printf("diverged: %s\n", s->error.c_str());
}

TEST(Engine, SavingDuringADeferredReadFindsTheBadStepAndSavesTheLastGoodOne) {
  // Diverging at once, with losses read only every 1000 steps: the steps go on unread
  // until Save reads them. Then the training job fails naming the bad step, and the save
  // writes the run as it stood after the last good one.
  Config c = unread_config(toy_config());
  c.train.lr = 1e12;
  c.train.grad_clip = 0.0;
  c.train.warmup_steps = 0;
  c.model.class_conditional = false;
  Engine engine(c, options());
  engine.send(cmd::SetPreviewEvery{0, 0.0});
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.step >= 20; });
  ASSERT_GE(s->step, 20) << s->error;
  ASSERT_EQ(s->status, JobStatus::Training) << s->error;  // nothing read, nothing noticed
  engine.send(cmd::SaveCheckpoint{""});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_EQ(s->status, JobStatus::Error);
  EXPECT_TRUE(s->error.find("loss is") != std::string::npos ||
              s->error.find("gradient norm is") != std::string::npos) << s->error;
  const auto& saved = s->job(JobKind::Save);
  ASSERT_EQ(saved.outcome, JobOutcome::Done) << saved.message;
  const CheckpointInfo info = read_checkpoint_info(saved.path);
  EXPECT_EQ(info.step, s->step);
  EXPECT_LT(s->step, 20);
  EXPECT_NE(s->error.find("after step " + std::to_string(s->step) + " "), std::string::npos) << s->error;
}

TEST(Engine, CheckpointSaveAndLoadThroughCommands) {
  const auto dir = temp_dir("ckpt");
  Config c = toy_config();
  c.train.steps = 12;
  {
    Engine engine(c, options());
    engine.send(cmd::StartTraining{});
    wait_until(engine, [](const Snapshot& s) { return s.step >= 12 && s.status == JobStatus::Idle; });
    engine.send(cmd::SaveCheckpoint{dir + "/a.pt"});
    ASSERT_TRUE(engine.wait_idle(30));
    EXPECT_TRUE(engine.snapshot()->error.empty()) << engine.snapshot()->error;
  }
  Engine other(toy_config(), options());
  other.send(cmd::LoadCheckpoint{dir + "/a.pt"});
  ASSERT_TRUE(other.wait_idle(30));
  auto s = other.snapshot();
  EXPECT_TRUE(s->error.empty()) << s->error;
  EXPECT_EQ(s->step, 12);
  EXPECT_EQ(s->config.train.steps, 12);
  EXPECT_TRUE(s->model_ready);
}

TEST(Engine, ShortRunsStillReportTheirThroughput) {
  Config c = toy_config();
  c.train.steps = 40;
  Engine engine(c, options());
  engine.send(cmd::SetPreviewEvery{0});
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.step >= 40 && s.status == JobStatus::Idle; });
  ASSERT_EQ(s->step, 40) << s->error;
  EXPECT_GT(s->images_per_s, 0.0);
}

TEST(Engine, AFailedSampleRequestDoesNotStopTraining) {
  Engine engine(toy_config(), options());
  engine.send(cmd::StartTraining{});
  wait_until(engine, [](const Snapshot& s) { return s.step >= 5; });
  SampleConfig bad = toy_config().sample;
  bad.class_label = 12;  // the model has 2 classes
  engine.send(cmd::Sample{bad, 10});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_NE(s->error.find("class"), std::string::npos) << s->error;
  EXPECT_EQ(s->status, JobStatus::Training);
  const int64_t at = s->step;
  s = wait_until(engine, [&](const Snapshot& s) { return s.step > at + 3; });
  EXPECT_GT(s->step, at + 3);
}

TEST(Engine, ABrokenCheckpointLeavesTheModelAlone) {
  const auto dir = temp_dir("broken");
  Config c = toy_config();
  c.train.steps = 8;
  Engine engine(c, options());
  engine.send(cmd::StartTraining{});
  wait_until(engine, [](const Snapshot& s) { return s.step >= 8 && s.status == JobStatus::Idle; });
  std::ofstream(dir + "/broken.pt") << "not a checkpoint";
  engine.send(cmd::LoadCheckpoint{dir + "/broken.pt"});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_NE(s->error.find("broken.pt"), std::string::npos) << s->error;
  EXPECT_TRUE(s->model_ready);
  EXPECT_EQ(s->step, 8);
  EXPECT_TRUE(s->data_ready);
}

std::string latest_checkpoint_for_test(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "checkpoints" / "latest");
  std::string name;
  std::getline(in, name);
  return (fs::path(dir) / "checkpoints" / name).string();
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Trains `c` (train.steps small) to its end in `engine` and returns the snapshot.
std::shared_ptr<const Snapshot> train_to_end(Engine& engine, const Config& c) {
  engine.send(cmd::SetConfig{c});
  engine.send(cmd::StartTraining{});
  engine.wait_idle(30);  // both taken: the snapshot below is of this run, not the last one
  return wait_until(engine, [&](const Snapshot& s) {
    return s.step >= c.train.steps && s.status != JobStatus::Training;
  }, 60);
}

EngineOptions options_in(const std::string& root) {
  EngineOptions o = options();
  o.runs_root = root;
  return o;
}

// Issue 10: a new model gets its own run folder; Save writes there; after a dataset
// switch the next model's Save never touches the first model's files.
TEST(EngineRuns, EachModelSavesIntoItsOwnRunFolder) {
  const auto root = temp_dir("own_folders");
  Config c = toy_config();
  c.train.steps = 6;
  Engine engine(c, options_in(root));
  auto s = train_to_end(engine, c);
  ASSERT_EQ(s->step, 6) << s->error;
  const std::string first_dir = s->run.dir;
  ASSERT_FALSE(first_dir.empty());
  EXPECT_EQ(fs::path(first_dir).parent_path(), fs::path(root));
  EXPECT_NE(fs::path(first_dir).filename().string().find("toy2d-two_moons-"), std::string::npos) << first_dir;
  // The end of training wrote a checkpoint: nothing unsaved.
  EXPECT_EQ(s->run.unsaved_steps, 0);
  for (const char* f : {"config.yaml", "metrics.csv", "checkpoints/latest", "checkpoints/step_00000006.pt"})
    EXPECT_TRUE(fs::exists(fs::path(first_dir) / f)) << f;
  const std::string first_ckpt = (fs::path(first_dir) / "checkpoints/step_00000006.pt").string();
  const std::string first_bytes = file_bytes(first_ckpt);

  Config other = c;
  other.data.toy = Toy2dKind::EightGaussians;
  s = train_to_end(engine, other);
  ASSERT_EQ(s->step, 6) << s->error;
  ASSERT_NE(s->run.dir, first_dir);
  engine.send(cmd::SaveCheckpoint{""});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_EQ(s->job(JobKind::Save).outcome, JobOutcome::Done) << s->job(JobKind::Save).message;
  EXPECT_EQ(fs::path(s->job(JobKind::Save).path).parent_path().parent_path(), fs::path(s->run.dir));
  EXPECT_EQ(file_bytes(first_ckpt), first_bytes);  // byte for byte
}

TEST(EngineRuns, SavingOverAnExistingFileAsksFirst) {
  const auto root = temp_dir("overwrite");
  Config c = toy_config();
  c.train.steps = 4;
  Engine engine(c, options_in(root));
  train_to_end(engine, c);
  const std::string other = root + "/someone_elses.pt";
  std::ofstream(other) << "the user's file";
  engine.send(cmd::SaveCheckpoint{other});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_EQ(s->job(JobKind::Save).outcome, JobOutcome::NeedsConfirmation);
  EXPECT_EQ(s->job(JobKind::Save).path, other);
  EXPECT_EQ(file_bytes(other), "the user's file");
  engine.send(cmd::SaveCheckpoint{other, /*overwrite=*/true});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_EQ(s->job(JobKind::Save).outcome, JobOutcome::Done) << s->job(JobKind::Save).message;
  EXPECT_NE(file_bytes(other), "the user's file");
}

TEST(EngineRuns, ABadDatasetPathKeepsTheModelAndTheData) {
  const auto root = temp_dir("bad_path");
  Config c = toy_config();
  c.train.steps = 4;
  Engine engine(c, options_in(root));
  auto before = train_to_end(engine, c);
  ASSERT_TRUE(before->model_ready) << before->error;
  Config bad = c;
  bad.data.kind = DatasetKind::Idx;
  bad.data.path = root + "/no_such_images.idx";
  engine.send(cmd::SetConfig{bad});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_EQ(s->job(JobKind::Config).outcome, JobOutcome::Failed);
  EXPECT_NE(s->job(JobKind::Config).message.find("no_such_images"), std::string::npos)
      << s->job(JobKind::Config).message;
  EXPECT_TRUE(s->model_ready);
  EXPECT_TRUE(s->data_ready);
  EXPECT_EQ(s->model_serial, before->model_serial);
  EXPECT_EQ(s->config.data.kind, DatasetKind::Toy2d);
  EXPECT_EQ(s->step, 4);
}

TEST(EngineRuns, LoadingARunsCheckpointBringsBackItsHistory) {
  const auto root = temp_dir("history");
  Config c = toy_config();
  c.train.steps = 20;
  c.train.log_every = 5;
  c.train.eval_every = 10;
  std::string dir;
  {
    Engine engine(c, options_in(root));
    engine.send(cmd::SetPreviewEvery{10});
    auto s = train_to_end(engine, c);
    ASSERT_EQ(s->step, 20) << s->error;
    dir = s->run.dir;
  }
  EXPECT_TRUE(fs::exists(fs::path(dir) / "samples/step_00000010.png"));
  Engine engine(toy_config(), options_in(root));
  engine.send(cmd::LoadCheckpoint{latest_checkpoint_for_test(dir)});
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  ASSERT_TRUE(s->model_ready) << s->error;
  EXPECT_EQ(s->run.dir, dir);
  ASSERT_EQ(s->loss.size(), 4u);  // metrics.csv rows at steps 5, 10, 15, 20
  EXPECT_EQ(s->loss.back().step, 20);
  EXPECT_EQ(s->test_loss.size(), 2u);
  EXPECT_EQ(s->preview_step, 20);
  EXPECT_FALSE(s->preview.empty());
}

TEST(EngineRuns, PreviewsByTrainingTimeSayWhenTheNextComes) {
  const auto root = temp_dir("preview_time");
  Config c = toy_config();
  c.train.steps = 100000;
  c.train.sample_every = 0;
  Engine engine(c, options_in(root));
  engine.send(cmd::SetPreviewEvery{0, 0.3});  // every 0.3 s of training, as the GUI does
  engine.send(cmd::StartTraining{});
  auto s = wait_until(engine, [](const Snapshot& s) { return s.preview_step > 0; });
  ASSERT_GT(s->preview_step, 0) << s->error;
  EXPECT_FALSE(s->preview.empty());
  s = wait_until(engine, [](const Snapshot& s) {
    return s.status == JobStatus::Training && s.run.preview_in_s >= 0;
  });
  EXPECT_GE(s->run.preview_in_s, 0.0);
  EXPECT_LE(s->run.preview_in_s, 0.3);
  engine.send(cmd::Stop{});
  ASSERT_TRUE(engine.wait_idle(30));
  EXPECT_EQ(engine.snapshot()->run.preview_in_s, -1.0);  // not training: none due
}

TEST(EngineRuns, ResumeRunContinuesInItsFolderFromTheAutosave) {
  const auto root = temp_dir("resume");
  Config c = toy_config();
  c.train.steps = 100000;
  c.train.checkpoint_every = 0;
  c.train.autosave_minutes = 0.002;  // 0.12 s of training
  std::string dir;
  int64_t saved = -1;
  {
    Engine engine(c, options_in(root));
    engine.send(cmd::SetPreviewEvery{0});
    engine.send(cmd::StartTraining{});
    auto s = wait_until(engine, [](const Snapshot& s) { return s.run.saved_step > 0; });
    ASSERT_GT(s->run.saved_step, 0) << s->error;
    dir = s->run.dir;
    saved = s->run.saved_step;
    // Gone without a word, as a crash: the autosave is what remains.
  }
  std::ifstream last(fs::path(root) / "last-gui-run");
  std::string remembered;
  std::getline(last, remembered);
  EXPECT_EQ(fs::path(remembered), fs::absolute(dir).lexically_normal());
  Engine engine(toy_config(), options_in(root));
  engine.send(cmd::ResumeRun{dir});
  auto s = wait_until(engine, [&](const Snapshot& s) { return s.step > saved + 5; });
  EXPECT_EQ(s->job(JobKind::Load).outcome, JobOutcome::Done) << s->job(JobKind::Load).message;
  EXPECT_EQ(s->status, JobStatus::Training);
  EXPECT_EQ(s->run.dir, dir);
  EXPECT_GE(s->step, saved);
}

TEST(EngineRuns, ResultsOfAnOldModelAreCleared) {
  const auto root = temp_dir("stale");
  Config c = toy_config();
  c.train.steps = 5;
  Engine engine(c, options_in(root));
  auto s = train_to_end(engine, c);
  SampleConfig sc = c.sample;
  sc.steps = 5;
  engine.send(cmd::Sample{sc, 5});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  ASSERT_TRUE(s->samples) << s->error;
  EXPECT_EQ(s->samples->model_serial, s->model_serial);
  EXPECT_FALSE(s->loss.empty());
  const uint64_t serial = s->model_serial;
  engine.send(cmd::ResetModel{});
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_NE(s->model_serial, serial);
  EXPECT_FALSE(s->samples);
  EXPECT_TRUE(s->loss.empty());
  EXPECT_TRUE(s->preview.empty());
  EXPECT_TRUE(s->run.dir.empty());
}

namespace difflab {
namespace {

// The Sampling panel's Evaluate button: without a model, and on 2-D points (nothing for the
// image classifier to score), the worker reports why and stays usable.
TEST(Engine, EvaluateExplainsWhatItCannotScore) {
  Engine engine(toy_config(), options());
  cmd::Evaluate evaluate;
  evaluate.config = toy_config().sample;
  engine.send(cmd::LoadData{});
  engine.send(evaluate);
  ASSERT_TRUE(engine.wait_idle(30));
  auto s = engine.snapshot();
  EXPECT_NE(s->error.find("no model to evaluate"), std::string::npos) << s->error;

  Config short_run = toy_config();
  short_run.train.steps = 3;
  engine.send(cmd::SetConfig{short_run});
  engine.send(cmd::StartTraining{});
  s = wait_until(engine, [](const Snapshot& s) { return s.step >= 3 && s.status != JobStatus::Training; });
  ASSERT_TRUE(s->model_ready) << s->error;
  engine.send(evaluate);
  ASSERT_TRUE(engine.wait_idle(30));
  s = engine.snapshot();
  EXPECT_NE(s->error.find("2-D points"), std::string::npos) << s->error;
  EXPECT_TRUE(s->evaluations.empty());
  EXPECT_NE(s->status, JobStatus::Sampling);
}

}  // namespace
}  // namespace difflab
