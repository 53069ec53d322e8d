// bf16 training on a busy machine: the convolutions whose weight gradient is taken in
// float32 because oneDNN's bf16 kernel for them stalls when another program wants the cores.
//
// What was seen (AMD EPYC, 2 cores, LibTorch 1.13's oneDNN, README "Speed"): for some
// shapes (the default UNet's stride-2 down-samplers and its decoder convolutions over
// concatenated skips) oneDNN computes a bf16 weight gradient with its threads meeting at
// spin barriers many times a call. Alone on the machine that costs nothing (2-7 ms); with
// one other busy program the waiting thread spins while the one it waits for is queued
// behind it, and every barrier costs a scheduler time slice: about 500 ms a call, 80-300x.
// A bf16 training step went from 0.6 s to 3.3 s, slower than float32 (1.5 s) on the same
// busy machine. float32's kernels and bf16's forward and input-gradient kernels did not
// stall. Which shapes take that path depends on oneDNN's heuristics (threads, caches,
// batch), so it is measured per machine, not listed here.
//
// For the flagged shapes the network computes its weight and bias gradients in float32
// (from the bf16 activations, cast up): a little more precise than bf16's, 1.3-1.6x the
// time of the bf16 kernel when the machine is quiet (a few ms a training step).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/model/denoiser_net.h"

namespace difflab {

struct PrecisionProbe;

// A 2-D convolution as oneDNN sees it (square kernel, stride and padding; no dilation or
// groups: the networks here use none).
struct ConvShape {
  int64_t batch = 0, in = 0, out = 0, height = 0, width = 0, kernel = 0, stride = 1, padding = 0;
  std::string key() const;  // "b64_i96_o32_28x28_k3_s1_p1"
  bool operator<(const ConvShape& o) const;
  bool operator==(const ConvShape& o) const { return !(*this < o) && !(o < *this); }
};

// True when any shape is flagged or a recorder is active: the networks' only per-layer
// cost when neither is (one relaxed atomic load).
bool conv_grad_hooks_active();
// Is the weight gradient of this shape taken in float32 under bf16 autocast?
bool float32_weight_grad(const ConvShape& shape);
// Flags (or unflags) shapes for this process.
void set_float32_weight_grad(const std::vector<ConvShape>& shapes, bool on);
// True when CPU autocast to bf16 is on (on this thread).
bool bf16_autocast_on_cpu();

// conv2d(x, weight, bias) in bf16 (as autocast runs it: the same forward), whose backward
// takes the input gradient with the bf16 kernel and the weight and bias gradients in
// float32. Differentiable in x, weight and bias; gradients come back in their types.
at::Tensor conv2d_float32_weight_grad(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias, int64_t stride, int64_t padding);

// While alive on this thread, the networks add the shape of every convolution they run.
class ConvShapeRecorder {
 public:
  ConvShapeRecorder();
  ~ConvShapeRecorder();
  ConvShapeRecorder(const ConvShapeRecorder&) = delete;
  ConvShapeRecorder& operator=(const ConvShapeRecorder&) = delete;
  static ConvShapeRecorder* active();
  void add(const ConvShape& shape);
  const std::vector<ConvShape>& shapes() const { return m_shapes; }  // unique, in call order

 private:
  std::vector<ConvShape> m_shapes;
  ConvShapeRecorder* m_previous = nullptr;
};

// A bf16 weight gradient stalls when, beside two busy threads per core, it takes more than
// this many times the float32 weight gradient of the same shape (what would replace it,
// casts included), and at least kConvStallMinExtraMs more. Both on all the intra-op
// threads under the same load, so the answer holds whether or not the machine was busy
// while it measured, and a small convolution that is slow on a busy machine whatever its
// type (every parallel region waits for a time slice) is not flagged.
inline constexpr double kConvStallRatio = 3.0;
inline constexpr double kConvStallMinExtraMs = 20.0;
bool conv_stalls(double float32_ms, double bf16_ms);

// What protect_stalling_convs found.
struct ConvStallReport {
  int shapes = 0;            // distinct convolution shapes of the network at the training batch
  int flagged = 0;           // of them, weight gradients in float32
  double bf16_ms = 0;        // the flagged shapes' weight gradients beside busy cores,
  double float32_ms = 0;     // summed: oneDNN's bf16 kernel, and float32 (what replaces it)
  bool measured = false;     // false: not applicable (GPU, one thread) or nothing ran
  bool cached = false;       // every shape's answer came from the cache
  std::string reason;        // one line ("" when not applicable)
};

// For bf16 training of `net` on a CPU with more than one intra-op thread: records the
// network's convolution shapes at the probe's batch, times each one's weight gradient in
// bf16 (up to five calls; a stall on any flags the shape) and in float32 beside two busy
// threads per core (0.5-1 s for each shape that stalls, a few ms for the others), flags the ones that stall (conv_stalls), remembers the
// answers per CPU model, LibTorch version, thread count and shape in conv_stalls.tsv next
// to the precision cache. `net` is used, not changed.
ConvStallReport protect_stalling_convs(const DenoiserNet& net, const PrecisionProbe& probe,
                                       c10::Device device);

}  // namespace difflab
