// Opt-in FLOP counting for benchmarks: while a FlopCounter is alive on this thread,
// the networks add the multiply-adds of their convolutions, linear layers and attention
// matmuls (2 FLOPs each). Costs one branch per layer when no counter is active.
#pragma once

#include <cstdint>

namespace difflab {

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;
  int64_t flops() const { return m_flops; }

  static bool active();
  static void add(int64_t flops);

 private:
  int64_t m_flops = 0;
  FlopCounter* m_previous = nullptr;
};

}  // namespace difflab
