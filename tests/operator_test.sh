#!/usr/bin/env bash
# `gray rollback` and `gray abort` on a run that is running (not waiting at a gate): the run acts
# within about a second, rolls back (or ends as aborted, undoing nothing), and says why.
set -euo pipefail
gray="$1"
work="$(mktemp -d "${TMPDIR:-/tmp}/gray-operator-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > op.gray <<'GRAY'
pipeline "operator" {
  gateway edge = haproxy { socket: "/run/haproxy.sock", backend: "web", stable: ["a"], canary: ["b"] }

  ramp traffic {
    via edge
    steps 10% -> 50% -> 100%
    hold 30s
  }

  rollback {
    edge.weight(0%)
  }
}
GRAY

# $1: rollback or abort; $2: the outcome expected; $3: text the reason must contain.
check() {
  rm -rf .gray
  start=$(date +%s%N)
  "$gray" run op.gray --sim --format json > events.jsonl 2> err.txt &
  pid=$!
  for _ in $(seq 100); do [ -d .gray/runs ] && [ -n "$(ls .gray/runs)" ] && break; sleep 0.05; done
  sleep 0.5
  "$gray" "$1" "$(ls .gray/runs)" > /dev/null
  rc=0
  wait "$pid" || rc=$?
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  outcome=$(grep '"kind":"outcome"' events.jsonl | python3 -c 'import json,sys; d=json.loads(sys.stdin.read())["data"]; print(d["outcome"] + "|" + d["reason"])')
  echo "gray $1: exit $rc after ${took} ms: $outcome"
  [ "$rc" = 1 ] || { echo "expected exit 1"; cat err.txt; exit 1; }
  [ "${outcome%%|*}" = "$2" ] || { echo "expected outcome $2"; exit 1; }
  case "$outcome" in *"$3"*) ;; *) echo "expected the reason to say: $3"; exit 1 ;; esac
  [ "$took" -lt 10000 ] || { echo "took too long: the 30s hold was not interrupted"; exit 1; }
  grep -q "operator: $1" err.txt || { echo "expected a note on stderr"; cat err.txt; exit 1; }
}

check rollback rolled-back "rollback asked for by the operator in stage traffic"
grep -q '"text":"edge.weight(canary: 0%)"' events.jsonl || { echo "the rollback stage did not run"; exit 1; }
check abort aborted "aborted by the operator in stage traffic"
if grep -q '"stage":"rollback"' events.jsonl; then echo "abort must not roll back"; exit 1; fi
echo ok
