// Dropout whose random mask comes from a counter-based hash instead of LibTorch's
// global generator.
//
// On the CPU, LibTorch 1.13's bernoulli_ draws one number at a time from a locked
// Mersenne Twister: profiled on the default MNIST UNet it took 11 % of a training step.
// Hashing (seed, call, element index) is parallel, needs no shared state, and makes the
// mask a pure function of the seed, so runs are reproducible and resumable without
// touching the global generator. CUDA tensors get the same masks from the same hash as
// tensor ops on the device.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace difflab {

// Sets this thread's dropout seed and restarts its call counter. The trainer calls it
// once per step with a value drawn from the run's own generator. `first_row`: where this
// process's rows start in the global batch of a data-parallel step (core/train/
// distributed.h), so that each row gets the mask one process training the whole batch
// would give it.
void set_dropout_seed(uint64_t seed, int64_t first_row = 0);

// Inverted dropout: keeps each element with probability 1 − p and scales kept ones by
// 1 / (1 − p). Returns x unchanged when p == 0. Each call takes the next counter value.
at::Tensor hashed_dropout(const at::Tensor& x, double p);

// The {0, 1/(1−p)} mask alone (float32, CPU), for tests: element i of call `call` is
// element `first_element` + i of the hashed sequence.
at::Tensor hashed_dropout_mask(at::IntArrayRef shape, double p, uint64_t seed, uint64_t call,
                               int64_t first_element = 0);
// The same mask computed with tensor ops on `like`'s device, dtype and shape (what CUDA
// tensors use); on a CPU tensor it must equal hashed_dropout_mask (tested).
at::Tensor hashed_dropout_mask_on_device(const at::Tensor& like, double p, uint64_t seed,
                                         uint64_t call, int64_t first_element = 0);

}  // namespace difflab
