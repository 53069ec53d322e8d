#include "app/gui/automation.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/sampling/sampler_registry.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

// The scripts sample with DDIM, or with the objective's own sampler where DDIM does not
// apply (EDM: heun, flow matching: euler).
SamplerKind smoke_sampler(Objective objective) {
  return sampler_applies(SamplerKind::Ddim, objective) ? SamplerKind::Ddim : default_sampler(objective);
}

// Smoke script: training stops once this step is reached, and the step budget it sets.
constexpr int64_t kSmokeMinStep = 5;
constexpr int64_t kSmokeMaxSteps = 20;
// Smoke script sampling: DDIM, 10 steps, 16 images.
constexpr int kSmokeSampleSteps = 10;
constexpr int kSmokeSampleCount = 16;
// Frames drawn after the scrubber moved, before the screenshot (textures, layout).
constexpr int kSettleFrames = 5;
// Demo script sampling: DDIM, 50 steps, 40 images (4 per class).
constexpr int kDemoSampleSteps = 50;
constexpr int kDemoSampleCount = 40;
// Benchmark: the step budget is raised so training outlasts the measurement.
constexpr int64_t kBenchSteps = 1000000;

float percentile(std::vector<float> v, double p) {
  if (v.empty()) return 0.0f;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

Automation::Automation(const AppOptions& options, Engine& engine, UiState& ui, Actions& actions)
    : m_options(options), m_engine(engine), m_ui(ui), m_actions(actions) {
  if (options.script == "smoke") m_mode = Mode::Smoke;
  else if (options.script == "demo") {
    m_mode = Mode::Demo;
    m_step = Step::LoadCheckpoint;
  }
  else if (options.bench_frames > 0) m_mode = Mode::Bench;
  else if (options.frames > 0) m_mode = Mode::Frames;
}

void Automation::say(const std::string& line) const {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

AutomationResult Automation::fail(const std::string& why) {
  std::fprintf(stderr, "difflab: %s\n", why.c_str());
  say("[" + std::string(m_mode == Mode::Bench ? "bench" : m_mode == Mode::Smoke ? "smoke" : "difflab") +
      "] FAILED: " + why);
  m_step = Step::Done;
  return {true, 1, false};
}

AutomationResult Automation::finish() {
  m_step = Step::Done;
  return {true, 0, !m_options.screenshot.empty()};
}

void Automation::report_status(const Snapshot& snap) {
  if (!m_options.print_layout && m_mode == Mode::None && !m_options.automated()) return;
  const int flags = (snap.data_ready ? 1 : 0) | (snap.model_ready ? 2 : 0);
  const bool status_changed = snap.status != m_last_status || flags != m_last_flags;
  const bool step_changed = snap.step != m_last_step_printed && snap.status == JobStatus::Training;
  if (!status_changed && !step_changed) return;
  m_last_status = snap.status;
  m_last_flags = flags;
  m_last_step_printed = snap.step;
  char line[256];
  std::snprintf(line, sizeof line, "status %s step %lld data_ready=%d model_ready=%d",
                job_status_name(snap.status), static_cast<long long>(snap.step), snap.data_ready ? 1 : 0,
                snap.model_ready ? 1 : 0);
  say(line);
}

void Automation::report_jobs(const Snapshot& snap) {
  if (!m_options.print_layout) return;
  for (size_t k = 0; k < kJobKindCount; ++k) {
    const JobResult& job = snap.jobs[k];
    if (job.serial == m_job_serials[k]) continue;
    m_job_serials[k] = job.serial;
    if (job.outcome == JobOutcome::None) continue;
    say(std::string("job ") + job_kind_name(static_cast<JobKind>(k)) + " " +
        job_outcome_name(job.outcome) + " path=" + job.path + " | " + job.message);
  }
  if (snap.run.dir != m_run_dir || snap.run.saved_step != m_run_saved_step) {
    m_run_dir = snap.run.dir;
    m_run_saved_step = snap.run.saved_step;
    say("run " + (m_run_dir.empty() ? std::string("-") : m_run_dir) + " saved_step " +
        std::to_string(m_run_saved_step) + " path=" + snap.run.saved_path);
  }
  // ControlNet training: when it starts or ends, every 50 steps, and at each curve point.
  const ControlNetTraining& cn = snap.controlnet_training;
  const int64_t bucket = cn.step / 50;
  if (cn.active != m_cn_active || (cn.active && bucket != m_cn_step_bucket) || cn.f1.size() != m_cn_points) {
    m_cn_active = cn.active;
    m_cn_step_bucket = bucket;
    m_cn_points = cn.f1.size();
    char line[400];
    std::snprintf(line, sizeof line, "controlnet %s step %lld/%lld f1_points %zu f1 %.3f f1_without %.3f dir=%s",
                  cn.active ? "training" : "stopped", static_cast<long long>(cn.step),
                  static_cast<long long>(cn.total_steps), cn.f1.size(), cn.f1.empty() ? -1.0 : cn.f1.back().value,
                  cn.f1_without, cn.dir.c_str());
    say(line);
  }
  if (snap.controlnets_found.size() != m_cn_found) {
    m_cn_found = snap.controlnets_found.size();
    for (const auto& f : snap.controlnets_found)
      say("controlnet found " + f.path + " fits=" + (f.fits ? "1" : "0") + " step " + std::to_string(f.step));
  }
}

AutomationResult Automation::update(const Snapshot& snap, double now, const FrameTimes& previous) {
  m_now = now;
  ++m_frames;
  report_status(snap);
  report_jobs(snap);
  if (m_step == Step::Done) return {};
  if (m_options.exit_when_step >= 0 && snap.step >= m_options.exit_when_step) {
    say("[exit-when-step] reached step " + std::to_string(snap.step));
    return finish();
  }
  if (m_options.exit_when_sampled) {
    // A run that finished after start-up: a new samples object, once idle again.
    if (!m_seen_busy) m_previous_samples = snap.samples.get();
    if (snap.status == JobStatus::Sampling) m_seen_busy = true;
    if (m_seen_busy && snap.status != JobStatus::Sampling && snap.samples &&
        snap.samples.get() != m_previous_samples) {
      if (m_settle_frames++ >= 3) {  // let the panels show the result
        say("[exit-when-sampled] sampled " + std::to_string(snap.samples->final_images.n) + " images" +
            (snap.samples->hint.empty() ? "" : " with the ControlNet"));
        return finish();
      }
    }
  }
  if (m_options.automated() && now > m_options.timeout_s)
    return fail("timed out after " + std::to_string(static_cast<int>(m_options.timeout_s)) +
                " s (status " + job_status_name(snap.status) + ", step " + std::to_string(snap.step) + ")");
  if (m_mode == Mode::Smoke) return smoke(snap);
  if (m_mode == Mode::Demo) return demo(snap);
  if (m_mode == Mode::Bench) return bench(snap, previous);
  if (m_options.frames > 0) {
    if (m_frames > 1) {  // the first frame reports no previous one
      m_frame_ms.push_back(previous.frame_ms);
      m_draw_ms.push_back(previous.draw_ms);
    }
    if (m_frames >= m_options.frames) {
      char line[200];
      std::snprintf(line, sizeof line, "[frames] %lld frames drawn; frame ms p50=%.2f p99=%.2f, gl draw ms p50=%.2f",
                    static_cast<long long>(m_frames), percentile(m_frame_ms, 0.5), percentile(m_frame_ms, 0.99),
                    percentile(m_draw_ms, 0.5));
      say(line);
      return finish();
    }
  }
  return {};
}

AutomationResult Automation::smoke(const Snapshot& snap) {
  if (snap.status == JobStatus::Error && m_step != Step::LoadData)
    return fail(snap.error.empty() ? "the worker reported an error" : snap.error);
  const bool idle_queue = m_engine.pending() == 0;
  auto next = [this](Step s) {
    m_step = s;
    m_step_started = m_now;
  };
  switch (m_step) {
    case Step::LoadData:
      say("[smoke] loading " + std::string(to_string(m_ui.edit.data.kind)) + " data");
      m_actions.load_dataset(snap);  // the Dataset panel's Load button
      next(Step::WaitData);
      break;
    case Step::WaitData:
      if (snap.data_ready && snap.status != JobStatus::LoadingData && idle_queue) {
        say("[smoke] data ready: " + snap.data_description);
        next(Step::Train);
      }
      break;
    case Step::Train:
      // The Training panel's "Steps" field, then its Train button.
      m_ui.edit.train.steps = std::min<int64_t>(m_ui.edit.train.steps, kSmokeMaxSteps);
      say("[smoke] training (" + std::to_string(m_ui.edit.train.steps) + " steps)");
      m_actions.train(snap);
      if (m_ui.guard.action != GuardedAction::None)
        return fail("training would discard a model with unsaved training: " + m_ui.guard.what);
      next(Step::WaitTraining);
      break;
    case Step::WaitTraining: {
      const bool finished = idle_queue && !training_active(snap) && snap.model_ready && snap.step > 0;
      if (snap.step >= kSmokeMinStep || finished) {
        char line[128];
        std::snprintf(line, sizeof line, "[smoke] step %lld, loss %.4f, %.1f images/s",
                      static_cast<long long>(snap.step), snap.loss.empty() ? 0.0 : snap.loss.back().value,
                      snap.images_per_s);
        say(line);
        next(Step::Stop);
      }
      break;
    }
    case Step::Stop:
      m_actions.stop();  // the Stop button
      next(Step::WaitStopped);
      break;
    case Step::WaitStopped:
      if (idle_queue && !training_active(snap) && snap.status != JobStatus::Sampling) {
        say("[smoke] stopped at step " + std::to_string(snap.step));
        next(Step::Sample);
      }
      break;
    case Step::Sample:
      // The Sampling panel's fields, then Generate.
      m_ui.edit.sample.sampler = smoke_sampler(m_ui.edit.diffusion.objective);
      m_ui.edit.sample.steps = m_mode == Mode::Demo ? kDemoSampleSteps : kSmokeSampleSteps;
      m_ui.edit.sample.n = m_mode == Mode::Demo ? kDemoSampleCount : kSmokeSampleCount;
      m_previous_samples = snap.samples.get();
      say("[smoke] sampling: " + std::string(to_string(m_ui.edit.sample.sampler)) + ", " +
          std::to_string(m_ui.edit.sample.steps) + " steps, " +
          std::to_string(m_ui.edit.sample.n) + " images");
      m_actions.generate();
      next(Step::WaitSamples);
      break;
    case Step::WaitSamples:
      if (snap.samples && snap.samples.get() != m_previous_samples &&
          snap.status != JobStatus::Sampling && idle_queue) {
        char line[128];
        std::snprintf(line, sizeof line, "[smoke] samples ready: %zu frames, %d images, %.2f s",
                      snap.samples->x_t.size(), snap.samples->final_images.n, snap.samples->seconds);
        say(line);
        next(Step::Scrub);
      }
      break;
    case Step::Scrub: {
      const int frames = static_cast<int>(snap.samples->x_t.size());
      // The scrubber's timeline slider: the middle frame (smoke) or, for the demo, 60 % of
      // the way for images (x_t, x̂₀ and ε̂ all still tell something) and the end for 2-D
      // points (the particles have reached the data; their trails show the way there).
      const int demo_frame = snap.points ? frames : frames * 3 / 5;
      m_actions.set_frame(snap, m_mode == Mode::Demo ? demo_frame : frames / 2);
      const int frame = m_ui.sampling.frame;
      const int t = frame < static_cast<int>(snap.samples->timesteps.size()) ? snap.samples->timesteps[frame] : -1;
      say("[smoke] scrubber at frame " + std::to_string(frame) + " of " + std::to_string(frames) +
          " (t = " + std::to_string(t) + ")");
      if (m_mode == Mode::Smoke && !m_options.screenshot.empty()) {
        // The scrubber's Export GIF button, next to the screenshot.
        m_ui.sampling.export_gif = m_options.screenshot + ".trajectory.gif";
        m_ui.sampling.gif_requested = true;
      }
      m_settle_frames = kSettleFrames;
      next(Step::Settle);
      break;
    }
    case Step::Settle:
      if (--m_settle_frames <= 0) {
        if (!m_ui.sampling.status.empty()) say("[smoke] scrubber: " + m_ui.sampling.status);
        say("[smoke] ok");
        return finish();
      }
      break;
    default: break;
  }
  return {};
}

AutomationResult Automation::demo(const Snapshot& snap) {
  switch (m_step) {
    case Step::LoadCheckpoint:
      if (m_options.checkpoint.empty()) return fail("--script demo needs --checkpoint PATH");
      m_ui.training.checkpoint_path = m_options.checkpoint;  // the Training panel's path field
      say("[demo] loading " + m_options.checkpoint);
      m_actions.load_checkpoint(snap);  // its Load button
      m_step = Step::WaitCheckpoint;
      return {};
    case Step::WaitCheckpoint:
      if (m_engine.pending() == 0 && snap.model_ready && snap.status == JobStatus::Idle) {
        if (!snap.error.empty()) return fail(snap.error);
        say("[demo] model at step " + std::to_string(snap.step));
        m_step = m_options.evaluate > 0 ? Step::Evaluate : Step::Sample;
      } else if (m_engine.pending() == 0 && !snap.error.empty()) {
        return fail(snap.error);
      }
      return {};
    case Step::Evaluate:
      // The Sampling panel's settings as for Generate, its N field, then Evaluate.
      m_ui.edit.sample.sampler = smoke_sampler(m_ui.edit.diffusion.objective);
      m_ui.edit.sample.steps = kDemoSampleSteps;
      m_ui.sampling.eval_n = static_cast<int>(m_options.evaluate);
      m_evaluations_before = snap.evaluations.size();
      say("[demo] evaluating " + std::to_string(m_options.evaluate) + " samples");
      m_actions.evaluate(m_ui.sampling.eval_n);
      m_step = Step::WaitEvaluate;
      return {};
    case Step::WaitEvaluate:
      if (snap.evaluations.size() > m_evaluations_before && snap.status == JobStatus::Idle &&
          m_engine.pending() == 0) {
        const EvalRecord& r = snap.evaluations.back();
        char line[160];
        std::snprintf(line, sizeof line, "[demo] evaluated %lld samples: accuracy %.1f %%, FD %.2f, floor %.2f",
                      static_cast<long long>(r.n), 100.0 * r.accuracy, r.fd, r.fd_floor);
        say(line);
        m_step = Step::Sample;
      } else if (m_engine.pending() == 0 && snap.status != JobStatus::Sampling && !snap.error.empty()) {
        return fail(snap.error);
      }
      return {};
    default:
      return smoke(snap);  // Sample, WaitSamples, Scrub, Settle are shared
  }
}

void Automation::report_bench_phase(const Snapshot& snap) {
  const char* phase = m_bench_interacting ? "interacting" : "paced";
  const double seconds = m_now - m_bench_started;
  const double mean = std::accumulate(m_frame_ms.begin(), m_frame_ms.end(), 0.0) / m_frame_ms.size();
  std::vector<double> ips = m_images_per_s;
  std::sort(ips.begin(), ips.end());
  const double ips_median = ips.empty() ? 0.0 : ips[ips.size() / 2];
  const int64_t steps = snap.step - m_bench_first_step;
  char line[320];
  std::snprintf(line, sizeof line,
                "[bench] %s: gui frames=%zu frame_ms p50=%.2f p99=%.2f max=%.2f mean=%.2f (%.1f fps over %.1f s)",
                phase, m_frame_ms.size(), percentile(m_frame_ms, 0.5), percentile(m_frame_ms, 0.99),
                percentile(m_frame_ms, 1.0), mean, m_frame_ms.size() / std::max(seconds, 1e-9), seconds);
  say(line);
  std::snprintf(line, sizeof line, "[bench] %s: ui build (NewFrame..Render) ms p50=%.2f p99=%.2f max=%.2f", phase,
                percentile(m_ui_ms, 0.5), percentile(m_ui_ms, 0.99), percentile(m_ui_ms, 1.0));
  say(line);
  std::snprintf(line, sizeof line, "[bench] %s: gl draw ms p50=%.2f p99=%.2f max=%.2f", phase,
                percentile(m_draw_ms, 0.5), percentile(m_draw_ms, 0.99), percentile(m_draw_ms, 1.0));
  say(line);
  std::snprintf(line, sizeof line,
                "[bench] %s: training images_per_s median=%.1f (from %zu snapshots), steps %lld -> %lld "
                "(%.2f steps/s = %.1f images/s, batch %d)",
                phase, ips_median, ips.size(), static_cast<long long>(m_bench_first_step),
                static_cast<long long>(snap.step), steps / std::max(seconds, 1e-9),
                steps * snap.config.train.batch_size / std::max(seconds, 1e-9), snap.config.train.batch_size);
  say(line);
  m_frame_ms.clear();
  m_ui_ms.clear();
  m_draw_ms.clear();
  m_images_per_s.clear();
}

AutomationResult Automation::bench(const Snapshot& snap, const FrameTimes& previous) {
  if (snap.status == JobStatus::Error) return fail(snap.error.empty() ? "worker error" : snap.error);
  const bool idle_queue = m_engine.pending() == 0;
  switch (m_step) {
    case Step::LoadData:
      if (!snap.data_ready) m_actions.load_dataset(snap);
      say("[bench] loading data");
      m_step = Step::WaitData;
      break;
    case Step::WaitData:
      if (snap.data_ready && snap.status != JobStatus::LoadingData && idle_queue) m_step = Step::Train;
      break;
    case Step::Train:
      m_ui.edit.train.steps = std::max<int64_t>(m_ui.edit.train.steps, kBenchSteps);
      say("[bench] training " + snap.data_description);
      m_actions.train(snap);
      m_step = Step::WaitTraining;
      break;
    case Step::WaitTraining:
      if (snap.status == JobStatus::Training && snap.step >= 2) {
        say("[bench] measuring " + std::to_string(m_options.bench_frames) + " frames");
        m_bench_first_step = snap.step;
        m_bench_started = m_now;
        m_last_version = snap.version;
        m_step = Step::Measure;
      }
      break;
    case Step::Measure: {
      m_frame_ms.push_back(previous.frame_ms);
      m_ui_ms.push_back(previous.ui_ms);
      m_draw_ms.push_back(previous.draw_ms);
      if (snap.version != m_last_version) {
        m_last_version = snap.version;
        if (snap.images_per_s > 0.0) m_images_per_s.push_back(snap.images_per_s);
      }
      if (static_cast<int64_t>(m_frame_ms.size()) < m_options.bench_frames) break;
      report_bench_phase(snap);
      if (!m_bench_interacting) {
        // Second phase: redraw continuously, as while the user drags a slider.
        m_bench_interacting = true;
        m_bench_first_step = snap.step;
        m_bench_started = m_now;
        break;
      }
      m_actions.stop();
      return finish();
    }
    default: break;
  }
  return {};
}

}  // namespace difflab
