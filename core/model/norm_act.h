// GroupNorm followed by SiLU (or nothing) as one CPU kernel, forward and backward.
//
// One read of the input for the statistics (two passes over a group that sits in cache),
// one pass that writes act(γ·x̂ + β); the backward recomputes x̂ and the activation from the
// saved input instead of storing them. The SiLU loops are written in 8-float vectors with
// their own exp (core/model/simd.h), the sums are plain loops GCC vectorises; all compiled
// for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and baseline x86-64 and chosen when the
// program loads (function multiversioning; ATen's at::vec would need SLEEF's headers for
// exp, which Debian's libtorch-dev does not ship).
//
// Measured on an AMD EPYC, 2 threads (README, "Speed"): in float32 it made a training step
// 1.2x and a DDIM step 1.2x faster than group_norm + silu. A bfloat16 version (bf16 in and
// out, float32 statistics) ran 3x slower than its float32 twin in a micro-benchmark (the
// 16 -> 32 -> 16-bit conversions) and no faster than the unfused ops in the network, so bf16
// inputs take group_norm_act_reference: statistics in float32, result back in bf16.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/config/enums.h"

namespace difflab {

// act(GroupNorm(x)) for x (N, C, ...) float32 on the CPU, `groups` dividing C, float32
// weight and bias (C). Differentiable in x, weight and bias. Activations other than SiLU,
// other devices and other types (bf16 under autocast) take group_norm_act_reference.
at::Tensor group_norm_act(const at::Tensor& x, int64_t groups, const at::Tensor& weight,
                          const at::Tensor& bias, double eps, Activation act, bool activate);
// The same from LibTorch ops: group_norm in float32 (LibTorch 1.13's CPU group_norm refuses
// bf16 next to float32 weights), back to x's type, then the activation.
at::Tensor group_norm_act_reference(const at::Tensor& x, int64_t groups, const at::Tensor& weight,
                                    const at::Tensor& bias, double eps, Activation act,
                                    bool activate);

}  // namespace difflab
