// Host-to-device copies that do not make the host wait for the device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace difflab {

// `t` (a CPU tensor) on `device`, as `dtype`. On CUDA the copy goes through pinned
// (page-locked) memory and is queued behind the work already on the stream: a plain
// `.to(cuda)` from pageable memory synchronises the stream, so a training step that copies
// its batch would wait for the previous step to finish and the GPU would idle while the
// host prepares the next one (LibTorch's copy: cudaMemcpyAsync, then a stream sync unless
// non_blocking). Elsewhere (CPU) the same as t.to(device, dtype).
at::Tensor to_device(const at::Tensor& t, c10::Device device, c10::ScalarType dtype);
at::Tensor to_device(const at::Tensor& t, c10::Device device);

}  // namespace difflab
