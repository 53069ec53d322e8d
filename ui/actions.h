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

class Actions {
 public:
  Actions(Engine& engine, UiState& ui) : m_engine(engine), m_ui(ui) {}

  // Dataset panel "Load": applies the edited config, then loads its data.
  void load_dataset(const Snapshot& snap);
  // Model panel "Apply": applies the edited config (asks first if it discards the model).
  void apply_config(const Snapshot& snap);
  // Training panel.
  void train(const Snapshot& snap);  // applies pending edits, then starts or continues
  void pause();
  void resume();
  void stop();
  void reset_model();
  void save_checkpoint();
  void load_checkpoint();
  void set_preview_every(int64_t steps);
  // Sampling panel.
  void generate();
  // Samples `n` images with the panel's settings and scores them (accuracy, Fréchet distance).
  void evaluate(int n);
  void cancel_sampling();
  // ControlNet panel: load a train-controlnet checkpoint (and the base it names); generate
  // with a hint of kHintChannels planes (canny, scribble) at the model's resolution.
  void load_controlnet(const std::string& path, const std::string& base_override);
  void generate_controlnet(std::vector<float> hint);
  // The scrubber (slider, buttons, play) and the script move it through here: positions
  // 0 .. F−1 are the recorded frames of snapshot.samples, F the final images.
  void set_frame(const Snapshot& snap, int frame);
  // Main menu.
  bool open_config(const Snapshot& snap, const std::string& path, std::string* error);
  bool save_config(const std::string& path, std::string* error);
  // The answer of the "discard the trained model?" dialog.
  void answer_pending(bool accept);

 private:
  // Sends SetConfig (+ LoadData, + StartTraining), or parks it in ui.pending when the
  // change would discard a trained model.
  void apply(const Snapshot& snap, const Config& next, bool load_data, bool start_training,
             const std::string& reason);
  void send_apply(const Config& next, bool config_changed, bool load_data, bool start_training);

  Engine& m_engine;
  UiState& m_ui;
};

}  // namespace difflab
