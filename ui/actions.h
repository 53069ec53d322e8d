// What the buttons do. Every panel button calls one of these, and so does the scripted
// smoke test (app/gui/automation.cpp), so a test exercises the same code as a click.
// Actions only queue engine commands and edit UiState; they never wait for the worker.
#pragma once

#include <string>

#include "core/engine/engine.h"
#include "ui/ui_state.h"

namespace difflab {

// True while the worker is busy with a job that the editors must not change under it.
bool engine_busy(const Snapshot& snap);
bool training_active(const Snapshot& snap);  // training or paused
// True when applying `next` would throw away the model the engine holds now.
bool discards_model(const Snapshot& snap, const Config& next);
// Copies the engine's config into the editors whenever the engine's config changes.
void sync_edit_config(UiState& ui, const Snapshot& snap);

// True when the model holds trained steps that no checkpoint has: losing it loses work.
bool has_unsaved_training(const Snapshot& snap);

class Actions {
 public:
  Actions(Engine& engine, UiState& ui) : m_engine(engine), m_ui(ui) {}

  // Dataset panel "Load": applies the edited config, then loads its data.
  void load_dataset(const Snapshot& snap);
  // Model panel "Apply": applies the edited config.
  void apply_config(const Snapshot& snap);
  // Training panel.
  void train(const Snapshot& snap);  // applies pending edits, then starts or continues
  void pause();
  void resume();
  void stop();
  // "New run": drops the model; the next Train starts fresh weights in a new run folder.
  void new_run(const Snapshot& snap);
  // "Save": into the current run's folder (checkpoints/step_N.pt, marked latest).
  void save_checkpoint();
  // "Save as" the path field; `overwrite` replaces a file that exists (the Replace answer).
  void save_checkpoint_as(const std::string& path, bool overwrite);
  // "Load" the path field's checkpoint.
  void load_checkpoint(const Snapshot& snap);
  // The same for a file named elsewhere (a starter model): the path field stays as it is.
  void load_checkpoint_file(const Snapshot& snap, const std::string& path);
  // The start-up offer: load the newest checkpoint of `dir` and continue training it.
  void resume_run(const std::string& dir);
  // Sends ui.training's preview settings (by time or by steps) to the engine.
  void send_preview_settings();
  // While training: applies a new train.autosave_minutes to the run at once (the config in
  // force with only that changed; other edits wait for the next Train).
  void set_autosave_minutes(const Snapshot& snap, double minutes);
  // Sampling panel.
  void generate();
  // Samples `n` images with the panel's settings and scores them (accuracy, Fréchet distance).
  void evaluate(int n);
  void cancel_sampling();
  // ControlNet panel: load a train-controlnet checkpoint (and the base it names); generate
  // with a hint of kHintChannels planes (core/model/hint_planes.h) at the model's resolution.
  void load_controlnet(const std::string& path, const std::string& base_override);
  void generate_controlnet(std::vector<float> hint);
  // ControlNet panel, Train tab: a ControlNet for the current model with the tab's settings
  // (a new one, or continuing ui.controlnet.continue_dir); Pause, Resume and Stop are the
  // training ones (the worker applies them to what trains).
  void train_controlnet();
  // Lists the ControlNets of the current model's run folder (when the model or its step changed).
  void find_controlnets(const Snapshot& snap);
  // The scrubber (slider, buttons, play) and the script move it through here: positions
  // 0 .. F−1 are the recorded frames of snapshot.samples, F the final images.
  void set_frame(const Snapshot& snap, int frame);
  // The outcome of work done on this thread (exports, screenshots): the job's result in
  // the next snapshot, and a line in the log.
  void report(JobKind kind, bool ok, const std::string& message, const std::string& path);
  // Main menu.
  bool open_config(const Snapshot& snap, const std::string& path, std::string* error);
  bool save_config(const std::string& path, std::string* error);
  // File > Quit, Ctrl+Q and the window's close button.
  void request_quit(const Snapshot& snap);

  // The answers of the unsaved-training question (ui.guard).
  enum class Answer { Save, Discard, Cancel };
  void answer_unsaved(const Snapshot& snap, Answer answer);
  // After "Save": true once the guarded action was carried out (the Save job is Done);
  // a failed Save leaves the action undone and its message in ui.guard.error.
  bool poll_unsaved(const Snapshot& snap);

 private:
  // Sends SetConfig (+ LoadData, + StartTraining); asks first when the change would
  // discard a model with unsaved training.
  void apply(const Snapshot& snap, const Config& next, bool load_data, bool start_training,
             Panel sender);
  void send_apply(const Config& next, bool config_changed, bool load_data, bool start_training);
  // Runs `action` now when nothing unsaved would be lost, else asks (ui.guard).
  void guard(const Snapshot& snap, UnsavedGuard action);
  void carry_out(const UnsavedGuard& action);

  Engine& m_engine;
  UiState& m_ui;
};

}  // namespace difflab
