#include "core/engine/engine.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "core/data/dataset.h"
#include "core/eval/evaluator.h"
#include "core/eval/noisy_classifier.h"
#include "core/train/controlnet_trainer.h"
#include "core/train/trainer.h"
#include "core/util/runtime.h"

namespace difflab {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// (N, ...) tensor → FloatImages (points become c = 2, h = w = 1).
FloatImages to_float_images(const at::Tensor& t) {
  FloatImages out;
  if (!t.defined() || t.numel() == 0) return out;
  auto f = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  out.n = static_cast<int>(f.size(0));
  out.c = f.dim() > 1 ? static_cast<int>(f.size(1)) : 1;
  out.h = f.dim() > 2 ? static_cast<int>(f.size(2)) : 1;
  out.w = f.dim() > 3 ? static_cast<int>(f.size(3)) : 1;
  out.data.assign(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  return out;
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// What the snapshot says about a loaded ControlNet.
ControlNetStatus controlnet_status(const LoadedControlNet& cn) {
  ControlNetStatus status;
  status.ready = true;
  status.path = cn.path;
  status.base_path = cn.base_path;
  status.step = cn.step;
  status.base_step = cn.base_info.step;
  status.config = cn.config.controlnet;
  status.height = cn.base_info.shape.height;
  status.width = cn.base_info.shape.width;
  status.channels = cn.base_info.shape.channels;
  status.num_classes = cn.base->num_classes();
  return status;
}

}  // namespace

// Everything the worker thread owns. Only the worker touches it.
struct Engine::Worker {
  Config config;
  EngineOptions options;
  c10::Device device = torch::kCPU;
  std::shared_ptr<DatasetSplits> data;
  std::unique_ptr<Trainer> trainer;
  JobStatus status = JobStatus::Idle;
  std::string message, error;
  std::vector<std::string> log;

  // Training statistics.
  std::vector<LossPoint> loss, test_loss;
  int64_t loss_stride = 1;  // keep every loss_stride-th step once the history is full
  double images_per_s = 0, lr = 0, grad_norm = 0;
  Clock::time_point rate_start = Clock::now();
  int64_t rate_steps = 0;
  int64_t preview_every = 200;
  FloatImages preview;
  std::vector<int64_t> preview_labels;
  int64_t preview_step = -1;

  // Sampling.
  int sample_step = 0, sample_total = 0;
  std::shared_ptr<const TrajectoryFrames> samples;
  std::vector<EvalRecord> evaluations;
  std::unique_ptr<Evaluator> evaluator;  // loaded or trained on the first Evaluate
  std::unique_ptr<LoadedControlNet> controlnet;  // cmd::LoadControlNet

  // Dataset summary (computed once per load).
  FloatImages data_preview;
  std::vector<int64_t> data_preview_labels, class_counts;

  void say(const std::string& line) {
    message = line;
    log.push_back(line);
    if (log.size() > kMaxLogLines) log.erase(log.begin(), log.begin() + (log.size() - kMaxLogLines));
  }
  void fail(const std::string& what) {
    error = what;
    say("error: " + what);
  }
};

Engine::Engine(Config config, EngineOptions options) : m_worker(std::make_unique<Worker>()) {
  m_worker->config = std::move(config);
  m_worker->options = options;
  auto first = std::make_shared<Snapshot>();
  first->config = m_worker->config;
  first->total_steps = m_worker->config.train.steps;
  m_snapshot = std::move(first);
  m_thread = std::thread([this] { run(); });
}

Engine::~Engine() {
  m_shutdown = true;
  m_cancel = true;
  m_queue_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

void Engine::send(Command command) {
  std::lock_guard<std::mutex> lock(m_queue_mutex);
  if (std::holds_alternative<cmd::Cancel>(command)) {
    m_cancel = true;
    // A sampling run that has not started yet is dropped too.
    for (auto it = m_queue.begin(); it != m_queue.end();)
      it = std::holds_alternative<cmd::Sample>(*it) ? m_queue.erase(it) : it + 1;
  }
  m_queue.push_back(std::move(command));
  m_queue_cv.notify_all();
}

std::shared_ptr<const Snapshot> Engine::snapshot() const {
  std::lock_guard<std::mutex> lock(m_snapshot_mutex);
  return m_snapshot;
}

std::shared_ptr<const Snapshot> Engine::wait_for_update(uint64_t version, double timeout_s) const {
  std::unique_lock<std::mutex> lock(m_snapshot_mutex);
  m_snapshot_cv.wait_for(lock, std::chrono::duration<double>(timeout_s),
                         [&] { return m_snapshot->version > version; });
  return m_snapshot;
}

size_t Engine::pending() const {
  std::lock_guard<std::mutex> lock(m_queue_mutex);
  return m_queue.size();
}

bool Engine::wait_idle(double timeout_s) const {
  std::unique_lock<std::mutex> lock(m_queue_mutex);
  return m_queue_cv.wait_for(lock, std::chrono::duration<double>(timeout_s),
                             [&] { return m_queue.empty() && !m_busy; });
}

void Engine::publish(std::shared_ptr<Snapshot> s) {
  std::lock_guard<std::mutex> lock(m_snapshot_mutex);
  s->version = m_snapshot->version + 1;
  m_snapshot = std::move(s);
  m_snapshot_cv.notify_all();
}

void Engine::run() {
  Worker& w = *m_worker;
  auto make_snapshot = [&] {
    auto s = std::make_shared<Snapshot>();
    s->status = w.status;
    s->message = w.message;
    s->error = w.error;
    s->config = w.config;
    s->model_ready = w.trainer != nullptr;
    s->parameters = w.trainer ? w.trainer->parameter_count() : 0;
    s->data_ready = w.data != nullptr;
    if (w.data) {
      s->data_description = w.data->description;
      s->class_names = w.data->class_names;
      s->class_counts = w.class_counts;
      s->points = w.data->shape.points;
      s->data_preview = w.data_preview;
      s->data_preview_labels = w.data_preview_labels;
    }
    if (w.trainer) {
      s->step = w.trainer->step();
      s->epoch = w.trainer->epoch();
      s->loss_by_t = w.trainer->loss_by_timestep(10);
    }
    s->total_steps = w.config.train.steps;
    s->images_per_s = w.images_per_s;
    s->lr = w.lr;
    s->grad_norm = w.grad_norm;
    s->eta_s = w.images_per_s > 0 ? (s->total_steps - s->step) * w.config.train.batch_size / w.images_per_s
                                  : 0.0;
    s->loss = w.loss;
    s->test_loss = w.test_loss;
    s->preview = w.preview;
    s->preview_labels = w.preview_labels;
    s->preview_step = w.preview_step;
    s->sample_step = w.sample_step;
    s->sample_total = w.sample_total;
    s->samples = w.samples;
    s->evaluations = w.evaluations;
    if (w.controlnet) s->controlnet = controlnet_status(*w.controlnet);
    s->log = w.log;
    return s;
  };

  try {
    // Before any LibTorch call, so the OpenMP pool this thread creates inherits it.
    if (!lower_thread_priority(w.options.nice)) w.say("could not lower the worker's priority");
    const int threads = configure_threads(w.options.threads, w.options.reserve_cores);
    w.device = choose_device(w.options.device);
    w.say("worker ready: " + runtime_summary(w.device) + " (" + std::to_string(threads) +
          " threads)");
  } catch (const std::exception& e) {
    w.fail(e.what());
  }
  publish(make_snapshot());

  // Reads a dataset without touching the worker's state (so a failure changes nothing).
  auto read_data = [&](const DataConfig& config) {
    const JobStatus before = w.status;
    w.status = JobStatus::LoadingData;
    w.say("loading " + std::string(to_string(config.kind)) + " ...");
    publish(make_snapshot());
    try {
      auto data = std::make_shared<DatasetSplits>(load_dataset(config));
      w.status = before == JobStatus::LoadingData ? JobStatus::Idle : before;
      return data;
    } catch (...) {
      w.status = before == JobStatus::LoadingData ? JobStatus::Idle : before;
      throw;
    }
  };
  // Makes `data` the worker's dataset: summary, preview, and drops a model trained on
  // other data.
  auto adopt_data = [&](std::shared_ptr<DatasetSplits> data) {
    w.class_counts = to_vector(torch::bincount(data->train.labels));
    std::vector<int64_t> idx;
    if (data->shape.points) {
      for (int64_t i = 0; i < std::min<int64_t>(4000, data->train.size()); ++i) idx.push_back(i);
    } else {
      // Up to 8 examples of each class, laid out class by class.
      const int classes = std::max(1, static_cast<int>(w.class_counts.size()));
      auto labels = data->train.labels;
      for (int k = 0; k < classes; ++k) {
        auto where = (labels == k).nonzero().flatten();
        for (int64_t j = 0; j < std::min<int64_t>(8, where.size(0)); ++j)
          idx.push_back(where[j].item<int64_t>());
      }
    }
    auto index = torch::tensor(idx, torch::kLong);
    w.data_preview = to_float_images(gather_batch(data->train, index));
    w.data_preview_labels = to_vector(data->train.labels.index_select(0, index));
    if (w.trainer && !(same_data(w.trainer->config().data, w.config.data))) {
      w.trainer.reset();
      w.say("the dataset changed: the model was discarded");
    }
    w.data = std::move(data);
    w.error.clear();
    w.say(w.data->description);
  };
  auto load_data = [&] { adopt_data(read_data(w.config.data)); };

  auto write_preview = [&] {
    SampleConfig sc = w.config.sample;
    const int classes = w.trainer->model()->num_classes();
    sc.sampler = SamplerKind::Ddim;
    sc.steps = std::min(sc.steps, 20);
    sc.eta = 0.0;
    sc.class_label = -1;
    sc.n = w.data->shape.points ? 1000 : (classes > 0 ? classes * 2 : 16);
    auto r = w.trainer->sample(sc, false, [&](const StepInfo&) { return !m_shutdown.load(); });
    if (r.cancelled) return;
    w.preview = to_float_images(r.images);
    w.preview_labels = to_vector(r.labels);
    w.preview_step = w.trainer->step();
  };

  auto handle = [&](Command& command) {
    std::visit(
        [&](auto& c) {
          using T = std::decay_t<decltype(c)>;
          if constexpr (std::is_same_v<T, cmd::SetConfig>) {
            validate(c.config, "the edited config");
            const bool model_changes = !same_model(w.config, c.config);
            const bool data_changes = !same_data(w.config.data, c.config.data);
            w.config = c.config;
            if (w.trainer && (model_changes || data_changes)) {
              w.trainer.reset();
              w.status = JobStatus::Idle;
              w.say("config applied: the model was discarded (new architecture or data)");
            } else if (w.trainer) {
              w.trainer->set_train_config(w.config.train);
              w.say("config applied to the current run");
            } else {
              w.say("config applied");
            }
            if (data_changes) w.data.reset();
            w.error.clear();
          } else if constexpr (std::is_same_v<T, cmd::LoadData>) {
            load_data();
          } else if constexpr (std::is_same_v<T, cmd::StartTraining>) {
            if (!w.data) load_data();
            if (!w.trainer) {
              w.trainer = std::make_unique<Trainer>(w.config, w.data, w.device);
              w.config = w.trainer->config();  // num_classes taken from the data
              w.loss.clear();
              w.test_loss.clear();
              w.loss_stride = 1;
              w.preview = FloatImages{};
              w.preview_step = -1;
              w.say("new model: " + std::to_string(w.trainer->parameter_count()) + " parameters");
            }
            if (w.trainer->step() >= w.config.train.steps) {
              w.fail("already at step " + std::to_string(w.trainer->step()) +
                     " of train.steps = " + std::to_string(w.config.train.steps) +
                     ": raise the step count to train further");
              return;
            }
            w.status = JobStatus::Training;
            w.error.clear();
            w.rate_start = Clock::now();
            w.rate_steps = 0;
            w.say("training from step " + std::to_string(w.trainer->step()));
          } else if constexpr (std::is_same_v<T, cmd::Pause>) {
            if (w.status == JobStatus::Training) {
              w.status = JobStatus::Paused;
              w.say("paused at step " + std::to_string(w.trainer->step()));
            }
          } else if constexpr (std::is_same_v<T, cmd::Resume>) {
            if (w.status == JobStatus::Paused) {
              w.status = JobStatus::Training;
              w.rate_start = Clock::now();
              w.rate_steps = 0;
              w.say("resumed");
            }
          } else if constexpr (std::is_same_v<T, cmd::Stop>) {
            if (w.status == JobStatus::Training || w.status == JobStatus::Paused) {
              w.status = JobStatus::Idle;
              w.say("stopped at step " + std::to_string(w.trainer->step()));
            }
          } else if constexpr (std::is_same_v<T, cmd::ResetModel>) {
            w.trainer.reset();
            w.status = JobStatus::Idle;
            w.loss.clear();
            w.test_loss.clear();
            w.say("model discarded");
          } else if constexpr (std::is_same_v<T, cmd::SetPreviewEvery>) {
            w.preview_every = c.steps;
          } else if constexpr (std::is_same_v<T, cmd::SaveCheckpoint>) {
            if (!w.trainer) throw std::runtime_error("no model to save: train or load one first");
            w.trainer->save_checkpoint(c.path);
            w.say("saved " + c.path + " (step " + std::to_string(w.trainer->step()) + ")");
          } else if constexpr (std::is_same_v<T, cmd::LoadCheckpoint>) {
            // Everything is read and checked before anything the user has is replaced.
            const CheckpointInfo info = read_checkpoint_info(c.path);
            Config config = info.config;
            config.train.out_dir = w.config.train.out_dir;
            const bool new_data = !w.data || !same_data(w.config.data, config.data);
            auto data = new_data ? read_data(config.data) : w.data;
            auto trainer = std::make_unique<Trainer>(config, data, w.device);
            trainer->load_checkpoint(c.path);
            w.trainer.reset();
            w.config = trainer->config();
            if (new_data) adopt_data(data);
            w.trainer = std::move(trainer);
            w.loss.clear();
            w.test_loss.clear();
            w.status = JobStatus::Idle;
            w.error.clear();
            w.say("loaded " + c.path + " at step " + std::to_string(w.trainer->step()));
          } else if constexpr (std::is_same_v<T, cmd::LoadControlNet>) {
            // Loaded and checked completely before the one held is replaced.
            w.controlnet = std::make_unique<LoadedControlNet>(
                load_controlnet(c.path, w.device, c.base_override));
            const auto& cn = *w.controlnet;
            w.say("ControlNet " + c.path + " (step " + std::to_string(cn.step) + ", hints " +
                  std::string(to_string(cn.config.controlnet.hint)) + ") on base " + cn.base_path);
          } else if constexpr (std::is_same_v<T, cmd::Sample>) {
            if (c.controlnet && !w.controlnet)
              throw std::runtime_error("no ControlNet loaded: load a train-controlnet checkpoint first");
            if (!c.controlnet && !w.trainer)
              throw std::runtime_error("no model to sample from: train or load one first");
            at::Tensor hint;
            if (c.controlnet) {
              const auto& st = w.controlnet->base_info.shape;
              const size_t expected = static_cast<size_t>(kHintChannels) * st.height * st.width;
              if (c.hint.size() != expected)
                throw std::runtime_error("ControlNet hint has " + std::to_string(c.hint.size()) +
                                         " values, the model needs " + std::to_string(expected));
              hint = torch::tensor(c.hint).view({1, kHintChannels, st.height, st.width});
            }
            const JobStatus before = w.status;  // training resumes after sampling
            w.status = JobStatus::Sampling;
            w.sample_step = 0;
            w.sample_total = c.config.steps;
            w.say("sampling " + std::to_string(c.config.n) + " with " +
                  std::string(to_string(c.config.sampler)) + ", " + std::to_string(c.config.steps) +
                  " steps");
            publish(make_snapshot());
            auto last_publish = Clock::now();
            const auto start = Clock::now();
            SampleResult result;
            auto progress = [&](const StepInfo& s) {
              w.sample_step = s.index + 1;
              if (seconds_since(last_publish) > w.options.publish_interval_s) {
                publish(make_snapshot());
                last_publish = Clock::now();
              }
              return !m_cancel.load() && !m_shutdown.load();
            };
            try {
              if (c.controlnet) {
                const SamplingModel model = sampling_model(*w.controlnet);
                const auto& cn = *w.controlnet;
                SampleRequest request;
                request.config = c.config;
                request.record_trajectory = true;
                request.control = {cn.net, hint.to(w.device), c.control_scale};
                request.classifier = load_classifier_guidance(c.config, model, w.device);
                result = run_sampling(model, request, w.device, progress);
              } else {
                result = w.trainer->sample(c.config, true, progress);
              }
            } catch (...) {
              w.status = before;  // a failed request must not stop a training run
              throw;
            }
            w.status = before == JobStatus::Sampling ? JobStatus::Idle : before;
            if (result.cancelled) {
              w.say("sampling cancelled at step " + std::to_string(w.sample_step));
              return;
            }
            auto frames = std::make_shared<TrajectoryFrames>();
            frames->config = c.config;
            frames->seconds = seconds_since(start);
            frames->final_images = to_float_images(result.images);
            frames->labels = to_vector(result.labels);
            if (c.controlnet) {
              frames->hint = to_float_images(hint);
              frames->control_scale = c.control_scale;
            }
            const auto& tr = result.trajectory;
            const int total = static_cast<int>(tr.x_t.size());
            const int keep = std::min(total, std::max(2, c.max_frames));
            for (int k = 0; k < keep; ++k) {
              const int i = keep == 1 ? 0 : static_cast<int>(std::lround(k * (total - 1.0) / (keep - 1)));
              frames->timesteps.push_back(tr.timesteps[i]);
              frames->x_t.push_back(to_float_images(tr.x_t[i]));
              frames->x0.push_back(to_float_images(tr.x0[i]));
              frames->eps.push_back(to_float_images(tr.eps[i]));
            }
            w.samples = std::move(frames);
            char line[128];
            std::snprintf(line, sizeof line, "sampled %d %s%s in %.1f s", c.config.n,
                          !c.controlnet && w.data && w.data->shape.points ? "points" : "images",
                          c.controlnet ? " with the ControlNet" : "", w.samples->seconds);
            w.say(line);
          } else if constexpr (std::is_same_v<T, cmd::Evaluate>) {
            if (!w.trainer) throw std::runtime_error("no model to evaluate: train or load one first");
            if (w.data->shape.points)
              throw std::runtime_error("the evaluator scores images; 2-D points have none to score");
            const JobStatus before = w.status;
            w.status = JobStatus::Sampling;
            try {
              if (!w.evaluator || w.evaluator->info().dataset_key != dataset_key(*w.data)) {
                const std::string cache = evaluator_cache_path(w.config.train.out_dir);
                w.say("evaluator classifier: " + cache + " (trained on the first use, about 30 s)");
                publish(make_snapshot());
                w.evaluator = std::make_unique<Evaluator>(load_or_train_evaluator(
                    cache, *w.data, EvaluatorOptions{}, w.device, [&](const std::string& line) {
                      w.say(line);
                      publish(make_snapshot());
                    }));
              }
              w.sample_step = 0;
              w.sample_total = c.config.steps;
              w.say("evaluating " + std::to_string(c.config.n) + " samples of " +
                    std::string(to_string(c.config.sampler)) + ", " + std::to_string(c.config.steps) + " steps");
              publish(make_snapshot());
              auto last_publish = Clock::now();
              const auto start = Clock::now();
              SampleResult result = w.trainer->sample(c.config, false, [&](const StepInfo& s) {
                w.sample_step = s.index + 1;
                if (seconds_since(last_publish) > w.options.publish_interval_s) {
                  publish(make_snapshot());
                  last_publish = Clock::now();
                }
                return !m_cancel.load() && !m_shutdown.load();
              });
              if (result.cancelled) {
                w.status = before == JobStatus::Sampling ? JobStatus::Idle : before;
                w.say("evaluation cancelled at step " + std::to_string(w.sample_step));
                return;
              }
              const EvalResult r = evaluate_samples(*w.evaluator, result.images, result.labels, *w.data, c.config.seed);
              EvalRecord record{w.trainer->step(), c.config, r.n, r.accuracy, r.fd, r.fd_floor, seconds_since(start)};
              w.evaluations.push_back(record);
              char line[200];
              std::snprintf(line, sizeof line, "evaluated %lld samples: accuracy %.1f %%, FD %.2f (floor %.2f)",
                            static_cast<long long>(r.n), 100.0 * r.accuracy, r.fd, r.fd_floor);
              w.say(line);
            } catch (...) {
              w.status = before == JobStatus::Sampling ? JobStatus::Idle : before;
              throw;
            }
            w.status = before == JobStatus::Sampling ? JobStatus::Idle : before;
          } else if constexpr (std::is_same_v<T, cmd::Cancel>) {
            m_cancel = false;  // nothing is sampling now: the flag has done its work
          }
        },
        command);
  };

  auto last_publish = Clock::now();
  while (!m_shutdown) {
    Command command;
    bool have = false;
    {
      std::unique_lock<std::mutex> lock(m_queue_mutex);
      if (m_queue.empty() && w.status != JobStatus::Training)
        m_queue_cv.wait_for(lock, std::chrono::milliseconds(50),
                            [&] { return !m_queue.empty() || m_shutdown.load(); });
      if (!m_queue.empty()) {
        command = std::move(m_queue.front());
        m_queue.pop_front();
        m_busy = have = true;
        // A Cancel sent from now on is for this run: clear older ones under the lock.
        if (std::holds_alternative<cmd::Sample>(command) || std::holds_alternative<cmd::Evaluate>(command)) m_cancel = false;
      }
    }
    if (m_shutdown) break;
    if (have) {
      try {
        handle(command);
      } catch (const std::exception& e) {
        if (w.status == JobStatus::LoadingData) w.status = JobStatus::Idle;
        w.fail(e.what());
      }
      publish(make_snapshot());
      last_publish = Clock::now();
      {
        std::lock_guard<std::mutex> lock(m_queue_mutex);
        m_busy = false;
      }
      m_queue_cv.notify_all();
      continue;  // drain every command before the next training step
    }
    if (w.status != JobStatus::Training) continue;

    try {
      const StepResult r = w.trainer->train_step();
      ++w.rate_steps;
      w.lr = r.lr;
      w.grad_norm = r.grad_norm;
      if (r.step % w.loss_stride == 0) w.loss.push_back({r.step, static_cast<float>(r.loss)});
      if (w.loss.size() >= kMaxLossPoints) {  // halve the resolution, keep the whole run
        std::vector<LossPoint> thin;
        for (size_t i = 0; i < w.loss.size(); i += 2) thin.push_back(w.loss[i]);
        w.loss = std::move(thin);
        w.loss_stride *= 2;
      }
      const double dt = seconds_since(w.rate_start);
      // Once a second, and at the end of a run (short toy runs can end within a second).
      if (dt > 1.0 || (r.step >= w.config.train.steps && dt > 0.0)) {
        w.images_per_s = w.rate_steps * w.config.train.batch_size / dt;
        w.rate_start = Clock::now();
        w.rate_steps = 0;
      }
      const auto& t = w.config.train;
      if (t.eval_every > 0 && r.step % t.eval_every == 0)
        w.test_loss.push_back({r.step, static_cast<float>(w.trainer->evaluate(t.eval_batches))});
      if (w.preview_every > 0 && r.step % w.preview_every == 0) write_preview();
      if (r.step >= t.steps) {
        w.status = JobStatus::Idle;
        w.say("training finished at step " + std::to_string(r.step));
      }
    } catch (const std::exception& e) {
      w.status = JobStatus::Error;
      w.fail(e.what());
    }
    if (w.status != JobStatus::Training || seconds_since(last_publish) > w.options.publish_interval_s) {
      publish(make_snapshot());
      last_publish = Clock::now();
    }
  }
}

}  // namespace difflab
