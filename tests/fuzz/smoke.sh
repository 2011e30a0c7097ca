#!/usr/bin/env bash
# Short fuzzing smoke test: runs the front-end fuzzer from the seed corpus for a bounded time
# and fails on any crash, timeout, leak or sanitizer report. Also replays every saved
# regression input first.
#
#   tests/fuzz/smoke.sh build-fuzz/tests/fuzz/gray_front_end_fuzz [SECONDS]
#
# The corpus is copied to a scratch directory so new inputs never land in the source tree.
set -euo pipefail

fuzzer=${1:?usage: smoke.sh FUZZER_BINARY [SECONDS]}
seconds=${2:-20}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -x "$fuzzer" ]] || { echo "smoke.sh: $fuzzer is not an executable" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gray-fuzz-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp "$here"/corpus/* "$work/corpus/"

common=(-rss_limit_mb=2048 -timeout=10 -max_len=4096 -dict="$here/gray.dict" -artifact_prefix="$work/artifacts/")

# 1. Saved regressions must all pass (run each input once).
shopt -s nullglob
regressions=("$here"/regressions/*)
if ((${#regressions[@]})); then
  echo "smoke.sh: replaying ${#regressions[@]} regression input(s)"
  "$fuzzer" "${common[@]}" "${regressions[@]}" >"$work/regressions.log" 2>&1 || {
    tail -n 60 "$work/regressions.log" >&2
    echo "smoke.sh: FAIL: a regression input crashes again" >&2
    exit 1
  }
fi

# 2. Fuzz from the seed corpus for a bounded time, one process.
echo "smoke.sh: fuzzing for ${seconds}s"
if ! "$fuzzer" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work/corpus" >"$work/fuzz.log" 2>&1; then
  tail -n 80 "$work/fuzz.log" >&2
  echo "smoke.sh: FAIL: the fuzzer found a problem; reproducer(s):" >&2
  ls -l "$work/artifacts" >&2
  keep=${GRAY_FUZZ_ARTIFACTS:-${TMPDIR:-/tmp}/gray-fuzz-artifacts}
  mkdir -p "$keep" && cp "$work"/artifacts/* "$keep"/ && echo "smoke.sh: copied to $keep" >&2 || true
  exit 1
fi
grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/fuzz.log" || true
echo "smoke.sh: OK"
