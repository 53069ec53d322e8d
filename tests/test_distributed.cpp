// Data-parallel training (core/train/distributed.h): ranks on loopback through a real
// TCPStore and Gloo process group, run as threads of this test. The CLI's launcher, and a
// rank killed mid-run, are tested with processes in tests/cli_distributed.sh.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "core/train/distributed.h"
#include "core/train/trainer.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

std::string why_unavailable() {
  std::string why;
  return distributed_available(torch::kCPU, &why) ? "" : why;
}

#define REQUIRE_DISTRIBUTED()                                   \
  do {                                                          \
    const std::string why = why_unavailable();                  \
    if (!why.empty()) GTEST_SKIP() << why;                      \
  } while (0)

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Runs `body(rank, group)` on `world` threads that form one process group; returns what
// each rank's body returned. An exception on any rank fails the test.
template <class T>
std::vector<T> run_ranks(int world, const std::function<T(int, std::shared_ptr<Distributed>)>& body,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const int port = free_port();
  std::vector<std::future<T>> futures;
  for (int r = 0; r < world; ++r)
    futures.push_back(std::async(std::launch::async, [=] {
      DistEnv env;
      env.rank = r;
      env.world_size = world;
      env.local_rank = r;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      auto group = std::make_shared<Distributed>(env, torch::kCPU, timeout);
      return body(r, group);
    }));
  std::vector<T> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

// 8×8 grey images of four classes (a bright quadrant each, with noise so no two agree).
std::shared_ptr<DatasetSplits> quadrant_images(int64_t n = 128) {
  auto data = std::make_shared<DatasetSplits>();
  auto make = [](int64_t count, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    TensorDataset s;
    s.labels = torch::randint(0, 4, {count}, gen, torch::kLong);
    auto img = torch::randint(0, 60, {count, 1, 8, 8}, gen, torch::kLong);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t k = s.labels[i].item<int64_t>();
      img[i][0].narrow(0, (k / 2) * 4, 4).narrow(1, (k % 2) * 4, 4).add_(190);
    }
    s.data = img.to(torch::kUInt8);
    return s;
  };
  data->train = make(n, 1);
  data->test = make(32, 2);
  data->shape = DataShape{1, 8, 8, false, 4};
  data->class_names = {"a", "b", "c", "d"};
  return data;
}

// A small class-conditional UNet with dropout, label dropout, warm-up, clipping and EMA:
// every random draw of a step matters.
Config tiny_config(int64_t batch) {
  Config c;
  c.data.image_size = 8;
  c.diffusion.timesteps = 50;
  c.model.base_channels = 8;
  c.model.channel_mult = {1, 2};
  c.model.num_res_blocks = 1;
  c.model.attention_resolutions = {4};
  c.model.num_heads = 2;
  c.model.norm_groups = 4;
  c.model.dropout = 0.2;
  c.model.class_conditional = true;
  c.train.batch_size = batch;
  c.train.lr = 2e-3;
  c.train.warmup_steps = 2;
  c.train.grad_clip = 0.5;  // small enough to clip: the norm must be the global one
  c.train.ema_start = 1;
  c.train.ema_decay = 0.9;
  c.train.p_uncond = 0.3;
  c.train.precision = Precision::Fp32;
  c.sample.steps = 5;
  c.sample.n = 4;
  return c;
}

std::vector<torch::Tensor> weights(const DenoiserNet& net) {
  std::vector<torch::Tensor> out;
  for (auto& p : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

// Largest |a − b| over all parameters, relative to the largest |a|.
double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
    scale = std::max(scale, a[i].abs().max().item<double>());
  }
  return diff / scale;
}

struct RankResult {
  std::vector<torch::Tensor> model, ema;
  std::vector<double> losses, grad_norms;
  int world = 0;
};

// `steps` steps of one trainer per rank (per-rank batch `batch`), optionally from a
// checkpoint, optionally saving one (rank 0).
RankResult train_ranks_step(const Config& c, std::shared_ptr<DatasetSplits> data, int steps,
                            std::shared_ptr<Distributed> group, const std::string& resume = "",
                            const std::string& save = "") {
  Trainer t(c, data, torch::kCPU, group);
  if (!resume.empty()) t.load_checkpoint(resume);
  RankResult r;
  for (int i = 0; i < steps; ++i) {
    const StepResult step = t.train_step();
    r.losses.push_back(step.loss);
    r.grad_norms.push_back(step.grad_norm);
  }
  if (!save.empty() && (!group || group->is_main())) t.save_checkpoint(save);
  if (group) group->barrier();  // the file is there before anyone reads it
  r.model = weights(t.model());
  r.ema = weights(t.ema_model());
  r.world = t.world_size();
  return r;
}

void expect_two_ranks_match_one(Config c) {
  auto data = quadrant_images();
  const int steps = 6;
  Config big = c;
  big.train.batch_size = 2 * c.train.batch_size;
  const RankResult alone = train_ranks_step(big, data, steps, nullptr);
  const auto ranks = run_ranks<RankResult>(2, [&](int, std::shared_ptr<Distributed> g) {
    return train_ranks_step(c, data, steps, g);
  });
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(ranks[0].world, 2);
  // The ranks agree with each other exactly: they apply the same averaged gradients.
  EXPECT_EQ(max_difference(ranks[0].model, ranks[1].model), 0.0);
  EXPECT_EQ(max_difference(ranks[0].ema, ranks[1].ema), 0.0);
  // And with one process on the doubled batch, to float rounding (sums in another order).
  EXPECT_LT(max_difference(alone.model, ranks[0].model), 2e-5);
  EXPECT_LT(max_difference(alone.ema, ranks[0].ema), 2e-5);
  for (int i = 0; i < steps; ++i) {
    EXPECT_NEAR(ranks[0].losses[i], alone.losses[i], 1e-5 * std::abs(alone.losses[i]) + 1e-6) << i;
    EXPECT_EQ(ranks[0].losses[i], ranks[1].losses[i]) << i;  // the loss is the global mean
    // The norm before clipping, of the averaged gradients: the gradient of the global mean
    // (AdamW and clipping hide a wrong scale from the weights; this does not).
    EXPECT_NEAR(ranks[0].grad_norms[i], alone.grad_norms[i], 1e-4 * alone.grad_norms[i]) << i;
    EXPECT_EQ(ranks[0].grad_norms[i], ranks[1].grad_norms[i]) << i;
  }
  // Training moved the weights (a test that compares two unchanged networks proves nothing).
  Trainer fresh(big, data, torch::kCPU);
  EXPECT_GT(max_difference(weights(fresh.model()), alone.model), 1e-3);
}

}  // namespace

TEST(DistEnv, ReadsTorchrunVariables) {
  unsetenv("WORLD_SIZE");
  unsetenv("RANK");
  EXPECT_FALSE(dist_env_from_environment().has_value());
  setenv("WORLD_SIZE", "4", 1);
  try {
    dist_env_from_environment();
    FAIL() << "WORLD_SIZE without RANK was accepted";
  } catch (const DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find("RANK"), std::string::npos) << e.what();
  }
  setenv("RANK", "4", 1);
  EXPECT_THROW(dist_env_from_environment(), DistributedError);  // outside [0, 4)
  setenv("RANK", "2", 1);
  setenv("MASTER_ADDR", "10.0.0.7", 1);
  setenv("MASTER_PORT", "70000", 1);
  try {
    dist_env_from_environment();
    FAIL() << "port 70000 was accepted";
  } catch (const DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_PORT"), std::string::npos) << e.what();
  }
  setenv("MASTER_PORT", "29411", 1);
  const auto env = dist_env_from_environment();
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->rank, 2);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 2);  // LOCAL_RANK unset: the rank
  EXPECT_EQ(env->master_addr, "10.0.0.7");
  EXPECT_EQ(env->master_port, 29411);
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
}

TEST(Distributed, CollectivesOnLoopback) {
  REQUIRE_DISTRIBUTED();
  const auto out = run_ranks<std::vector<double>>(3, [](int rank, std::shared_ptr<Distributed> g) {
    std::vector<double> r;
    auto t = torch::tensor({1.0 + rank, 10.0 * rank}, torch::kDouble);
    g->all_reduce_sum(t);
    r.push_back(t[0].item<double>());
    r.push_back(t[1].item<double>());
    r.push_back(g->any(rank == 2) ? 1 : 0);
    r.push_back(g->any(false) ? 1 : 0);
    const std::string bytes = g->broadcast_bytes(rank == 0 ? std::string("rank 0\0says", 11) : "x");
    r.push_back(bytes == std::string("rank 0\0says", 11) ? 1 : 0);
    // Gradients of two parameters, averaged in place; one without a gradient is left alone.
    auto a = torch::full({3}, 1.0f * rank).set_requires_grad(true);
    auto b = torch::full({2, 2}, 3.0f * rank).set_requires_grad(true);
    auto none = torch::zeros({2}).set_requires_grad(true);
    a.mutable_grad() = torch::full({3}, 1.0f * rank);
    b.mutable_grad() = torch::full({2, 2}, 3.0f * rank);
    EXPECT_GE(g->average_gradients({a, none, b}), 0.0);
    r.push_back(a.grad()[1].item<double>());
    r.push_back(b.grad()[1][1].item<double>());
    r.push_back(none.grad().defined() ? 1 : 0);
    g->barrier();
    return r;
  });
  for (int rank = 0; rank < 3; ++rank) {
    const auto& r = out[rank];
    EXPECT_EQ(r[0], 6.0);   // 1 + 2 + 3
    EXPECT_EQ(r[1], 30.0);  // 0 + 10 + 20
    EXPECT_EQ(r[2], 1.0);
    EXPECT_EQ(r[3], 0.0);
    EXPECT_EQ(r[4], 1.0);
    EXPECT_FLOAT_EQ(r[5], 1.0);  // (0 + 1 + 2) / 3
    EXPECT_FLOAT_EQ(r[6], 3.0);  // (0 + 3 + 6) / 3
    EXPECT_EQ(r[7], 0.0);
  }
}

TEST(Distributed, TwoRanksMatchOneRankWithTheDoubleBatch) {
  REQUIRE_DISTRIBUTED();
  expect_two_ranks_match_one(tiny_config(8));
}

TEST(Distributed, TwoRanksMatchOneRankWithLossAwareTimesteps) {
  REQUIRE_DISTRIBUTED();
  Config c = tiny_config(8);
  c.train.timestep_sampler = TimestepSamplerKind::LossAware;
  c.train.timestep_uniform_mix = 0.5;
  expect_two_ranks_match_one(c);
}

TEST(Distributed, TwoRanksMatchOneRankForFlowMatchingAndEdm) {
  REQUIRE_DISTRIBUTED();
  Config c = tiny_config(8);
  c.diffusion.objective = Objective::FlowMatching;
  c.diffusion.flow_t_sampling = FlowTimeSampling::LogitNormal;
  expect_two_ranks_match_one(c);
  c.diffusion.objective = Objective::Edm;
  expect_two_ranks_match_one(c);
}

TEST(Distributed, ResumesOnEveryRankFromOneCheckpoint) {
  REQUIRE_DISTRIBUTED();
  auto data = quadrant_images();
  const Config c = tiny_config(8);
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / "distributed_resume";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ckpt = (dir / "step_4.pt").string();
  // 4 steps, a checkpoint, then 4 more on a new pair of ranks that both load it ...
  run_ranks<RankResult>(2, [&](int, std::shared_ptr<Distributed> g) {
    return train_ranks_step(c, data, 4, g, "", ckpt);
  });
  ASSERT_TRUE(fs::exists(ckpt));
  const auto resumed = run_ranks<RankResult>(2, [&](int, std::shared_ptr<Distributed> g) {
    return train_ranks_step(c, data, 4, g, ckpt);
  });
  // ... is the run that never stopped.
  const auto straight = run_ranks<RankResult>(2, [&](int, std::shared_ptr<Distributed> g) {
    return train_ranks_step(c, data, 8, g);
  });
  EXPECT_EQ(max_difference(straight[0].model, resumed[0].model), 0.0);
  EXPECT_EQ(max_difference(straight[0].ema, resumed[0].ema), 0.0);
  EXPECT_EQ(max_difference(resumed[0].model, resumed[1].model), 0.0);
  // One process can continue a two-rank run (the batch position counts examples).
  const RankResult alone = train_ranks_step(c, data, 2, nullptr, ckpt);
  EXPECT_EQ(alone.world, 1);
  EXPECT_GT(max_difference(resumed[0].model, alone.model), 0.0);
}

TEST(Distributed, ARankThatLeavesStopsTheOthersWithAClearError) {
  REQUIRE_DISTRIBUTED();
  // Rank 1 leaves the group after one step (its process group is destroyed, closing its
  // sockets, as a killed process's would be); rank 0's next step fails quickly instead of
  // waiting, and its weights are those of the last step both finished.
  auto data = quadrant_images();
  const Config c = tiny_config(8);
  const auto start = std::chrono::steady_clock::now();
  const auto out = run_ranks<std::string>(
      2,
      [&](int rank, std::shared_ptr<Distributed> g) -> std::string {
        Trainer t(c, data, torch::kCPU, g);
        t.train_step();
        if (rank == 1) return "left";
        const auto before = weights(t.model());
        const int64_t step = t.step();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        try {
          t.train_step();
          return "no error";
        } catch (const DistributedError& e) {
          EXPECT_EQ(t.step(), step);
          EXPECT_EQ(max_difference(before, weights(t.model())), 0.0);
          return e.what();
        }
      },
      std::chrono::seconds(30));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(out[0].find("rank 0 of 2"), std::string::npos) << out[0];
  EXPECT_NE(out[0].find("failed"), std::string::npos) << out[0];
  EXPECT_LT(seconds, 30.0) << out[0];
}
