#include "core/train/step_undo.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

namespace difflab {
namespace {

torch::optim::AdamWParamState& adamw_state(torch::optim::OptimizerParamState& state) {
  return static_cast<torch::optim::AdamWParamState&>(state);
}

}  // namespace

AdamWSnapshot take_snapshot(const std::vector<at::Tensor>& params, torch::optim::AdamW& optimizer) {
  torch::NoGradGuard no_grad;
  AdamWSnapshot s;
  s.params = copy_tensors(params);
  for (auto& [key, state] : optimizer.state()) {
    const auto& a = adamw_state(*state);
    s.moments.emplace(key, AdamWSnapshot::Moments{
                               a.step(), a.exp_avg().clone(), a.exp_avg_sq().clone(),
                               a.max_exp_avg_sq().defined() ? a.max_exp_avg_sq().clone()
                                                            : at::Tensor()});
  }
  for (auto& group : optimizer.param_groups())
    s.lrs.push_back(static_cast<torch::optim::AdamWOptions&>(group.options()).lr());
  return s;
}

void restore_snapshot(const AdamWSnapshot& snapshot, const std::vector<at::Tensor>& params,
                      torch::optim::AdamW& optimizer) {
  torch::NoGradGuard no_grad;
  copy_back(snapshot.params, params);
  auto& states = optimizer.state();
  std::vector<OptimizerStateKey> made_since;
  for (auto& [key, state] : states) {
    const auto it = snapshot.moments.find(key);
    if (it == snapshot.moments.end()) {
      made_since.push_back(key);
      continue;
    }
    auto& a = adamw_state(*state);
    a.step(it->second.step);
    a.exp_avg().copy_(it->second.exp_avg);
    a.exp_avg_sq().copy_(it->second.exp_avg_sq);
    if (it->second.max_exp_avg_sq.defined()) a.max_exp_avg_sq().copy_(it->second.max_exp_avg_sq);
  }
  for (const auto& key : made_since) states.erase(key);
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size() && i < snapshot.lrs.size(); ++i)
    static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(snapshot.lrs[i]);
  optimizer.zero_grad();
}

std::vector<at::Tensor> copy_tensors(const std::vector<at::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach().clone());
  return out;
}

void copy_back(const std::vector<at::Tensor>& copies, const std::vector<at::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors.size() && i < copies.size(); ++i) {
    auto t = tensors[i];
    t.copy_(copies[i]);
  }
}

at::Tensor clip_grad_norm_on_device(const std::vector<at::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().norm(2));
  if (norms.empty()) return at::zeros({}, params.empty() ? at::TensorOptions() : params[0].options());
  const auto norm = at::stack(norms).norm(2);
  if (max_norm > 0) {
    const auto coef = (max_norm / (norm + 1e-6)).clamp_max(1.0);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  return norm;
}

std::string nonfinite_step_message(const std::string& who, double loss, double grad_norm,
                                   int64_t step, const std::string& advice) {
  const auto text = [](double v) {
    std::ostringstream out;
    if (std::isnan(v))
      out << "nan";
    else
      out << v;
    return out.str();
  };
  std::ostringstream msg;
  msg << who;
  if (!std::isfinite(loss))
    msg << "loss is " << text(loss);
  else
    msg << "gradient norm is " << text(grad_norm);
  msg << " at step " << step << "; the weights were left as they were after step " << step - 1
      << " (try " << advice << ")";
  return msg.str();
}

}  // namespace difflab
