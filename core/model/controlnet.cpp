#include "core/model/controlnet.h"

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>

namespace difflab {

torch::Tensor match_hint_batch(const torch::Tensor& hint, int64_t batch) {
  const int64_t n = hint.size(0);
  if (n == batch) return hint;
  if (n == 1) return hint.expand({batch, hint.size(1), hint.size(2), hint.size(3)});
  if (n > 0 && batch % n == 0) return hint.repeat({batch / n, 1, 1, 1});
  std::ostringstream msg;
  msg << "ControlNet: " << n << " hints for a batch of " << batch << " images";
  throw std::invalid_argument(msg.str());
}

ControlledNetImpl::ControlledNetImpl(DenoiserNet base, ControlNet control, torch::Tensor hint,
                                     double scale)
    : m_base(std::move(base)), m_control(std::move(control)), m_hint(std::move(hint)),
      m_scale(scale) {
  if (!m_base || !m_control) throw std::invalid_argument("ControlledNet: needs a base and a ControlNet");
  if (!m_hint.defined() || m_hint.dim() != 4 || m_hint.size(1) != kHintChannels)
    throw std::invalid_argument("ControlledNet: the hint must be (N, " +
                                std::to_string(kHintChannels) + ", H, W)");
  // Registered so that train()/eval()/to() reach both networks.
  register_module("base", m_base);
  register_module("control", m_control);
}

torch::Tensor ControlledNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                         const torch::Tensor& y) {
  if (m_scale == 0.0) return m_base->forward(x, t, y);
  const auto hint = match_hint_batch(m_hint.to(x.device()), x.size(0));
  auto residuals = m_control->forward(x, t, y, hint);
  if (m_scale != 1.0)
    for (auto& r : residuals) r = r * m_scale;
  return m_base->forward_controlled(x, t, y, residuals);
}

}  // namespace difflab
