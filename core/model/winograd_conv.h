// Where the networks use the Winograd 3x3 kernel (core/model/winograd.h) instead of
// LibTorch's convolution: float32 on the CPU (not under bf16 autocast), 3x3 kernels with
// stride 1 and padding 1, input channels a multiple of 8, output channels too (sampling
// rounds them up with zero filters: a last layer's 1 or 3). Sampling runs the
// forward by Winograd; training its forward, its input gradient (the same convolution
// with the weight turned 180 degrees and its channels swapped) and its weight gradient
// (through the same transforms, winograd::weight_grad_nhwc). Whether it is faster depends on the CPU (oneDNN runs a direct convolution close to an
// AVX2 core's peak, where 4x fewer multiplies win; an AVX-512 core runs it twice as wide),
// so `auto` times both once per shape and thread count, in this process, and keeps the
// faster. DIFFLAB_WINOGRAD=on|off overrides (tests, benchmarks).
//
// The transformed weights (36 x Cin x Cout, 4x the weight's size) are cached per weight
// tensor and recomputed when the weight changes (its version counter: an EMA update, a
// checkpoint load); a weight being trained (requires_grad, under autograd) changes every
// step, so its transforms are made per call and not kept.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace difflab {

enum class WinogradMode { Auto, On, Off };
// DIFFLAB_WINOGRAD: auto (default), on, off; set_winograd_mode replaces it (tests).
WinogradMode winograd_mode();
void set_winograd_mode(WinogradMode mode);

// True when the kernel can compute this convolution (see above). An output channel count
// that is not a multiple of 8 (a network's last layer) is rounded up with zero filters,
// without gradients only.
bool winograd_applies(const at::Tensor& x, const at::Tensor& weight, int64_t stride,
                      int64_t padding);

// What is added to a convolution's output besides its bias: a residual block's
// time-embedding shift and its skip connection. Sampling adds them in the kernel's output
// transform (a residual in channels-last memory; one in another layout is added after);
// training adds them with LibTorch ops.
struct ConvExtras {
  at::Tensor image_bias;  // (B, Cout): a shift per image and channel, or undefined
  at::Tensor residual;    // (B, Cout, H, W), or undefined
};

// conv2d(x, weight, bias, stride 1, padding 1) + extras by Winograd; x (B, Cin, H, W)
// float32 CPU, weight (Cout, Cin, 3, 3), bias (Cout) or undefined. Not differentiable. The
// result is channels-last in memory (a permuted view of (B, H, W, Cout)) when Cout is a
// multiple of 8, else contiguous; x may be either layout.
at::Tensor winograd_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const ConvExtras& extras = {});

// conv2d + extras by Winograd where it applies and is (measured) faster, differentiable
// when gradients are on; otherwise an undefined tensor, and the caller runs its own.
at::Tensor winograd_conv2d_if_faster(const at::Tensor& x, const at::Tensor& weight,
                                     const at::Tensor& bias, int64_t stride, int64_t padding,
                                     const ConvExtras& extras = {});

// What `auto` chose so far in this process, for the logs: "3x3 convolutions by Winograd:
// 14 of 14 shapes, 1.7-2.3x faster than LibTorch's", or "" before any was timed.
std::string winograd_summary();

}  // namespace difflab
