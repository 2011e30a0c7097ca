#!/usr/bin/env bash
# The whole crash matrix: every example pipeline, every one of its scenarios, a crash at every
# journal record boundary and in the middle of every record (stride 1), then `gray resume`.
# Prints one line per pipeline and scenario and the totals. Takes a while: run it by hand or in
# a nightly job (the test suite runs a sample of it, see tests/CMakeLists.txt).
#   usage: tests/crash/full_matrix.sh GRAY [STRIDE]
set -uo pipefail
gray="$1"
stride="${2:-1}"
cd "$(dirname "$0")/../.."
declare -A version=([canary]=2.4.1 [container-gray]=5.13.0 [flow-periods]=3.2.0
                    [node-handover]=7.4.0 [registry-rolling]=3.9.0 [versioned-routing]=11.5.0)
tried=0; passed=0; failed=0; other=0
for p in "${!version[@]}"; do
  for s in pipelines/scenarios/"$p"/*.json; do
    approve=(); case "$p" in flow-periods|versioned-routing) approve=(--approve promote) ;; esac
    line=$(python3 tests/crash/crash_matrix.py "$gray" "pipelines/$p.gray" --set "version=${version[$p]}" --scenario "$s" --stride "$stride" "${approve[@]}")
    rc=$?
    echo "$line"
    t=$(echo "$line" | sed -n 's/.*crash points tried \([0-9]*\), passed \([0-9]*\).*/\1/p' | head -1)
    ok=$(echo "$line" | sed -n 's/.*crash points tried \([0-9]*\), passed \([0-9]*\).*/\2/p' | head -1)
    o=$(echo "$line" | sed -n 's/.*(\([0-9]*\) by another path.*/\1/p' | head -1)
    tried=$((tried + ${t:-0})); passed=$((passed + ${ok:-0})); other=$((other + ${o:-0}))
    [ $rc -eq 0 ] || failed=$((failed + 1))
  done
done
echo "total: crash points tried $tried, passed $passed ($other of them by another path); pipeline/scenario pairs failing: $failed"
[ $failed -eq 0 ]
