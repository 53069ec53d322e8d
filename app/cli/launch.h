// `difflab-cli train --nproc N`: starts N copies of this program as the ranks of one
// data-parallel run on this machine, as torchrun --standalone does.
#pragma once

namespace difflab::cli {

// Runs argv (a `train` command line) as `nproc` ranks: each child gets RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, the same
// arguments without --nproc, and --threads cores/N unless the line sets --threads.
// SIGINT and SIGTERM are forwarded to every rank (they stop after the step in progress and
// rank 0 saves); the third one kills them. Ranks stop when the launcher dies
// (DIFFLAB_LAUNCHER_PID, PR_SET_PDEATHSIG). When a rank fails the others are given time to notice and stop on their
// own (rank 0 then saves the last good step), then are terminated. Returns rank 0's exit
// code, or the first failing rank's when rank 0 succeeded.
int launch_local_ranks(int argc, char** argv, int nproc);

}  // namespace difflab::cli
