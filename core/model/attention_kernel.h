// Self-attention over small spatial maps, as one batched CPU kernel.
//
// LibTorch 1.13's CPU bmm runs its batch serially, one BLAS call per matrix behind a
// select + resolve_conj per element: for the UNet's 7×7 attention (batch·heads = 256
// matrices of 49×49) that dispatch overhead, not arithmetic, took ~17 % of a training
// step. This kernel calls BLAS directly per (batch, head) inside at::parallel_for, with a
// hand-written backward. Unless q, k and v are all float32 CPU tensors (CUDA, half,
// mixed devices), the plain bmm formulation runs instead.
#pragma once

#include <ATen/core/Tensor.h>

namespace difflab {

// q, k, v: (N, d, L) — N = batch·heads, d channels per head, L positions.
// Returns (N, d, L): out[:, :, i] = Σ_j softmax_j(scale · q_iᵀ k_j) v_j.
at::Tensor multihead_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale);
// Sampling's form: qkv (B, 3C, H, W) in channels-last memory (what the 1x1 convolution
// hands over), head h's q, k and v at channels [3dh, 3dh + d), [3dh + d, 3dh + 2d),
// [3dh + 2d, 3dh + 3d) (as multihead_attention after reshape(B·heads, 3d, H·W) and chunk);
// returns (B, C, H, W) channels-last, head h at channels [dh, dh + d). Reads and writes the
// channels-last memory in place of the four copies the (N, d, L) form needs. Not
// differentiable; float32 CPU only (the caller checks: attention_nhwc_applies).
bool attention_nhwc_applies(const at::Tensor& qkv);
at::Tensor multihead_attention_nhwc(const at::Tensor& qkv, int64_t heads, double scale);
// The same with bmm + softmax (reference and fallback).
at::Tensor multihead_attention_reference(const at::Tensor& q, const at::Tensor& k,
                                         const at::Tensor& v, double scale);

}  // namespace difflab
