#!/usr/bin/env bash
# Front-end benchmark, end to end: Release build in build-bench/, generated inputs in
# bench/out/ (gitignored), the in-process benchmark, then the real CLI on the 1,000 files.
#
#   bench/run.sh [--runs N]        (from anywhere; uses one core to build)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build-bench
out=bench/out

echo "== build (Release, $build, -j1)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRAY_TESTS=OFF >/dev/null
cmake --build "$build" -j1 --target gray_bench gray

echo "== generate inputs into $out"
rm -rf "$out"
python3 bench/gen.py "$out"
gray="$build/runtime/gray"

echo "== every input checks clean with 'gray check'"
for f in "$out"/single/*.gray; do
  "$gray" check --color=never "$f" || { echo "run.sh: $f does not check clean" >&2; exit 1; }
done
"$gray" check --color=never "$out/many" || { echo "run.sh: $out/many does not check clean" >&2; exit 1; }
echo "all clean"

echo
echo "== in-process benchmark"
"$build/bench/gray_bench" "$out" "$@"

echo
echo "== the CLI: gray check on $(ls "$out"/many/*.gray | wc -l) files in one invocation"
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs 10 --export-markdown "$out/hyperfine.md" "$gray check --color=never $out/many"
  hyperfine --warmup 1 --runs 5 "$gray check --color=never $out/single/lines-100000.gray"
else
  echo "(hyperfine not installed: apt-get install -y hyperfine; using /usr/bin/time -v)"
  for i in 1 2 3; do
    /usr/bin/time -v "$gray" check --color=never "$out/many" 2>&1 | grep -E 'Elapsed|Maximum resident|User time|System time'
  done
fi
