// The Winograd F(4x4, 3x3) convolution (core/model/winograd.h, winograd_conv.h) against
// LibTorch's conv2d: outputs, gradients, the weight cache, where it applies, and the UNet
// run with it against the UNet run without it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/model/denoiser_net.h"
#include "core/model/norm_act.h"
#include "core/model/winograd.h"
#include "core/model/winograd_conv.h"

using namespace difflab;

namespace {

// Restores the mode (DIFFLAB_WINOGRAD's or auto) when a test ends, a failed ASSERT included.
struct ModeScope {
  explicit ModeScope(WinogradMode m) : previous(winograd_mode()) { set_winograd_mode(m); }
  ~ModeScope() { set_winograd_mode(previous); }
  WinogradMode previous;
};

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// Unit-scale outputs: weights with variance 1 / (9 Cin).
torch::Tensor weight(int64_t cout, int64_t cin) {
  return torch::randn({cout, cin, 3, 3}) / std::sqrt(9.0 * static_cast<double>(cin));
}

}  // namespace

TEST(Winograd, MatchesConv2dAtEveryShape) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  struct Case { int64_t b, cin, cout, h, w; bool bias; };
  // Sizes that are and are not multiples of the 4x4 tile, 1x1 images, 16-wide and 8-wide
  // output-channel panels, a batch that leaves the last block of tiles part-empty.
  const std::vector<Case> cases = {{1, 8, 8, 1, 1, true},    {2, 16, 24, 7, 9, true},
                                   {3, 32, 16, 28, 28, false}, {1, 8, 32, 5, 3, true},
                                   {2, 64, 64, 14, 14, true},  {5, 24, 40, 6, 11, false},
                                   {16, 128, 64, 7, 7, true}};
  for (const auto& k : cases) {
    const auto x = torch::randn({k.b, k.cin, k.h, k.w});
    const auto w = weight(k.cout, k.cin);
    const auto b = k.bias ? torch::randn({k.cout}) : torch::Tensor();
    const auto want = torch::conv2d(x, w, b, 1, 1);
    const auto got = winograd_conv2d(x, w, b);
    ASSERT_EQ(got.sizes(), want.sizes());
    const double err = max_abs(got - want), scale = max_abs(want);
    EXPECT_LT(err, 2e-5 * scale) << k.b << "x" << k.cin << "->" << k.cout << " at " << k.h << "x"
                                 << k.w << ": max error " << err << " of " << scale;
  }
}

TEST(Winograd, WeightTransformIsGgGt) {
  // One channel pair by hand: G g Gᵀ with G of Lavin & Gray's F(4x4, 3x3).
  const float g[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  float u[36];
  winograd::transform_weights(g, 1, 1, u);
  const double G[6][3] = {{0.25, 0, 0},           {-1 / 6.0, -1 / 6.0, -1 / 6.0},
                          {-1 / 6.0, 1 / 6.0, -1 / 6.0}, {1 / 24.0, 1 / 12.0, 1 / 6.0},
                          {1 / 24.0, -1 / 12.0, 1 / 6.0}, {0, 0, 1}};
  for (int a = 0; a < 6; ++a)
    for (int c = 0; c < 6; ++c) {
      double want = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) want += G[a][i] * g[i * 3 + j] * G[c][j];
      EXPECT_NEAR(u[a * 6 + c], want, 1e-5) << "point " << a << "," << c;
    }
}

TEST(Winograd, WeightGradientIsTheDirectSum) {
  // dW[o][i][a][b] = Σ_n,y,x dy[n][y][x][o] · x[n][y+a−1][x+b−1][i], summed by hand in
  // double, for sizes that leave part tiles and a channel count that is not a multiple of 6.
  torch::manual_seed(5);
  const int64_t b = 2, h = 7, w = 9, cin = 16, cout = 24;
  const auto x = torch::randn({b, h, w, cin});
  const auto dy = torch::randn({b, h, w, cout});
  auto dw = torch::empty({cout, cin, 3, 3});
  winograd::weight_grad_nhwc(x.data_ptr<float>(), dy.data_ptr<float>(), b, h, w, cin, cout,
                             dw.data_ptr<float>());
  const auto xd = x.to(torch::kDouble), dyd = dy.to(torch::kDouble);
  const auto xp = torch::constant_pad_nd(xd, {0, 0, 1, 1, 1, 1});  // pad W and H by 1
  auto want = torch::zeros({cout, cin, 3, 3}, torch::kDouble);
  for (int a = 0; a < 3; ++a)
    for (int c = 0; c < 3; ++c) {
      const auto shifted = xp.narrow(1, a, h).narrow(2, c, w);  // x[n][y+a−1][x+c−1][i]
      want.select(3, c).select(2, a).copy_(torch::einsum("nyxo,nyxi->oi", {dyd, shifted}));
    }
  const double err = max_abs(dw.to(torch::kDouble) - want), scale = max_abs(want);
  EXPECT_LT(err, 1e-5 * scale) << "max error " << err << " of " << scale;
}

TEST(Winograd, GradientsMatchLibTorch) {
  torch::manual_seed(1);
  ModeScope on(WinogradMode::On);
  const auto x0 = torch::randn({3, 16, 9, 10});
  const auto w0 = weight(24, 16), b0 = torch::randn({24});
  const auto up = torch::randn({3, 24, 9, 10});  // upstream gradient
  auto grads = [&](bool winograd) {
    auto x = x0.clone().requires_grad_(true);
    auto w = w0.clone().requires_grad_(true);
    auto b = b0.clone().requires_grad_(true);
    torch::Tensor y = winograd ? winograd_conv2d_if_faster(x, w, b, 1, 1) : torch::conv2d(x, w, b, 1, 1);
    EXPECT_TRUE(y.defined());
    EXPECT_TRUE(y.requires_grad());
    (y * up).sum().backward();
    return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
  };
  const auto want = grads(false), got = grads(true);
  const char* names[] = {"output", "input gradient", "weight gradient", "bias gradient"};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(got[i].defined()) << names[i];
    EXPECT_LT(max_abs(got[i] - want[i]), 2e-5 * max_abs(want[i])) << names[i];
  }
}

TEST(Winograd, FollowsTheWeightWhenItChanges) {
  // The transformed weights are cached per weight tensor: an in-place update (an optimizer
  // step, an EMA update, a loaded checkpoint) must reach the next call.
  torch::manual_seed(2);
  ModeScope on(WinogradMode::On);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 8, 8, 8});
  auto w = weight(8, 8);
  const auto b = torch::zeros({8});
  const auto y1 = winograd_conv2d_if_faster(x, w, b, 1, 1);
  ASSERT_TRUE(y1.defined());
  w.mul_(-3.0);
  const auto y2 = winograd_conv2d_if_faster(x, w, b, 1, 1);
  EXPECT_LT(max_abs(y2 + 3.0 * y1), 1e-4 * max_abs(y2));
  w.copy_(weight(8, 8));
  EXPECT_LT(max_abs(winograd_conv2d_if_faster(x, w, b, 1, 1) - torch::conv2d(x, w, b, 1, 1)),
            1e-4);
}

TEST(Winograd, LeavesOtherConvolutionsToLibTorch) {
  ModeScope on(WinogradMode::On);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 8, 8, 8});
  const auto w = weight(8, 8);
  EXPECT_TRUE(winograd_conv2d_if_faster(x, w, {}, 1, 1).defined());
  EXPECT_FALSE(winograd_conv2d_if_faster(x, w, {}, 2, 1).defined()) << "stride 2";
  EXPECT_FALSE(winograd_conv2d_if_faster(x, w, {}, 1, 0).defined()) << "padding 0";
  EXPECT_FALSE(winograd_conv2d_if_faster(torch::randn({2, 1, 8, 8}), weight(8, 1), {}, 1, 1).defined())
      << "one input channel";
  {
    // Two outputs (a last layer): rounded up to 8 with zero filters when sampling; the
    // training kernels take whole groups of 8 only.
    const auto w2 = weight(2, 8), b2 = torch::randn({2});
    const auto got = winograd_conv2d_if_faster(x, w2, b2, 1, 1);
    ASSERT_TRUE(got.defined()) << "two outputs, no gradients";
    EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, 2, 8, 8}));
    EXPECT_LT(max_abs(got - torch::conv2d(x, w2, b2, 1, 1)), 1e-4);
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(winograd_conv2d_if_faster(x, w2.clone().requires_grad_(true), {}, 1, 1).defined())
        << "two outputs, training";
  }
  EXPECT_FALSE(winograd_conv2d_if_faster(x, torch::randn({8, 8, 1, 1}), {}, 1, 0).defined()) << "1x1";
  EXPECT_FALSE(winograd_conv2d_if_faster(x.to(torch::kDouble), w.to(torch::kDouble), {}, 1, 1).defined())
      << "float64";
  {
    ModeScope off(WinogradMode::Off);
    EXPECT_FALSE(winograd_conv2d_if_faster(x, w, {}, 1, 1).defined()) << "DIFFLAB_WINOGRAD=off";
  }
}

TEST(Winograd, AddsAPerImageShiftAndAResidualInItsOutputPass) {
  // A residual block's conv + time-embedding shift and conv + skip: in the kernel when the
  // residual is channels-last memory, after it when not, and by LibTorch ops (with their
  // gradients) when training; 3 output channels (rounded up) take the extras afterwards.
  ModeScope on(WinogradMode::On);
  torch::manual_seed(5);
  for (const int64_t cout : {16, 3}) {
    const auto x = torch::randn({3, 8, 9, 6});
    const auto w = weight(cout, 8), b = torch::randn({cout});
    const auto shift = torch::randn({3, cout});
    const auto skip = torch::randn({3, cout, 9, 6});
    const auto plain = torch::conv2d(x, w, b, 1, 1);
    torch::NoGradGuard no_grad;
    for (const bool channels_last : {true, false}) {
      const auto res = channels_last ? skip.contiguous(at::MemoryFormat::ChannelsLast) : skip;
      const auto got = winograd_conv2d_if_faster(x, w, b, 1, 1, {shift, res});
      ASSERT_TRUE(got.defined());
      const auto want = plain + shift.view({3, cout, 1, 1}) + skip;
      EXPECT_LT(max_abs(got - want), 1e-4 * max_abs(want))
          << cout << " outputs, residual " << (channels_last ? "channels-last" : "NCHW");
      const auto only_shift = winograd_conv2d_if_faster(x, w, b, 1, 1, {shift, {}});
      EXPECT_LT(max_abs(only_shift - (plain + shift.view({3, cout, 1, 1}))), 1e-4 * max_abs(want));
      const auto only_skip = winograd_conv2d_if_faster(x, w, {}, 1, 1, {{}, res});
      EXPECT_LT(max_abs(only_skip - (torch::conv2d(x, w, {}, 1, 1) + skip)), 1e-4 * max_abs(want));
    }
  }
  // Training: the same sums, and the gradient reaches the shift and the residual.
  const auto x = torch::randn({2, 16, 8, 8});
  const auto w = weight(16, 16).requires_grad_(true);
  const auto shift = torch::randn({2, 16}).requires_grad_(true);
  const auto skip = torch::randn({2, 16, 8, 8}).requires_grad_(true);
  const auto got = winograd_conv2d_if_faster(x, w, {}, 1, 1, {shift, skip});
  ASSERT_TRUE(got.defined());
  const auto want = torch::conv2d(x, w.detach(), {}, 1, 1) + shift.detach().view({2, 16, 1, 1}) +
                    skip.detach();
  EXPECT_LT(max_abs(got.detach() - want), 1e-4 * max_abs(want));
  got.sum().backward();
  EXPECT_LT(max_abs(shift.grad() - 64.0), 1e-3) << "d(sum)/d(shift) is the 8x8 positions";
  EXPECT_LT(max_abs(skip.grad() - 1.0), 1e-6);
}

TEST(Winograd, AutoTimesEachShapeOnceAndSaysWhatItChose) {
  ModeScope automatic(WinogradMode::Auto);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 16, 12, 12});  // a shape no other test times
  const auto w = weight(16, 16), b = torch::randn({16});
  const auto want = torch::conv2d(x, w, b, 1, 1);
  for (int i = 0; i < 2; ++i) {
    const auto got = winograd_conv2d_if_faster(x, w, b, 1, 1);
    if (got.defined()) EXPECT_LT(max_abs(got - want), 1e-4);
  }
  const auto summary = winograd_summary();
  EXPECT_NE(summary.find("3x3 convolutions by Winograd:"), std::string::npos) << summary;
  EXPECT_NE(summary.find("shapes"), std::string::npos) << summary;
}

TEST(Winograd, TheUNetGivesTheSameOutputAndGradients) {
  // The default-sized UNet (base 32, [1, 2, 4], attention at 7x7), non-zero last layers so
  // every convolution shows in the output: Winograd on against off, sampling and training.
  torch::manual_seed(3);
  ModelConfig c;
  c.num_classes = 10;
  c.class_conditional = true;
  c.zero_init_last = false;
  c.dropout = 0.0;
  DataShape shape;
  shape.num_classes = 10;
  auto net = make_model(c, shape);
  const auto x = torch::randn({4, 1, 28, 28});
  const auto t = torch::randint(0, 1000, {4}, torch::kLong);
  const auto y = torch::randint(0, 10, {4}, torch::kLong);
  auto forward = [&](WinogradMode m) {
    ModeScope scope(m);
    torch::NoGradGuard no_grad;
    net->eval();
    return net->forward(x, t, y);
  };
  const auto off = forward(WinogradMode::Off), on = forward(WinogradMode::On);
  EXPECT_LT(max_abs(on - off), 1e-4 * max_abs(off));
  auto gradients = [&](WinogradMode m) {
    ModeScope scope(m);
    net->train();
    net->zero_grad();
    net->forward(x, t, y).pow(2).mean().backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : net->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const auto g_off = gradients(WinogradMode::Off), g_on = gradients(WinogradMode::On);
  ASSERT_EQ(g_off.size(), g_on.size());
  double worst = 0;
  for (size_t i = 0; i < g_off.size(); ++i)
    worst = std::max(worst, max_abs(g_on[i] - g_off[i]) / std::max(max_abs(g_off[i]), 1e-12));
  EXPECT_LT(worst, 1e-3) << "largest relative gradient difference of any parameter";
}

TEST(Winograd, ChannelsLastGroupNormMatchesTheContiguousOne) {
  // Sampling hands the Winograd output (channels-last memory) to the fused GroupNorm + SiLU
  // as it is; its channels-last kernel must agree with the NCHW one and keep the layout.
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  // 12 channels: one 8-wide vector and a tail of 4 per pixel.
  for (const int64_t c : {48, 12})
    for (const bool silu : {true, false}) {
      const auto x = 3.0 * torch::randn({3, c, 7, 9}) + 1.5;
      const auto w = torch::randn({c}), b = torch::randn({c});
      const int64_t groups = c == 48 ? 8 : 4;
      const auto want = group_norm_act(x, groups, w, b, 1e-5, Activation::SiLU, silu);
      const auto xl = x.contiguous(at::MemoryFormat::ChannelsLast);
      ASSERT_FALSE(xl.is_contiguous());
      const auto got = group_norm_act(xl, groups, w, b, 1e-5, Activation::SiLU, silu);
      EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
      EXPECT_LT(max_abs(got - want), 1e-5 * max_abs(want))
          << c << " channels, " << (silu ? "silu" : "no activation");
      if (silu) {  // against LibTorch's own silu, whose exp is not ours
        const auto ref = torch::silu(torch::group_norm(x, groups, w, b, 1e-5));
        EXPECT_LT(max_abs(got - ref), 1e-5 * max_abs(ref)) << c << " channels";
      }
    }
}

TEST(Winograd, GroupNormSiluHoldsFarFromZero) {
  // γ of 60 puts the SiLU's inputs at ±200 and beyond, where e^-y leaves float range and
  // the kernels clamp it: both layouts still agree with LibTorch's silu (y or 0).
  torch::manual_seed(6);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 16, 5, 5});
  const auto w = torch::full({16}, 60.0f), b = torch::linspace(-30, 30, 16);
  const auto ref = torch::silu(torch::group_norm(x, 4, w, b, 1e-5));
  for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    const auto got = group_norm_act(x.contiguous(format), 4, w, b, 1e-5, Activation::SiLU, true);
    EXPECT_TRUE(torch::isfinite(got).all().item<bool>());
    EXPECT_LT(max_abs(got - ref), 1e-5 * max_abs(ref));
  }
}
