#include "core/model/unet.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "core/model/attention_kernel.h"
#include "core/model/controlnet.h"
#include "core/model/conv_grad.h"
#include "core/model/embedding.h"
#include "core/model/flops.h"
#include "core/model/hashed_dropout.h"
#include "core/model/norm_act.h"
#include "core/model/winograd_conv.h"

namespace difflab {
namespace {

namespace nn = torch::nn;

struct BlockSettings {
  Activation act = Activation::SiLU;
  int groups = 8;
  double dropout = 0.0;
};

nn::GroupNorm make_norm(int groups, int channels) {
  return nn::GroupNorm(nn::GroupNormOptions(std::gcd(groups, channels), channels));
}

// act(GroupNorm(x)) as one kernel in float32 (core/model/norm_act.h); under bf16 autocast
// the convolutions hand over bf16, normalised with float32 statistics and kept in bf16.
torch::Tensor norm_act(nn::GroupNorm& gn, const torch::Tensor& x, Activation act, bool activate = true) {
  const auto& o = gn->options;
  return group_norm_act(x, o.num_groups(), gn->weight, gn->bias, o.eps(), act, activate);
}

nn::Conv2d conv3x3(int in, int out, int stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

nn::Conv2d conv1x1(int in, int out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 1)); }

void zero_module(nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.zero_();
}

// Layer calls that also feed an active FlopCounter (benchmarks only). Convolutions also
// feed an active ConvShapeRecorder and take their weight gradient in float32 where bf16
// training flagged their shape (core/model/conv_grad.h). `extras` (a per-image shift, a
// residual) are added to the output: inside the Winograd kernel when sampling, else by
// LibTorch ops.
torch::Tensor run(nn::Conv2d& conv, const torch::Tensor& x, const ConvExtras& extras = {}) {
  torch::Tensor y;
  // Sampling (no gradients) and float32 training skip the shape and the registry lookup.
  const bool hooks = conv_grad_hooks_active();
  auto* recorder = hooks ? ConvShapeRecorder::active() : nullptr;
  const bool bf16_training = hooks && torch::GradMode::is_enabled() &&
                             x.device().is_cpu() && bf16_autocast_on_cpu();
  bool extras_added = false;
  if ((recorder || bf16_training) && x.dim() == 4) {
    const auto& o = conv->options;
    ConvShape s;
    s.batch = x.size(0);
    s.in = x.size(1);
    s.height = x.size(2);
    s.width = x.size(3);
    s.out = o.out_channels();
    s.kernel = o.kernel_size()->at(0);
    s.stride = o.stride()->at(0);
    s.padding = s.kernel / 2;  // conv3x3 and conv1x1 above, the only convolutions here
    if (recorder) recorder->add(s);
    if (bf16_training && float32_weight_grad(s))
      y = conv2d_float32_weight_grad(x, conv->weight, conv->bias, s.stride, s.padding);
  }
  // float32 on the CPU: Winograd where it measures faster (winograd_conv.h).
  if (!y.defined()) {
    const auto& o = conv->options;
    // conv3x3 and conv1x1 above (the only convolutions here) pad by kernel / 2 with zeros;
    // reading the padding variant back would differ between LibTorch 1.13 and 2.x.
    const int64_t k = o.kernel_size()->at(0);
    if (o.kernel_size()->at(1) == k && o.stride()->at(0) == o.stride()->at(1) && o.groups() == 1 &&
        o.dilation()->at(0) == 1 && o.dilation()->at(1) == 1)
      y = winograd_conv2d_if_faster(x, conv->weight, conv->bias, o.stride()->at(0), k / 2, extras);
    if (y.defined()) extras_added = true;
  }
  if (!y.defined()) {
    // Sampling: LibTorch runs the first layer (1 or 3 image channels) 2-3x faster on a
    // channels-last input (16 images of 28x28, 1 → 32 channels: 0.67-1.2 → 0.22-0.59 ms,
    // AVX2 EPYC) and hands the layers after it channels-last memory, as Winograd's do.
    const bool first_layer = !torch::GradMode::is_enabled() && x.dim() == 4 && x.size(1) <= 4 &&
                             x.device().is_cpu() && x.stride(1) != 1;
    y = conv(first_layer ? x.to(x.options(), false, true, at::MemoryFormat::ChannelsLast) : x);
  }
  if (!extras_added) {
    if (extras.image_bias.defined()) y = y + extras.image_bias.unsqueeze(-1).unsqueeze(-1);
    if (extras.residual.defined()) y = y + extras.residual;
  }
  if (FlopCounter::active()) {
    const auto& w = conv->weight;  // (out, in, kh, kw)
    FlopCounter::add(2 * y.numel() * w.size(1) * w.size(2) * w.size(3));
  }
  return y;
}

torch::Tensor run(nn::Linear& linear, const torch::Tensor& x) {
  auto y = linear(x);
  if (FlopCounter::active()) FlopCounter::add(2 * y.numel() * linear->weight.size(1));
  return y;
}

// GroupNorm → act → conv, plus the (already activated) embedding projected to a
// per-channel shift, then GroupNorm → act → dropout → conv; residual 1×1 when the
// channel count changes (Ho et al. 2020, appendix B).
class ResBlockImpl : public nn::Module {
 public:
  ResBlockImpl(int in, int out, int emb_dim, const BlockSettings& s)
      : m_act(s.act), m_dropout(s.dropout) {
    m_norm1 = register_module("in_norm", make_norm(s.groups, in));
    m_conv1 = register_module("in_conv", conv3x3(in, out));
    m_emb = register_module("emb_proj", nn::Linear(emb_dim, out));
    m_norm2 = register_module("out_norm", make_norm(s.groups, out));
    m_conv2 = register_module("out_conv", conv3x3(out, out));
    if (in != out) m_skip = register_module("skip", conv1x1(in, out));
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb_act) {
    // The shift and the skip go in with the convolutions (sampling: in the Winograd
    // kernel's output pass, no extra pass over h). Added by LibTorch, h comes first: an
    // elementwise result takes its first operand's memory layout, so the residual stream
    // stays channels-last once a Winograd convolution made it so.
    auto h = run(m_conv1, norm_act(m_norm1, x, m_act), {run(m_emb, emb_act), {}});
    h = norm_act(m_norm2, h, m_act);
    if (is_training()) h = hashed_dropout(h, m_dropout);
    return run(m_conv2, h, {{}, m_skip ? run(m_skip, x) : x});
  }

  nn::Conv2d& last_layer() { return m_conv2; }

 private:
  Activation m_act;
  nn::GroupNorm m_norm1{nullptr}, m_norm2{nullptr};
  nn::Conv2d m_conv1{nullptr}, m_conv2{nullptr}, m_skip{nullptr};
  nn::Linear m_emb{nullptr};
  double m_dropout;
};
TORCH_MODULE(ResBlock);

// Multi-head self-attention over the H·W positions, with a residual connection.
class AttentionImpl : public nn::Module {
 public:
  AttentionImpl(int channels, int heads, int groups) : m_heads(heads) {
    if (channels % heads != 0)
      throw std::invalid_argument("attention: " + std::to_string(channels) +
                                  " channels do not split into " + std::to_string(heads) +
                                  " heads");
    m_norm = register_module("norm", make_norm(groups, channels));
    m_qkv = register_module("qkv", conv1x1(channels, 3 * channels));
    m_proj = register_module("proj_out", conv1x1(channels, channels));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t d = c / m_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const auto qkv = run(m_qkv, norm_act(m_norm, x, Activation::SiLU, /*activate=*/false));
    torch::Tensor a;
    if (!torch::GradMode::is_enabled() && attention_nhwc_applies(qkv)) {
      a = multihead_attention_nhwc(qkv, m_heads, scale);  // sampling: channels-last in and out
    } else {
      const auto parts = qkv.reshape({b * m_heads, 3 * d, h * w}).chunk(3, 1);
      a = multihead_attention(parts[0], parts[1], parts[2], scale).reshape({b, c, h, w});
    }
    if (FlopCounter::active()) FlopCounter::add(4 * b * m_heads * (h * w) * (h * w) * d);
    return x + run(m_proj, a);
  }

  nn::Conv2d& last_layer() { return m_proj; }

 private:
  int m_heads;
  nn::GroupNorm m_norm{nullptr};
  nn::Conv2d m_qkv{nullptr}, m_proj{nullptr};
};
TORCH_MODULE(Attention);

// One step of the UNet: a plain conv, a residual block with optional attention, a
// strided-conv down-sampler, or a nearest-neighbour + conv up-sampler.
class UNetBlockImpl : public nn::Module {
 public:
  enum class Kind { Conv, Res, Down, Up };

  static std::shared_ptr<UNetBlockImpl> conv(int in, int out) {
    auto b = std::make_shared<UNetBlockImpl>(Kind::Conv);
    b->m_conv = b->register_module("conv", conv3x3(in, out));
    return b;
  }
  static std::shared_ptr<UNetBlockImpl> res(int in, int out, int emb_dim, bool attention,
                                            int heads, const BlockSettings& s) {
    auto b = std::make_shared<UNetBlockImpl>(Kind::Res);
    b->m_res = b->register_module("res", ResBlock(in, out, emb_dim, s));
    if (attention) b->m_attn = b->register_module("attn", Attention(out, heads, s.groups));
    return b;
  }
  static std::shared_ptr<UNetBlockImpl> down(int channels) {
    auto b = std::make_shared<UNetBlockImpl>(Kind::Down);
    b->m_conv = b->register_module("op", conv3x3(channels, channels, 2));
    return b;
  }
  static std::shared_ptr<UNetBlockImpl> up(int channels) {
    auto b = std::make_shared<UNetBlockImpl>(Kind::Up);
    b->m_conv = b->register_module("conv", conv3x3(channels, channels));
    return b;
  }

  explicit UNetBlockImpl(Kind kind) : m_kind(kind) {}

  // `size` is the spatial size an up-sampler must produce (the next skip's).
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& emb_act,
                        c10::IntArrayRef size = {}) {
    switch (m_kind) {
      case Kind::Conv:
      case Kind::Down:
        return run(m_conv, x);
      case Kind::Res:
        x = m_res(x, emb_act);
        return m_attn ? m_attn(x) : x;
      case Kind::Up:
        x = torch::nn::functional::interpolate(
            x, torch::nn::functional::InterpolateFuncOptions()
                   .size(std::vector<int64_t>(size.begin(), size.end()))
                   .mode(torch::kNearest));
        return run(m_conv, x);
    }
    return x;
  }

  Kind kind() const { return m_kind; }
  void zero_last_layers() {
    if (m_res) zero_module(*m_res->last_layer());
    if (m_attn) zero_module(*m_attn->last_layer());
  }

 private:
  Kind m_kind;
  nn::Conv2d m_conv{nullptr};
  ResBlock m_res{nullptr};
  Attention m_attn{nullptr};
};

class UNetImpl : public DenoiserNetImpl {
 public:
  // `encoder_only` builds the embeddings, the input blocks and the middle block alone
  // (a ControlNet's trainable copy); forward() then cannot run, encode() can.
  UNetImpl(const ModelConfig& c, const DataShape& shape, bool learn_sigma,
           bool encoder_only = false)
      : m_base(c.base_channels), m_act(c.activation), m_learn_sigma(learn_sigma) {
    if (shape.points) throw std::invalid_argument("the UNet needs image data, not 2-D points");
    const BlockSettings s{c.activation, c.norm_groups, c.dropout};
    const int emb_dim = 4 * c.base_channels;
    m_time_fc1 = register_module("time_embed_0", nn::Linear(c.base_channels, emb_dim));
    m_time_fc2 = register_module("time_embed_2", nn::Linear(emb_dim, emb_dim));
    if (c.class_conditional) {
      m_num_classes = c.num_classes;
      // One extra row: the "null" label used for unconditional predictions (CFG).
      m_label_emb = register_module("label_emb", nn::Embedding(c.num_classes + 1, emb_dim));
    }
    auto has_attention = [&](int res) {
      return std::find(c.attention_resolutions.begin(), c.attention_resolutions.end(), res) !=
             c.attention_resolutions.end();
    };

    m_input = register_module("input_blocks", nn::ModuleList());
    m_output = register_module("output_blocks", nn::ModuleList());
    int ch = c.base_channels;
    int res = shape.height;
    std::vector<int> skip_channels;
    std::vector<int> level_res;
    push(m_input, m_input_blocks, UNetBlockImpl::conv(shape.channels, ch));
    skip_channels.push_back(ch);
    const int levels = static_cast<int>(c.channel_mult.size());
    for (int level = 0; level < levels; ++level) {
      level_res.push_back(res);
      for (int i = 0; i < c.num_res_blocks; ++i) {
        const int out = c.base_channels * c.channel_mult[level];
        push(m_input, m_input_blocks,
             UNetBlockImpl::res(ch, out, emb_dim, has_attention(res), c.num_heads, s));
        ch = out;
        skip_channels.push_back(ch);
      }
      if (level + 1 < levels) {
        push(m_input, m_input_blocks, UNetBlockImpl::down(ch));
        skip_channels.push_back(ch);
        res = (res + 1) / 2;  // stride-2 conv with padding 1: ceil(res / 2)
      }
    }
    // A resolution that matches no level would silently add no attention at all.
    for (const int want : c.attention_resolutions) {
      if (std::find(level_res.begin(), level_res.end(), want) != level_res.end()) continue;
      std::string levels_text;
      for (const int r : level_res) levels_text += (levels_text.empty() ? "" : ", ") + std::to_string(r);
      throw std::invalid_argument("model.attention_resolutions: " + std::to_string(want) +
                                  " matches no level of this UNet (its levels are " + levels_text +
                                  " pixels for " + std::to_string(shape.height) + "x" +
                                  std::to_string(shape.width) + " images)");
    }
    m_middle_res1 = register_module("middle_res1", ResBlock(ch, ch, emb_dim, s));
    m_middle_attn = register_module("middle_attn", Attention(ch, c.num_heads, c.norm_groups));
    m_middle_res2 = register_module("middle_res2", ResBlock(ch, ch, emb_dim, s));
    m_skip_channels = skip_channels;
    m_middle_channels = ch;
    if (encoder_only) {
      initialise(c);
      return;
    }

    for (int level = levels - 1; level >= 0; --level) {
      for (int i = 0; i <= c.num_res_blocks; ++i) {
        const int skip = skip_channels.back();
        skip_channels.pop_back();
        const int out = c.base_channels * c.channel_mult[level];
        push(m_output, m_output_blocks,
             UNetBlockImpl::res(ch + skip, out, emb_dim, has_attention(level_res[level]),
                                c.num_heads, s));
        ch = out;
      }
      if (level > 0) push(m_output, m_output_blocks, UNetBlockImpl::up(ch));
    }
    m_out_norm = register_module("out_norm", make_norm(c.norm_groups, ch));
    m_out_conv =
        register_module("out_conv", conv3x3(ch, shape.channels * (learn_sigma ? 2 : 1)));

    initialise(c);
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    return forward_controlled(x, t, y, {});
  }

  // Zhang et al. 2023, eq. 4: the ControlNet's outputs are added to every skip
  // connection and to the middle block's output before the decoder reads them.
  torch::Tensor forward_controlled(const torch::Tensor& x, const torch::Tensor& t,
                                   const torch::Tensor& y,
                                   const std::vector<torch::Tensor>& control) override {
    if (!m_out_conv) throw std::logic_error("UNet: an encoder-only copy has no decoder");
    auto enc = encode(x, t, y, {});
    if (!control.empty()) {
      if (control.size() != enc.skips.size() + 1)
        throw std::invalid_argument("UNet: " + std::to_string(control.size()) +
                                    " control residuals for " +
                                    std::to_string(enc.skips.size()) + " skips + the middle");
      for (size_t i = 0; i < enc.skips.size(); ++i) enc.skips[i] = enc.skips[i] + control[i];
      enc.middle = enc.middle + control.back();
    }
    auto h = enc.middle;
    auto& skips = enc.skips;
    for (auto& block : m_output_blocks) {
      if (block->kind() == UNetBlockImpl::Kind::Up) {
        h = block->forward(h, enc.emb_act, skips.back().sizes().slice(2));
        continue;
      }
      h = torch::cat({h, skips.back()}, 1);
      skips.pop_back();
      h = block->forward(h, enc.emb_act);
    }
    // Contiguous whatever layout the Winograd convolutions left inside (winograd_conv.h).
    return run(m_out_conv, norm_act(m_out_norm, h, m_act)).contiguous();
  }

  struct Encoded {
    std::vector<torch::Tensor> skips;  // every input block's output, in order
    torch::Tensor middle;              // the middle block's output
    torch::Tensor emb_act;             // the activated timestep (+ class) embedding
  };

  // Embeddings, input blocks and middle block. `hint` (a feature map like the first
  // block's output, or undefined) is added to the first block's output (ControlNet).
  Encoded encode(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                 const torch::Tensor& hint) {
    auto emb = run(m_time_fc2, activate(run(m_time_fc1, timestep_embedding(t, m_base)), m_act));
    if (m_label_emb) {
      auto labels = y.defined() ? y
                                : torch::full({x.size(0)}, m_num_classes,
                                              torch::TensorOptions().dtype(torch::kLong).device(
                                                  x.device()));
      emb = emb + m_label_emb(labels);
    }
    Encoded out;
    out.emb_act = activate(emb, m_act);
    out.skips.reserve(m_input_blocks.size());
    auto h = x;
    for (auto& block : m_input_blocks) {
      h = block->forward(h, out.emb_act);
      if (out.skips.empty() && hint.defined()) h = h + hint;
      out.skips.push_back(h);
    }
    h = m_middle_res1(h, out.emb_act);
    h = m_middle_attn(h);
    out.middle = m_middle_res2(h, out.emb_act);
    return out;
  }

  const std::vector<int>& skip_channels() const { return m_skip_channels; }
  int middle_channels() const { return m_middle_channels; }

  int num_classes() const override { return m_num_classes; }
  bool learns_variance() const override { return m_learn_sigma; }

 private:
  void push(nn::ModuleList& list, std::vector<std::shared_ptr<UNetBlockImpl>>& blocks,
            std::shared_ptr<UNetBlockImpl> block) {
    list->push_back(block);
    blocks.push_back(std::move(block));
  }

  void initialise(const ModelConfig& c) {
    torch::NoGradGuard no_grad;
    if (c.init != WeightInit::Default) {
      for (auto& m : modules(/*include_self=*/false)) {
        torch::Tensor w, b;
        if (auto* conv = m->as<nn::Conv2d>()) {
          w = conv->weight;
          b = conv->bias;
        } else if (auto* lin = m->as<nn::Linear>()) {
          w = lin->weight;
          b = lin->bias;
        } else {
          continue;
        }
        if (c.init == WeightInit::Xavier)
          nn::init::xavier_uniform_(w);
        else
          nn::init::kaiming_normal_(w, 0.0, torch::kFanIn, torch::kReLU);
        if (b.defined()) b.zero_();
      }
    }
    if (c.zero_init_last) {
      for (auto& block : m_input_blocks) block->zero_last_layers();
      for (auto& block : m_output_blocks) block->zero_last_layers();
      zero_module(*m_middle_res1->last_layer());
      zero_module(*m_middle_attn->last_layer());
      zero_module(*m_middle_res2->last_layer());
      if (m_out_conv) zero_module(*m_out_conv);
    }
  }

  int m_base;
  Activation m_act;
  bool m_learn_sigma;
  int m_num_classes = 0;
  std::vector<int> m_skip_channels;
  int m_middle_channels = 0;
  nn::Linear m_time_fc1{nullptr}, m_time_fc2{nullptr};
  nn::Embedding m_label_emb{nullptr};
  nn::ModuleList m_input{nullptr}, m_output{nullptr};
  std::vector<std::shared_ptr<UNetBlockImpl>> m_input_blocks, m_output_blocks;
  ResBlock m_middle_res1{nullptr}, m_middle_res2{nullptr};
  Attention m_middle_attn{nullptr};
  nn::GroupNorm m_out_norm{nullptr};
  nn::Conv2d m_out_conv{nullptr};
};

// Zhang et al. 2023, §3.2 and §3.3: the trainable copy, a small hint encoder ("a tiny
// network E(·) of four convolution layers") that maps the hint to the first feature map's
// size and width, its last layer zero-initialised, and one zero 1×1 conv per skip plus one
// for the middle block. The hint is at the data's resolution, as is the first feature map
// (the UNet's first conv has stride 1), so the hint encoder keeps the size.
class UNetControlNet : public ControlNetImpl {
 public:
  UNetControlNet(const ModelConfig& c, const DataShape& shape) {
    m_copy = register_module("copy", std::make_shared<UNetImpl>(c, shape, /*learn_sigma=*/false,
                                                                /*encoder_only=*/true));
    const int mid = std::max(16, c.base_channels / 2);
    m_hint = register_module("hint_encoder", nn::Sequential());
    m_hint->push_back(conv3x3(kHintChannels, 16));
    m_hint->push_back(nn::SiLU());
    m_hint->push_back(conv3x3(16, mid));
    m_hint->push_back(nn::SiLU());
    m_hint->push_back(conv3x3(mid, c.base_channels));
    m_hint->push_back(nn::SiLU());
    m_hint_out = register_module("hint_out", conv3x3(c.base_channels, c.base_channels));
    zero_module(*m_hint_out);
    m_zero = register_module("zero_convs", nn::ModuleList());
    auto add_zero = [&](int ch) {
      auto conv = conv1x1(ch, ch);
      zero_module(*conv);
      m_zero->push_back(conv);
      m_zero_convs.push_back(conv);
    };
    for (int ch : m_copy->skip_channels()) add_zero(ch);
    add_zero(m_copy->middle_channels());
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& t,
                                     const torch::Tensor& y, const torch::Tensor& hint) override {
    if (hint.dim() != 4 || hint.size(1) != kHintChannels || hint.size(2) != x.size(2) ||
        hint.size(3) != x.size(3) || hint.size(0) != x.size(0)) {
      std::ostringstream msg;
      msg << "ControlNet: hint of shape " << hint.sizes() << " for images " << x.sizes()
          << " (needs (B, " << kHintChannels << ", H, W))";
      throw std::invalid_argument(msg.str());
    }
    auto features = run(m_hint_out, m_hint->forward(hint.to(x.dtype())));
    auto enc = m_copy->encode(x, t, y, features);
    std::vector<torch::Tensor> out;
    out.reserve(m_zero_convs.size());
    for (size_t i = 0; i < enc.skips.size(); ++i) out.push_back(run(m_zero_convs[i], enc.skips[i]));
    out.push_back(run(m_zero_convs.back(), enc.middle));
    return out;
  }

  void copy_encoder_from(const DenoiserNetImpl& base) override {
    if (!dynamic_cast<const UNetImpl*>(&base))
      throw std::invalid_argument("ControlNet: the base model is not a UNet");
    std::map<std::string, torch::Tensor> from;
    for (const auto& p : base.named_parameters()) from[p.key()] = p.value();
    for (const auto& b : base.named_buffers()) from[b.key()] = b.value();
    torch::NoGradGuard no_grad;
    auto copy = [&](const std::string& name, torch::Tensor& to) {
      auto it = from.find(name);
      if (it == from.end() || it->second.sizes() != to.sizes())
        throw std::invalid_argument("ControlNet: the base model has no tensor '" + name +
                                    "' of the copy's shape (another architecture)");
      to.copy_(it->second);
    };
    for (auto& p : m_copy->named_parameters()) copy(p.key(), p.value());
    for (auto& b : m_copy->named_buffers()) copy(b.key(), b.value());
  }

  std::vector<torch::Tensor> zero_conv_parameters() override {
    auto params = m_hint_out->parameters();
    for (auto& conv : m_zero_convs)
      for (auto& p : conv->parameters()) params.push_back(p);
    return params;
  }

 private:
  std::shared_ptr<UNetImpl> m_copy;
  nn::Sequential m_hint{nullptr};
  nn::Conv2d m_hint_out{nullptr};
  nn::ModuleList m_zero{nullptr};
  std::vector<nn::Conv2d> m_zero_convs;
};

}  // namespace

ControlNet make_controlnet(const ModelConfig& config, const DataShape& shape) {
  if (config.kind != ModelKind::UNet || shape.points)
    throw std::invalid_argument("a ControlNet needs a UNet on image data");
  return std::make_shared<UNetControlNet>(config, shape);
}

DenoiserNet make_unet(const ModelConfig& config, const DataShape& shape, bool learn_sigma) {
  return std::make_shared<UNetImpl>(config, shape, learn_sigma);
}

}  // namespace difflab
