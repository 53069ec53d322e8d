#include "core/model/flops.h"

namespace difflab {
namespace {
thread_local FlopCounter* t_counter = nullptr;
}

FlopCounter::FlopCounter() : m_previous(t_counter) { t_counter = this; }
FlopCounter::~FlopCounter() { t_counter = m_previous; }
bool FlopCounter::active() { return t_counter != nullptr; }
void FlopCounter::add(int64_t flops) {
  if (t_counter) t_counter->m_flops += flops;
}

}  // namespace difflab
