// Run folders: where one training run keeps everything it makes. The GUI and
// `difflab-cli train` write the same layout (core/train/training_run.h):
//
//   <dir>/config.yaml              the resolved config of the run
//   <dir>/metrics.csv              step,loss,test_loss,lr,grad_norm,images_per_s,epoch,train_s[,...]
//   <dir>/tb/events.out.tfevents.* the same scalars for TensorBoard
//   <dir>/samples/step_N.png       preview grids during training (final.png at the end)
//   <dir>/checkpoints/step_N.pt    checkpoints; `latest` names the newest
//   <dir>/evals.csv                evaluations of its models (GUI Evaluate, difflab-cli eval)
//
// A folder that holds any of these is a run, and is appended to only when that run is
// resumed: nothing here picks a folder that holds another run. Torch-free (the GUI uses it).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace difflab {

// True when `dir` holds a run: config.yaml, metrics.csv or a checkpoints/ folder.
bool holds_run(const std::string& dir);
// `dir` itself if it holds no run, else the first of dir-2, dir-3, ... that holds none.
std::string next_free_run_dir(const std::string& dir);
// A new, empty run folder <root>/<stem>-YYYY-MM-DD-N (local date, first free N ≥ 1),
// created (with its parents) before it is returned, so two callers never share one.
std::string new_run_dir(const std::string& root, const std::string& stem);
// The run folder a checkpoint belongs to: <dir> for <dir>/checkpoints/<file>, when <dir>
// holds a run; "" otherwise (a checkpoint copied somewhere on its own).
std::string run_dir_of_checkpoint(const std::string& path);
// Checkpoint files of a run folder: <dir>/checkpoints/step_<N>.pt, and "latest".
std::string checkpoint_path(const std::string& run_dir, int64_t step);
// The newest checkpoint of a run folder (`latest`, else the highest step file), "" if none.
std::string latest_checkpoint(const std::string& run_dir);
// Records `path` as the newest and deletes all but the `keep` newest step files.
void mark_latest_checkpoint(const std::string& run_dir, const std::string& path, int keep = 3);
// The step in a checkpoint file name step_N.pt (−1 when the name has none).
int64_t checkpoint_step_from_name(const std::string& path);

// What a run folder recorded, for showing a loaded run's history and comparing runs.
struct RunHistory {
  std::vector<std::pair<int64_t, double>> loss;       // metrics.csv: step, loss (window mean)
  std::vector<std::pair<int64_t, double>> test_loss;  // rows that have a test loss
  std::vector<std::pair<int64_t, double>> train_s;    // seconds of training at each row
                                                      // (empty for runs from before it)
  std::string newest_preview;                         // samples/step_N.png with the highest N
  int64_t newest_preview_step = -1;
};
// Reads <dir>/metrics.csv (rows up to `max_step` when ≥ 0: the steps a checkpoint knows)
// and finds the newest preview grid. A missing or torn file gives what could be read.
RunHistory read_run_history(const std::string& dir, int64_t max_step = -1);

// One evaluation of a model (core/eval/evaluator.h): a row of <run>/evals.csv, or of the
// file `difflab-cli eval --csv` names (the same columns).
struct RunEvaluation {
  std::string checkpoint;  // what was scored ("" = the GUI's model in memory)
  int64_t step = 0;
  int64_t n = 0;
  std::string sampler;
  int steps = 0;
  double eta = 0, guidance = 0, classifier_scale = 0;
  uint64_t seed = 0;
  double accuracy = 0, fd = 0, fd_floor = 0;  // accuracy NaN for an unconditional model
  int64_t reference_images = 0;
  double seconds = 0;
};
constexpr const char* kRunEvaluationsFile = "evals.csv";
// Appends `e` to the CSV at `path` (the header first when the file is new): the old rows and
// the new one are written atomically, so a failed write keeps the file as it was. Throws
// std::runtime_error naming the file.
void append_evaluation_csv(const std::string& path, const RunEvaluation& e);
// The rows of <dir>/evals.csv in file order (none when there is no file); rows that cannot
// be read (torn, or not this layout) are skipped.
std::vector<RunEvaluation> read_run_evaluations(const std::string& dir);

// The GUI remembers its current run folder in <root>/last-gui-run, so that reopening the
// app offers to resume it (after a crash too: the file is written when the folder is made).
void remember_last_run(const std::string& root, const std::string& dir);
// The remembered run folder if it still holds a checkpoint, else "".
std::string last_run(const std::string& root);

}  // namespace difflab
