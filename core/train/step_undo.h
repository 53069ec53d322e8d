// What a training step with a deferred loss read-back needs to be undone, shared by the
// Trainer and the ControlNetTrainer. With train.loss_read_every / controlnet.loss_read_every
// above 1 (the default on CUDA) a step's loss and gradient norm stay on the device and the
// check for a non-finite step happens when they are read, several steps later; the run then
// goes back to copies taken before the first unread step. Internal: it brings in the torch
// optimizer headers.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/adamw.h>

#include <cstddef>
#include <deque>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace difflab {

// The key of an optimizer state (a string in LibTorch 1.13, a pointer in 2.x).
using OptimizerStateKey =
    std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

// Copies of a network's trainable weights and of their AdamW state (moments, step counts and
// the groups' learning rates), on the weights' device.
struct AdamWSnapshot {
  struct Moments {
    int64_t step = 0;
    at::Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
  };
  std::vector<at::Tensor> params;
  std::unordered_map<OptimizerStateKey, Moments> moments;
  std::vector<double> lrs;  // each parameter group's learning rate
};

// Copies `params` (the tensors `optimizer` updates) and the optimizer's state for them.
AdamWSnapshot take_snapshot(const std::vector<at::Tensor>& params, torch::optim::AdamW& optimizer);
// Writes `snapshot` back into the same parameters and optimizer. States the optimizer made
// since (on its first step) are dropped, as they were not there before; gradients are
// cleared.
void restore_snapshot(const AdamWSnapshot& snapshot, const std::vector<at::Tensor>& params,
                      torch::optim::AdamW& optimizer);

// Copies of tensors (an EMA's weights), and writing them back into the same tensors.
std::vector<at::Tensor> copy_tensors(const std::vector<at::Tensor>& tensors);
void copy_back(const std::vector<at::Tensor>& copies, const std::vector<at::Tensor>& tensors);

// The 2-norm of all gradients of `params` as a 0-dim tensor on their device, read by nobody
// (torch::nn::utils::clip_grad_norm_ reads it back to the host); when max_norm > 0 the
// gradients are scaled by min(1, max_norm / (norm + 1e-6)) first, as clip_grad_norm_ does.
// The norm returned is the one before clipping.
at::Tensor clip_grad_norm_on_device(const std::vector<at::Tensor>& params, double max_norm);

// The results of steps read back from the device and not yet taken, and the redo of a
// group's good steps after a bad one: while redoing, results are not kept again (they were
// kept when the group was read) and the trainer reads every step.
template <typename Result>
class MeasuredSteps {
 public:
  // Results kept when nobody takes them (tests, bench): the newest.
  static constexpr size_t kKept = 4096;

  bool replaying() const { return m_replaying; }
  void keep(const Result& r) {
    if (m_replaying) return;
    m_results.push_back(r);
    while (m_results.size() > kKept) m_results.pop_front();
  }
  const Result& back() const { return m_results.back(); }
  std::vector<Result> take() {
    std::vector<Result> out(m_results.begin(), m_results.end());
    m_results.clear();
    return out;
  }
  void clear() { m_results.clear(); }
  // Calls `step` `count` times as a redo. When one fails (on CUDA a rerun need not be bit
  // for bit the same), the results of the steps after `done()` (the trainer's step count
  // then) are not the run's any more: they are dropped and the error goes on.
  template <typename Step, typename Done>
  void redo(size_t count, Step&& step, Done&& done) {
    m_replaying = true;
    try {
      for (size_t i = 0; i < count; ++i) step();
    } catch (...) {
      m_replaying = false;
      while (!m_results.empty() && m_results.back().step > done()) m_results.pop_back();
      throw;
    }
    m_replaying = false;
  }

 private:
  std::deque<Result> m_results;
  bool m_replaying = false;
};

// The message of a step with a non-finite loss or gradient norm: "<who>loss is nan at step
// 3; the weights were left as they were after step 2 (try <advice>)". `step` is the step it
// would have been; a NaN reads "nan" whatever its sign bit.
std::string nonfinite_step_message(const std::string& who, double loss, double grad_norm,
                                   int64_t step, const std::string& advice);

}  // namespace difflab
