// Scripted runs of the GUI for tests and benchmarks. Each step calls the same Actions
// the buttons call (ui/actions.h) and edits the same UiState fields the panels edit, so
// a scripted run exercises the code paths of a click. Progress goes to stdout.
//
//   smoke:          load data, set a small step count, Train, wait for step ≥ 5 (or the
//                   end of training), Stop, Generate with DDIM 10 steps n = 16, wait,
//                   move the scrubber to the middle frame, Export GIF (next to the
//                   screenshot), settle, screenshot, exit 0.
//   bench:          load data, Train, wait until training runs, then time N frames drawn
//                   with the normal pacing (a redraw every --busy-redraw-ms while training),
//                   then N frames drawn back to back at up to 50 a second (as while the user
//                   drags a slider); for each phase report p50 / p99 / max frame time and
//                   the training images/s.
//   demo:           Load a checkpoint (--checkpoint PATH) through the Training panel's Load
//                   button, (with --evaluate N: the Evaluate button with N samples, wait
//                   for its row), Generate with DDIM 50 steps n = 40, move the scrubber to 60 %
//                   of the run, settle, screenshot, exit 0 (the README's pictures).
//   exit-when-step: exit 0 once the snapshot's step reaches N.
//   frames:         exit after N frames.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "app/gui/app_options.h"
#include "core/engine/engine.h"
#include "ui/actions.h"
#include "ui/ui_state.h"

namespace difflab {

// Wall times of one frame, in ms: all of it (UI + GL draw + swap), building the UI
// (NewFrame .. Render), and the GL draw (finished before the swap when benchmarking).
struct FrameTimes {
  float frame_ms = 0.0f, ui_ms = 0.0f, draw_ms = 0.0f;
};

struct AutomationResult {
  bool exit = false;
  int code = 0;
  bool screenshot = false;  // take the screenshot at the end of this frame, then exit
};

class Automation {
 public:
  Automation(const AppOptions& options, Engine& engine, UiState& ui, Actions& actions);

  // Called once per frame after the UI was built, with the times of the previous frame
  // and `now`, seconds since start.
  AutomationResult update(const Snapshot& snap, double now, const FrameTimes& previous);
  // True while a script or benchmark drives the app (no dataset auto-load at start).
  bool driving() const { return m_mode == Mode::Smoke || m_mode == Mode::Bench || m_mode == Mode::Demo; }
  // True when frames should come quickly (about 50/s) rather than on events: the smoke
  // script, --frames runs and the benchmark's second phase.
  bool fast_pacing() const {
    return m_mode == Mode::Smoke || m_mode == Mode::Frames || m_mode == Mode::Demo || m_bench_interacting;
  }

 private:
  enum class Mode { None, Smoke, Bench, Frames, Demo };
  enum class Step { LoadCheckpoint, WaitCheckpoint, Evaluate, WaitEvaluate, LoadData, WaitData, Train, WaitTraining, Stop, WaitStopped, Sample,
                    WaitSamples, Scrub, Settle, Measure, Done };

  AutomationResult fail(const std::string& why);
  AutomationResult finish();
  void say(const std::string& line) const;
  void report_status(const Snapshot& snap);
  // --print-layout: "job KIND OUTCOME path=P | message" for every new job outcome, and
  // "run DIR saved_step N path=P" when the model's run folder or newest checkpoint changes.
  void report_jobs(const Snapshot& snap);
  AutomationResult smoke(const Snapshot& snap);
  AutomationResult demo(const Snapshot& snap);
  AutomationResult bench(const Snapshot& snap, const FrameTimes& previous);
  void report_bench_phase(const Snapshot& snap);

  AppOptions m_options;
  Engine& m_engine;
  UiState& m_ui;
  Actions& m_actions;
  Mode m_mode = Mode::None;
  Step m_step = Step::LoadData;
  int64_t m_frames = 0;
  double m_now = 0.0, m_step_started = 0.0;
  uint64_t m_sent_version = 0;
  bool m_seen_busy = false;
  const void* m_previous_samples = nullptr;
  int m_settle_frames = 0;
  size_t m_evaluations_before = 0;
  JobStatus m_last_status = JobStatus::Count;
  int m_last_flags = -1;
  int64_t m_last_step_printed = -1;
  std::array<uint64_t, kJobKindCount> m_job_serials{};
  std::string m_run_dir;
  int64_t m_run_saved_step = -1;
  // The last "controlnet ..." line: its activity, step (in 50s) and curve points.
  bool m_cn_active = false;
  int64_t m_cn_step_bucket = -1;
  size_t m_cn_points = 0;
  size_t m_cn_found = 0;
  // Benchmark.
  std::vector<float> m_frame_ms, m_ui_ms, m_draw_ms;
  std::vector<double> m_images_per_s;
  uint64_t m_last_version = 0;
  int64_t m_bench_first_step = 0;
  double m_bench_started = 0.0;
  bool m_bench_interacting = false;  // second phase: frames drawn back to back
};

}  // namespace difflab
