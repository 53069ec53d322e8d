#include "core/util/device_copy.h"

#include <ATen/ATen.h>

namespace difflab {

at::Tensor to_device(const at::Tensor& t, c10::Device device, c10::ScalarType dtype) {
  if (!device.is_cuda() || !t.device().is_cpu()) return t.to(device, dtype);
  // pin_memory() copies into the caching host allocator's pinned blocks; the allocator
  // keeps a block from reuse until the copy queued from it has run.
  return t.to(dtype).contiguous().pin_memory().to(device, dtype, /*non_blocking=*/true);
}

at::Tensor to_device(const at::Tensor& t, c10::Device device) {
  return to_device(t, device, t.scalar_type());
}

}  // namespace difflab
