#include "app/cli/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/cli/args.h"

extern char** environ;

namespace difflab::cli {
namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }

// A TCP port on loopback that nothing listens on now (the kernel's choice).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("--nproc: no socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    throw std::runtime_error("--nproc: no free port on 127.0.0.1: " + why);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string self_path() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw std::runtime_error("--nproc: cannot find this program (/proc/self/exe)");
  return std::string(buf.data(), static_cast<size_t>(n));
}

bool is_rank_variable(const char* entry) {
  for (const char* name : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=",
                           "MASTER_ADDR=", "MASTER_PORT="})
    if (std::strncmp(entry, name, std::strlen(name)) == 0) return true;
  return false;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int launch_local_ranks(int argc, char** argv, int nproc) {
  // The children's command line: this one without --nproc, with --threads when unset.
  std::vector<std::string> args;
  bool has_threads = false;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (a.rfind("--nproc=", 0) == 0) continue;
    if (a == "--threads" || a.rfind("--threads=", 0) == 0) has_threads = true;
    args.push_back(a);
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, static_cast<int>(cores) / nproc);
  if (!has_threads) {
    args.push_back("--threads");
    args.push_back(std::to_string(threads));
  }
  const std::string exe = self_path();
  const int port = free_port();
  std::printf("launch: %d ranks on this machine (rendezvous 127.0.0.1:%d), %s thread%s each\n",
              nproc, port, has_threads ? "--threads" : std::to_string(threads).c_str(),
              !has_threads && threads == 1 ? "" : "s");
  std::fflush(stdout);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<pid_t> pids(static_cast<size_t>(nproc), -1);
  std::vector<int> codes(static_cast<size_t>(nproc), -1);
  auto signal_living = [&](int sig) {
    for (size_t r = 0; r < pids.size(); ++r)
      if (pids[r] > 0 && codes[r] < 0) kill(pids[r], sig);
  };
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (!is_rank_variable(*e)) env.emplace_back(*e);
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("WORLD_SIZE=" + std::to_string(nproc));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back("MASTER_PORT=" + std::to_string(port));
    // The ranks stop when the launcher dies (app/cli/cmd_train.cpp reads it).
    env.push_back("DIFFLAB_LAUNCHER_PID=" + std::to_string(getpid()));
    std::vector<char*> cargv, cenv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    for (auto& e : env) cenv.push_back(e.data());
    cenv.push_back(nullptr);
    pid_t pid = -1;
    const int err = posix_spawn(&pid, exe.c_str(), nullptr, nullptr, cargv.data(), cenv.data());
    if (err != 0) {
      std::fprintf(stderr, "launch: cannot start rank %d (%s): %s\n", rank, exe.c_str(),
                   std::strerror(err));
      signal_living(SIGTERM);
      for (auto p : pids)
        if (p > 0) waitpid(p, nullptr, 0);
      return 1;
    }
    pids[static_cast<size_t>(rank)] = pid;
  }

  using Clock = std::chrono::steady_clock;
  // After a rank fails: the others normally notice at their next collective and stop (rank 0
  // saving); those still running after the grace time are terminated, then killed.
  constexpr auto kGrace = std::chrono::seconds(60), kKillAfter = std::chrono::seconds(15);
  std::optional<Clock::time_point> failed_at;
  bool terminated = false, killed = false;
  int living = nproc, signals = 0;
  while (living > 0) {
    // Ctrl-C or kill: to every rank (they stop after the step in progress and rank 0
    // saves); a third one kills ranks that do not stop (e.g. waiting on a lost peer).
    if (const int sig = g_signal.exchange(0)) {
      ++signals;
      if (signals == 3) std::fprintf(stderr, "launch: killing the ranks\n");
      signal_living(signals >= 3 ? SIGKILL : sig);
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      const auto it = std::find(pids.begin(), pids.end(), pid);
      if (it == pids.end()) continue;
      const size_t rank = static_cast<size_t>(it - pids.begin());
      codes[rank] = exit_code(status);
      --living;
      if (codes[rank] != 0 && codes[rank] != 130) {
        std::fprintf(stderr, "launch: rank %zu %s\n", rank, describe(status).c_str());
        if (!failed_at) failed_at = Clock::now();
      }
      continue;
    }
    if (failed_at && !terminated && Clock::now() - *failed_at > kGrace) {
      std::fprintf(stderr, "launch: terminating the ranks still running\n");
      signal_living(SIGTERM);
      terminated = true;
    }
    if (failed_at && terminated && !killed && Clock::now() - *failed_at > kGrace + kKillAfter) {
      signal_living(SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (codes[0] != 0) return codes[0];
  for (int c : codes)
    if (c != 0) return c;
  return 0;
}

}  // namespace difflab::cli
