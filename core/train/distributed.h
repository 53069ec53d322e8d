// Data-parallel training with torch.distributed's engine (c10d, from LibTorch).
//
// Processes start as torchrun starts them: each reads RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR and MASTER_PORT from its environment (`difflab-cli train --nproc N` sets them
// for N local processes). They meet through a TCPStore that rank 0 serves, then form one
// process group: Gloo for CPU tensors, NCCL for CUDA ones where the LibTorch has it.
//
// What the trainer does with it (core/train/trainer.cpp): every rank draws the same global
// batch (same seed, same RNG), trains on its own rows of it, and averages the gradients with
// bucketed all-reduce after backward, so all ranks take the same optimizer step and keep the
// same weights, EMA and RNG. Rank 0 alone writes checkpoints, samples and logs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace difflab {

// A collective or the rendezvous failed: another rank died, timed out or disagreed.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where this process stands in a run, as torchrun describes it.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // ranks on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT
// (LOCAL_RANK defaults to RANK, LOCAL_WORLD_SIZE to WORLD_SIZE). nullopt when WORLD_SIZE
// is unset (a single process). Throws DistributedError naming the variable when one is
// missing or malformed (a RANK outside [0, WORLD_SIZE), a port outside 1-65535).
std::optional<DistEnv> dist_env_from_environment();

// Whether this build can run distributed training on `device`; when not, `why` says what
// is missing (e.g. "built without Gloo: install libgloo-dev and rebuild").
bool distributed_available(c10::Device device, std::string* why = nullptr);

// Collective timeout when the user sets none. Rank 0 pauses the others while it writes
// previews and checkpoints, so this must outlast those; a rank that dies is noticed at
// once anyway (its sockets close).
constexpr std::chrono::seconds kDefaultDistTimeout{600};
// Gradients are all-reduced in buckets of at most this many bytes (DDP's default).
constexpr int64_t kGradientBucketBytes = 25 << 20;

class Distributed {
 public:
  // Rendezvous (TCPStore on master_addr:master_port, served by rank 0) and the process
  // group: NCCL for a CUDA device when every rank on this machine has a GPU of its own
  // (NCCL refuses two ranks on one), else Gloo. `timeout` bounds the rendezvous and every collective. Throws DistributedError
  // naming the address when the ranks cannot meet.
  Distributed(const DistEnv& env, c10::Device device, std::chrono::milliseconds timeout);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;
  bool is_main() const { return rank() == 0; }
  const char* backend() const;  // "gloo" or "nccl"

  // Sums `t` over the ranks, in place (a contiguous tensor).
  void all_reduce_sum(at::Tensor& t);
  // Averages the gradients of `params` over the ranks, in place, packed into buckets of at
  // most kGradientBucketBytes (one all-reduce each). Parameters without a gradient are
  // skipped (the same ones on every rank: they run the same network). Returns the seconds
  // it took, waiting for slower ranks included.
  double average_gradients(const std::vector<at::Tensor>& params);
  // Rank 0's values of `t` on every rank, in place.
  void broadcast(at::Tensor& t);
  // Rank 0's bytes on every rank (the others pass anything).
  std::string broadcast_bytes(const std::string& bytes);
  // True on every rank when `flag` is true on any (a stop request, a time limit).
  bool any(bool flag);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> m;
};

}  // namespace difflab
