#!/usr/bin/env bash
# Simulation benchmark, end to end: a Release build, then gray_sim_bench on inputs it generates
# in bench/out/sim/ (gitignored): one `simulate` spanning two hours of virtual holds,
# `simulate --runs` throughput, and an align over 1,000 simulated hosts (per-host overhead and
# peak memory). Each figure is printed with its target; the in-process cases also run as a
# separate `gray` process, start-up included.
#
#   bench/sim_bench.sh [--runs N] [--hosts N] [--repeat N]      (from anywhere; one core to build)
#
# BUILD_DIR=build-sim bench/sim_bench.sh  reuses an existing build directory instead.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build-bench}

echo "== build (${build}, -j1)"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRAY_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j1 --target gray_sim_bench gray

echo
"$build/bench/gray_sim_bench" bench/out/sim --gray "$build/runtime/gray" "$@"
