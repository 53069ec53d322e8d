// TrainingRun and run folders: what a run writes, that it writes it as it goes (a crash
// keeps it), and that no folder holding another run is ever written into.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/data/dataset.h"
#include "core/train/run_folder.h"
#include "core/train/training_run.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

Config toy_config() {
  Config c;
  c.data.kind = DatasetKind::Toy2d;
  c.data.toy = Toy2dKind::TwoMoons;
  c.data.toy_points = 512;
  c.model.kind = ModelKind::Mlp;
  c.model.mlp_hidden = 32;
  c.model.mlp_layers = 2;
  c.diffusion.timesteps = 50;
  c.train.batch_size = 32;
  c.train.steps = 12;
  c.train.log_every = 4;
  c.train.eval_every = 6;
  c.train.eval_batches = 1;
  c.train.sample_every = 6;
  c.train.checkpoint_every = 0;
  c.train.autosave_minutes = 0;
  c.sample.steps = 5;
  return c;
}

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("run_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::unique_ptr<Trainer> make_trainer(const Config& c) {
  auto data = std::make_shared<DatasetSplits>(load_dataset(c.data));
  return std::make_unique<Trainer>(c, data, torch::kCPU);
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST(RunFolder, NewFoldersAreNumberedAndNeverShared) {
  const auto root = temp_dir("numbered");
  const std::string a = new_run_dir(root, "mnist");
  const std::string b = new_run_dir(root, "mnist");
  EXPECT_NE(a, b);
  EXPECT_TRUE(fs::is_directory(a));
  EXPECT_TRUE(fs::is_directory(b));
  const std::string name = fs::path(a).filename().string();
  EXPECT_EQ(name.rfind("mnist-", 0), 0u) << name;
  EXPECT_EQ(name.substr(name.size() - 2), "-1") << name;
  EXPECT_EQ(fs::path(b).filename().string().substr(name.size() - 2), "-2");
}

TEST(RunFolder, AFolderThatHoldsARunIsPassedOver) {
  const auto root = temp_dir("free");
  const std::string dir = root + "/run";
  EXPECT_EQ(next_free_run_dir(dir), dir);  // does not exist yet
  fs::create_directories(dir);
  EXPECT_EQ(next_free_run_dir(dir), dir);  // empty: no run in it
  std::ofstream(dir + "/metrics.csv") << "step,loss\n";
  EXPECT_TRUE(holds_run(dir));
  EXPECT_EQ(next_free_run_dir(dir), dir + "-2");
  fs::create_directories(dir + "-2/checkpoints");
  EXPECT_EQ(next_free_run_dir(dir), dir + "-3");
}

TEST(RunFolder, CheckpointsKnowTheirRunFolder) {
  const auto root = temp_dir("owner");
  fs::create_directories(root + "/r/checkpoints");
  std::ofstream(root + "/r/config.yaml") << "{}\n";
  EXPECT_EQ(run_dir_of_checkpoint(root + "/r/checkpoints/step_00000010.pt"), root + "/r");
  EXPECT_EQ(run_dir_of_checkpoint(root + "/loose.pt"), "");
  EXPECT_EQ(checkpoint_step_from_name("a/b/step_00000420.pt"), 420);
  EXPECT_EQ(checkpoint_step_from_name("gui_checkpoint.pt"), -1);
}

TEST(RunFolder, HistoryReadsMetricsUpToTheCheckpointAndToleratesATornRow) {
  const auto dir = temp_dir("history");
  std::ofstream(dir + "/metrics.csv") << "step,loss,test_loss,lr\n"
                                      << "10,0.5,,1e-4\n"
                                      << "20,0.4,0.45,1e-4\n"
                                      << "30,0.3,,1e-4\n"
                                      << "20,0.41,,1e-4\n"  // resumed from step 10 after a crash
                                      << "30,0.2";          // torn by a crash mid-write
  fs::create_directories(dir + "/samples");
  std::ofstream(dir + "/samples/step_00000020.png") << "x";
  std::ofstream(dir + "/samples/step_00000040.png") << "x";
  const RunHistory h = read_run_history(dir, 30);
  ASSERT_EQ(h.loss.size(), 3u);
  EXPECT_EQ(h.loss[1].first, 20);
  EXPECT_DOUBLE_EQ(h.loss[1].second, 0.41);  // the newer row for a repeated step
  EXPECT_DOUBLE_EQ(h.loss[2].second, 0.2);
  EXPECT_TRUE(h.test_loss.empty());          // the resumed run dropped step 20's row
  EXPECT_EQ(h.newest_preview_step, 20);      // step 40 is after the checkpoint
}

TEST(RunFolder, EvaluationsAreRecordedAndReadBack) {
  const auto dir = temp_dir("evals");
  const std::string path = dir + "/" + kRunEvaluationsFile;
  RunEvaluation a;
  a.checkpoint = dir + "/checkpoints/step,1.pt";  // a comma in a path is quoted
  a.step = 400;
  a.n = 1000;
  a.sampler = "ddim";
  a.steps = 50;
  a.guidance = 3;
  a.seed = 7;
  a.accuracy = 0.9125;
  a.fd = 12.5;
  a.fd_floor = 1.25;
  a.reference_images = 1000;
  a.seconds = 61.5;
  append_evaluation_csv(path, a);
  RunEvaluation b = a;
  b.checkpoint = "";
  b.step = 800;
  b.accuracy = std::nan("");  // an unconditional model
  append_evaluation_csv(path, b);
  {
    std::ofstream torn(path, std::ios::app);
    torn << "x.pt,12";  // a crash mid-row
  }
  const auto rows = read_run_evaluations(dir);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].checkpoint, a.checkpoint);
  EXPECT_EQ(rows[0].step, 400);
  EXPECT_EQ(rows[0].n, 1000);
  EXPECT_EQ(rows[0].sampler, "ddim");
  EXPECT_EQ(rows[0].steps, 50);
  EXPECT_EQ(rows[0].seed, 7u);
  EXPECT_NEAR(rows[0].accuracy, 0.9125, 1e-9);
  EXPECT_NEAR(rows[0].fd, 12.5, 1e-9);
  EXPECT_NEAR(rows[0].fd_floor, 1.25, 1e-9);
  EXPECT_EQ(rows[1].step, 800);
  EXPECT_TRUE(std::isnan(rows[1].accuracy));
  EXPECT_TRUE(read_run_evaluations(dir + "/nothing_here").empty());
}

TEST(RunFolder, TheLastGuiRunIsRememberedOnlyWhileItHasACheckpoint) {
  const auto root = temp_dir("last");
  const std::string dir = new_run_dir(root, "toy");
  remember_last_run(root, dir);
  EXPECT_EQ(last_run(root), "");  // nothing to resume yet
  fs::create_directories(dir + "/checkpoints");
  std::ofstream(dir + "/checkpoints/step_00000005.pt") << "x";
  EXPECT_EQ(fs::path(last_run(root)), fs::absolute(dir).lexically_normal());
}

TEST(TrainingRun, WritesTheRunFolderAsItGoes) {
  const auto dir = temp_dir("writes") + "/run";
  Config c = toy_config();
  TrainingRun run(make_trainer(c), RunOptions{dir});
  EXPECT_TRUE(fs::exists(dir + "/config.yaml"));
  int logged = 0, previews = 0;
  while (run.trainer().step() < 8) {
    const RunStepReport r = run.step();
    logged += r.logged;
    previews += r.previewed;
    if (r.previewed) EXPECT_EQ(r.preview_images.size(0), kPreviewPoints);
  }
  EXPECT_EQ(logged, 3);  // steps 4, 6 (test loss) and 8
  EXPECT_EQ(previews, 1);
  // Rows are on disk while the run is alive: a crash now would keep them.
  const auto rows = lines_of(dir + "/metrics.csv");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], "step,loss,test_loss,lr,grad_norm,images_per_s,epoch,train_s");
  EXPECT_EQ(rows[2].rfind("6,", 0), 0u);
  EXPECT_NE(rows[2].find(",,"), 1u);  // step 6 has a test loss
  EXPECT_TRUE(fs::exists(dir + "/samples/step_00000006.png"));
  EXPECT_TRUE(fs::is_directory(dir + "/tb"));
  EXPECT_EQ(run.unsaved_steps(), 8);
  const std::string path = run.checkpoint();
  EXPECT_EQ(path, checkpoint_path(dir, 8));
  EXPECT_EQ(latest_checkpoint(dir), path);
  EXPECT_EQ(run.unsaved_steps(), 0);
  EXPECT_EQ(run.saved_step(), 8);
}

TEST(TrainingRun, ADeferredReadBackLogsTheSameRows) {
  // Losses read every 5 steps (the CUDA default is 16) reach the rows, the test losses and
  // the reports as reading each step does: rows, evaluations and the end read first.
  const auto dir_each = temp_dir("read_each") + "/run";
  const auto dir_deferred = temp_dir("read_deferred") + "/run";
  Config c = toy_config();
  c.train.loss_read_every = 1;
  TrainingRun each(make_trainer(c), RunOptions{dir_each});
  c.train.loss_read_every = 5;
  TrainingRun deferred(make_trainer(c), RunOptions{dir_deferred});
  std::vector<int64_t> read_at;
  std::vector<int64_t> steps_read;
  while (deferred.trainer().step() < c.train.steps) {
    const RunStepReport a = each.step();
    const RunStepReport b = deferred.step();
    ASSERT_EQ(a.measured.size(), 1u);
    EXPECT_EQ(a.measured[0].step, a.step.step);
    EXPECT_EQ(b.logged, a.logged);
    if (b.logged) EXPECT_EQ(b.window_loss, a.window_loss);
    if (!b.measured.empty()) read_at.push_back(b.step.step);
    for (const auto& r : b.measured) steps_read.push_back(r.step);
  }
  EXPECT_EQ(read_at, (std::vector<int64_t>{4, 6, 8, 12}));  // rows at 4, 6, 8, 12
  ASSERT_EQ(steps_read.size(), 12u);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(steps_read[i], i + 1);
  const auto first = [](const std::string& row) {  // step, loss, test_loss, lr, grad_norm
    size_t at = 0;
    for (int k = 0; k < 5; ++k) at = row.find(',', at) + 1;
    return row.substr(0, at);
  };
  const auto rows_each = lines_of(dir_each + "/metrics.csv");
  const auto rows_deferred = lines_of(dir_deferred + "/metrics.csv");
  ASSERT_EQ(rows_each.size(), 5u);  // the header and steps 4, 6, 8, 12
  ASSERT_EQ(rows_deferred.size(), rows_each.size());
  for (size_t i = 1; i < rows_each.size(); ++i) EXPECT_EQ(first(rows_deferred[i]), first(rows_each[i]));
}

TEST(TrainingRun, RefusesAFolderThatHoldsAnotherRun) {
  const auto dir = temp_dir("refuse") + "/run";
  Config c = toy_config();
  {
    TrainingRun run(make_trainer(c), RunOptions{dir});
    run.step();
    run.checkpoint();
  }
  const std::string config_before = lines_of(dir + "/config.yaml").front();
  try {
    TrainingRun again(make_trainer(c), RunOptions{dir});
    FAIL() << "a folder holding a run was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("already holds a run"), std::string::npos) << e.what();
  }
  EXPECT_EQ(lines_of(dir + "/config.yaml").front(), config_before);
  EXPECT_EQ(checkpoint_step_from_name(latest_checkpoint(dir)), 1);
}

TEST(TrainingRun, ResumingAppendsToTheSameMetrics) {
  const auto dir = temp_dir("resume") + "/run";
  Config c = toy_config();
  {
    TrainingRun run(make_trainer(c), RunOptions{dir});
    while (run.trainer().step() < 4) run.step();
    run.checkpoint();
  }
  auto trainer = make_trainer(c);
  trainer->load_checkpoint(latest_checkpoint(dir));
  TrainingRun run(std::move(trainer), RunOptions{dir, /*resume=*/true});
  EXPECT_EQ(run.saved_step(), 4);
  EXPECT_EQ(run.unsaved_steps(), 0);
  while (run.trainer().step() < 8) run.step();
  const auto rows = lines_of(dir + "/metrics.csv");
  ASSERT_EQ(rows.size(), 4u);  // header, 4, 6, 8
  EXPECT_EQ(rows[3].rfind("8,", 0), 0u);
  // The training time goes on from where the first part left it (the Runs panel's x axis).
  const RunHistory h = read_run_history(dir);
  ASSERT_EQ(h.train_s.size(), 3u);
  EXPECT_EQ(h.train_s[0].first, 4);
  EXPECT_GT(h.train_s[0].second, 0.0);
  EXPECT_GT(h.train_s[1].second, h.train_s[0].second);  // step 6, after the resume
  EXPECT_GT(h.train_s[2].second, h.train_s[1].second);
}

TEST(TrainingRun, PreviewsByTrainingTime) {
  Config c = toy_config();
  c.train.sample_every = 0;  // by steps: never
  {
    const auto dir = temp_dir("preview_time_long") + "/run";
    RunOptions options{dir};
    options.preview_every_s = 3600.0;
    TrainingRun run(make_trainer(c), options);
    int previews = 0;
    while (run.trainer().step() < 6) previews += run.step().previewed;
    EXPECT_EQ(previews, 0);  // an hour has not passed
    EXPECT_GT(run.seconds_to_preview(), 3500.0);
    EXPECT_LT(run.seconds_to_preview(), 3600.0);  // training time counts down
  }
  {
    const auto dir = temp_dir("preview_time_short") + "/run";
    RunOptions options{dir};
    options.preview_every_s = 1e-9;  // due after every step
    TrainingRun run(make_trainer(c), options);
    int previews = 0;
    while (run.trainer().step() < 3) previews += run.step().previewed;
    EXPECT_EQ(previews, 3);
    EXPECT_TRUE(fs::exists(preview_path(dir, 3)));
    run.set_preview_every_s(0.0);  // back to steps (sample_every 0: none)
    EXPECT_EQ(run.seconds_to_preview(), -1.0);
    EXPECT_FALSE(run.step().previewed);
  }
}

TEST(TrainingRun, AutosavesAfterItsWallClockPeriod) {
  const auto dir = temp_dir("autosave") + "/run";
  Config c = toy_config();
  c.train.steps = 100000;
  c.train.sample_every = 0;
  c.train.eval_every = 0;
  c.train.autosave_minutes = 0.001;  // 60 ms of training
  TrainingRun run(make_trainer(c), RunOptions{dir});
  EXPECT_GT(run.seconds_to_autosave(), 0.0);
  std::string saved;
  for (int i = 0; i < 100000 && saved.empty(); ++i) saved = run.step().checkpoint;
  ASSERT_FALSE(saved.empty());
  EXPECT_EQ(latest_checkpoint(dir), saved);
  EXPECT_EQ(run.unsaved_steps(), 0);
}
