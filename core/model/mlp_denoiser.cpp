#include "core/model/mlp_denoiser.h"

#include <torch/torch.h>

#include "core/model/embedding.h"

namespace difflab {
namespace {

namespace nn = torch::nn;

// x (B, 2) and a sinusoidal embedding of t (plus a class embedding) feed a stack of
// residual Linear layers; the embedding is added to every hidden layer.
class MlpDenoiserImpl : public DenoiserNetImpl {
 public:
  MlpDenoiserImpl(const ModelConfig& c, const DataShape& shape, bool learn_sigma)
      : m_hidden(c.mlp_hidden), m_act(c.activation), m_learn_sigma(learn_sigma) {
    const int dim = shape.channels;
    m_in = register_module("in", nn::Linear(dim, m_hidden));
    m_time = register_module("time_embed", nn::Linear(m_hidden, m_hidden));
    if (c.class_conditional) {
      m_num_classes = c.num_classes;
      m_label_emb = register_module("label_emb", nn::Embedding(c.num_classes + 1, m_hidden));
    }
    m_layers = register_module("layers", nn::ModuleList());
    for (int i = 0; i < c.mlp_layers; ++i) {
      auto layer = nn::Linear(m_hidden, m_hidden);
      m_layers->push_back(layer);
      m_linear.push_back(layer);
    }
    m_out = register_module("out", nn::Linear(m_hidden, dim * (learn_sigma ? 2 : 1)));
    if (c.zero_init_last) {
      torch::NoGradGuard no_grad;
      m_out->weight.zero_();
      m_out->bias.zero_();
    }
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    auto emb = m_time(timestep_embedding(t, m_hidden));
    if (m_label_emb) {
      auto labels = y.defined() ? y
                                : torch::full({x.size(0)}, m_num_classes,
                                              torch::TensorOptions().dtype(torch::kLong).device(
                                                  x.device()));
      emb = emb + m_label_emb(labels);
    }
    auto h = m_in(x);
    for (auto& layer : m_linear) h = h + layer(activate(h + emb, m_act));
    return m_out(activate(h, m_act));
  }

  int num_classes() const override { return m_num_classes; }
  bool learns_variance() const override { return m_learn_sigma; }

 private:
  int m_hidden;
  Activation m_act;
  bool m_learn_sigma;
  int m_num_classes = 0;
  nn::Linear m_in{nullptr}, m_time{nullptr}, m_out{nullptr};
  nn::Embedding m_label_emb{nullptr};
  nn::ModuleList m_layers{nullptr};
  std::vector<nn::Linear> m_linear;
};

}  // namespace

DenoiserNet make_mlp_denoiser(const ModelConfig& config, const DataShape& shape,
                              bool learn_sigma) {
  return std::make_shared<MlpDenoiserImpl>(config, shape, learn_sigma);
}

}  // namespace difflab
