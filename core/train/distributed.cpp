#include "core/train/distributed.h"

#include <torch/torch.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#if defined(DIFFLAB_HAVE_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#if defined(DIFFLAB_HAVE_NCCL)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace difflab {
namespace {

// An integer environment variable; nullopt when unset. Throws naming it when malformed.
std::optional<long> env_int(const char* name, long lo, long hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi)
    throw DistributedError(std::string("environment variable ") + name + "='" + v +
                           "' is not a whole number in " + std::to_string(lo) + ".." +
                           std::to_string(hi));
  return x;
}

}  // namespace

std::optional<DistEnv> dist_env_from_environment() {
  const auto world = env_int("WORLD_SIZE", 1, 1 << 16);
  if (!world) return std::nullopt;
  DistEnv env;
  env.world_size = static_cast<int>(*world);
  const auto rank = env_int("RANK", 0, env.world_size - 1);
  if (!rank)
    throw DistributedError("WORLD_SIZE=" + std::to_string(env.world_size) +
                           " is set but RANK is not (torchrun sets both)");
  env.rank = static_cast<int>(*rank);
  env.local_rank = static_cast<int>(env_int("LOCAL_RANK", 0, 1 << 16).value_or(env.rank));
  env.local_world_size =
      static_cast<int>(env_int("LOCAL_WORLD_SIZE", 1, 1 << 16).value_or(env.world_size));
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  env.master_port = static_cast<int>(env_int("MASTER_PORT", 1, 65535).value_or(29500));
  return env;
}

bool distributed_available(c10::Device device, std::string* why) {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
#if defined(DIFFLAB_HAVE_NCCL)
  if (device.is_cuda()) return true;
#endif
#if defined(DIFFLAB_HAVE_GLOO)
  (void)no;
  return true;  // Gloo also carries CUDA tensors in a CUDA LibTorch
#else
  (void)device;
  return no("this build has no Gloo (the c10d CPU backend): install libgloo-dev and rebuild");
#endif
}

#if defined(DIFFLAB_HAVE_GLOO)

struct Distributed::Impl {
  DistEnv env;
  std::chrono::milliseconds timeout;
  c10::Device device = c10::kCPU;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#if defined(DIFFLAB_HAVE_NCCL)
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
  bool uses_nccl() const { return static_cast<bool>(nccl); }
#else
  bool uses_nccl() const { return false; }
#endif

  // Runs one collective on the group and waits for it; any failure becomes a
  // DistributedError that says which rank saw it and what it was doing.
  template <class Op>
  void run(const char* what, Op op) {
    try {
#if defined(DIFFLAB_HAVE_NCCL)
      if (nccl) {
        op(*nccl)->wait();
        return;
      }
#endif
      op(*gloo)->wait();
    } catch (const c10::Error& e) {
      fail(what, e.what_without_backtrace());
    } catch (const std::exception& e) {
      fail(what, e.what());
    }
  }
  [[noreturn]] void fail(const char* what, const std::string& detail) const {
    std::string d = detail;
    if (const auto nl = d.find('\n'); nl != std::string::npos) d.resize(nl);
    throw DistributedError("rank " + std::to_string(env.rank) + " of " +
                           std::to_string(env.world_size) + ": " + what +
                           " failed (another rank stopped, timed out after " +
                           std::to_string(timeout.count() / 1000) +
                           " s, or the network failed): " + d);
  }
};

Distributed::Distributed(const DistEnv& env, c10::Device device, std::chrono::milliseconds timeout)
    : m(std::make_unique<Impl>()) {
  m->env = env;
  m->timeout = timeout;
  m->device = device;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    // Under torchrun the agent may serve the store already (it says so in
    // TORCHELASTIC_USE_AGENT_STORE); then rank 0 is a client like the others.
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    so.isServer = env.rank == 0 && !(agent && std::string(agent) == "True");
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    m->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    std::string d = e.what();
    if (const auto nl = d.find('\n'); nl != std::string::npos) d.resize(nl);
    throw DistributedError("rank " + std::to_string(env.rank) + " of " +
                           std::to_string(env.world_size) + ": cannot meet the other ranks at " +
                           where + " (MASTER_ADDR:MASTER_PORT" +
                           (env.rank == 0 ? ", served by this rank" : "") + "): " + d);
  }
  try {
#if defined(DIFFLAB_HAVE_NCCL)
    if (device.is_cuda() && env.local_world_size <= static_cast<int>(torch::cuda::device_count())) {
      // NCCL's wait() returns at once unless asked to block; then a dead rank or a timeout
      // reaches this thread as an error (and the last common step is saved) instead of a
      // hang or the watchdog's abort. The names of LibTorch 1.x and 2.x.
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      c10::cuda::set_device(device.index() < 0 ? 0 : device.index());
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      m->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(m->store, env.rank, env.world_size,
                                                            opts);
      return;
    }
#endif
    (void)device;
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Loopback runs bind to loopback; otherwise GLOO_SOCKET_IFNAME picks the interface (as
    // in PyTorch), else the address this machine's hostname resolves to.
    const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (loopback)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else if (ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    m->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(m->store, env.rank, env.world_size, opts);
  } catch (const std::exception& e) {
    m->fail(("forming the process group through " + where).c_str(), e.what());
  }
}

Distributed::~Distributed() = default;

int Distributed::rank() const { return m->env.rank; }
int Distributed::world_size() const { return m->env.world_size; }
const char* Distributed::backend() const { return m->uses_nccl() ? "nccl" : "gloo"; }

// NCCL carries only CUDA tensors: CPU ones (flags, sizes, bytes) travel through the device.
void Distributed::all_reduce_sum(at::Tensor& t) {
  const bool via_device = m->uses_nccl() && !t.is_cuda();
  std::vector<at::Tensor> ts{via_device ? t.to(m->device) : t};
  m->run("all-reduce", [&](auto& pg) { return pg.allreduce(ts); });
  if (via_device) t.copy_(ts[0]);
}

double Distributed::average_gradients(const std::vector<at::Tensor>& params) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  const double scale = 1.0 / m->env.world_size;
  for (size_t i = 0; i < grads.size();) {
    // One bucket: consecutive gradients of one type and device, up to the byte budget.
    size_t j = i;
    int64_t bytes = 0;
    std::vector<at::Tensor> flat;
    while (j < grads.size() && grads[j].scalar_type() == grads[i].scalar_type() &&
           grads[j].device() == grads[i].device() &&
           (j == i || bytes + static_cast<int64_t>(grads[j].nbytes()) <= kGradientBucketBytes)) {
      bytes += static_cast<int64_t>(grads[j].nbytes());
      flat.push_back(grads[j].reshape({-1}));
      ++j;
    }
    auto bucket = torch::cat(flat);
    all_reduce_sum(bucket);
    bucket.mul_(scale);
    int64_t offset = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = grads[k].numel();
      grads[k].copy_(bucket.slice(0, offset, offset + n).view_as(grads[k]));
      offset += n;
    }
    i = j;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Distributed::broadcast(at::Tensor& t) {
  const bool via_device = m->uses_nccl() && !t.is_cuda();
  std::vector<at::Tensor> ts{via_device ? t.to(m->device) : t};
  m->run("broadcast", [&](auto& pg) { return pg.broadcast(ts); });
  if (via_device) t.copy_(ts[0]);
}

std::string Distributed::broadcast_bytes(const std::string& bytes) {
  auto size = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong);
  broadcast(size);
  const int64_t n = size.item<int64_t>();
  auto data = torch::empty({std::max<int64_t>(n, 1)}, torch::kUInt8);
  if (is_main()) std::memcpy(data.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  broadcast(data);
  return std::string(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()),
                     static_cast<size_t>(n));
}

bool Distributed::any(bool flag) {
  auto t = torch::tensor({flag ? 1 : 0}, torch::kInt);
  all_reduce_sum(t);
  return t.item<int>() > 0;
}

void Distributed::barrier() {
  m->run("barrier", [&](auto& pg) { return pg.barrier(); });
}

#else  // no Gloo: the type exists, and says why it cannot be made

struct Distributed::Impl {};
Distributed::Distributed(const DistEnv&, c10::Device, std::chrono::milliseconds) {
  throw DistributedError(
      "this build has no Gloo (the c10d CPU backend): install libgloo-dev and rebuild");
}
Distributed::~Distributed() = default;
int Distributed::rank() const { return 0; }
int Distributed::world_size() const { return 1; }
const char* Distributed::backend() const { return "none"; }
void Distributed::all_reduce_sum(at::Tensor&) {}
double Distributed::average_gradients(const std::vector<at::Tensor>&) { return 0.0; }
void Distributed::broadcast(at::Tensor&) {}
std::string Distributed::broadcast_bytes(const std::string& bytes) { return bytes; }
bool Distributed::any(bool flag) { return flag; }
void Distributed::barrier() {}

#endif

}  // namespace difflab
