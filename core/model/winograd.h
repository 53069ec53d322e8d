// 3x3 convolution (stride 1, padding 1) by Winograd's minimal filtering, F(4x4, 3x3)
// (Lavin & Gray 2016, arXiv 1509.09308): each 6x6 input tile and each filter go to a
// 36-point transform domain where the convolution is 36 independent matrix products
// (tiles x Cin) @ (Cin x Cout), then back to 4x4 outputs. 36 multiplies per 16 outputs
// per channel pair instead of 144: 4x fewer than a direct convolution. Used for
// sampling and for training's forward and input gradient where it measures faster than
// oneDNN's direct kernels (a CPU without AVX-512 runs those close to its peak, so fewer
// operations is the only lever left); core/model/winograd_conv.h says where.
//
// Torch-free: raw float32 pointers, NHWC activations, OpenMP threads (the same runtime
// LibTorch's at::parallel_for uses, so torch::set_num_threads applies). The loops are
// GCC vector extensions compiled for AVX-512, AVX2 and baseline x86-64 and picked at load
// time. Accuracy: float32 rounding of the transforms, about 1e-6 of the output's scale
// for unit-scale data (tests/model/test_winograd.cpp measures it against torch's conv2d).
#pragma once

#include <cstdint>

namespace difflab::winograd {

constexpr int kPoints = 36;  // 6x6 transform-domain points

// Channel counts the kernel takes (multiples of 8); others go to the direct convolution.
bool supports(int64_t in_channels, int64_t out_channels);

// weight (Cout, Cin, 3, 3) contiguous → u: G g Gᵀ per channel pair, 36 x Cin x Cout
// floats, each point's (Cin x Cout) matrix stored as panels of 16 output channels (8 for a
// last odd one), each panel Cin x 16 row-major (OpenMP threads).
void transform_weights(const float* weight, int64_t out_channels, int64_t in_channels, float* u);

// What the output transform adds besides the convolution, so that sampling does not make
// another pass over the result for it (a residual block's time-embedding shift and its
// skip connection).
struct Extras {
  bool bias_per_image = false;  // bias is (B, Cout): a row per image, not one (Cout)
  const float* residual = nullptr;  // (B, H, W, Cout) added to y, or null; not y itself
};

// y (B, H, W, Cout) = conv3x3(x (B, H, W, Cin)) + bias (+ residual), stride 1, zero padding
// 1. `u` from transform_weights; `bias` may be null. Threads: the OpenMP team
// (omp_get_max_threads).
void conv3x3_nhwc(const float* x, int64_t batch, int64_t height, int64_t width,
                  int64_t in_channels, const float* u, const float* bias, int64_t out_channels,
                  float* y, const Extras& extras = {});

// dweight (Cout, Cin, 3, 3) = the weight gradient of that convolution: x (B, H, W, Cin) and
// dy (B, H, W, Cout) channels-last. Through the same transforms (dU = Σ over tiles of
// V(tile)ᵀ · A dy Aᵀ per point, then Gᵀ dU G): 4x fewer multiplies than the direct sum.
void weight_grad_nhwc(const float* x, const float* dy, int64_t batch, int64_t height,
                      int64_t width, int64_t in_channels, int64_t out_channels, float* dweight);

}  // namespace difflab::winograd
