#include "core/engine/engine.h"

#include <chrono>

#include "core/engine/worker.h"

namespace difflab {

Engine::Engine(Config config, EngineOptions options) {
  auto first = std::make_shared<Snapshot>();
  first->config = config;
  first->total_steps = config.train.steps;
  m_snapshot = std::move(first);
  WorkerLink link;
  link.publish = [this](std::shared_ptr<Snapshot> s) { publish(std::move(s)); };
  link.cancel = &m_cancel;
  link.shutdown = &m_shutdown;
  link.interrupted = [this] {
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    for (const Command& c : m_queue)
      if (std::holds_alternative<cmd::Pause>(c) || std::holds_alternative<cmd::Stop>(c) ||
          std::holds_alternative<cmd::Cancel>(c))
        return true;
    return m_shutdown.load();
  };
  m_worker = std::make_unique<Worker>(std::move(config), options, std::move(link));
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
  w.start();
  w.publish();
  while (!m_shutdown) {
    Command command;
    bool have = false;
    {
      std::unique_lock<std::mutex> lock(m_queue_mutex);
      if (m_queue.empty() && !w.training() && !w.controlnet_training())
        m_queue_cv.wait_for(lock, std::chrono::milliseconds(50),
                            [&] { return !m_queue.empty() || m_shutdown.load(); });
      if (!m_queue.empty()) {
        command = std::move(m_queue.front());
        m_queue.pop_front();
        m_busy = have = true;
        // A Cancel sent from now on is for this run: clear older ones under the lock.
        if (std::holds_alternative<cmd::Sample>(command) || std::holds_alternative<cmd::Evaluate>(command))
          m_cancel = false;
      }
    }
    if (m_shutdown) break;
    if (have) {
      w.handle(command);
      w.publish();
      {
        std::lock_guard<std::mutex> lock(m_queue_mutex);
        m_busy = false;
      }
      m_queue_cv.notify_all();
      continue;  // drain every command before the next training step
    }
    if (w.training()) w.train_tick();
    else if (w.controlnet_training()) w.controlnet_tick();
  }
}

}  // namespace difflab
