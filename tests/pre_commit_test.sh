#!/usr/bin/env bash
# The pre-commit hooks of .pre-commit-hooks.yaml, run for real by pre-commit (Debian package
# pre-commit): in a fresh git repository, a bad .gray file makes both hooks fail (at
# `pre-commit run` and at `git commit`), the fixed file makes them pass.
#
#   tests/pre_commit_test.sh GRAY_BINARY SOURCE_DIR        (exit 77: pre-commit is missing)
set -euo pipefail
gray_bin=$(realpath "$1")
src=$(realpath "$2")
if ! command -v pre-commit >/dev/null; then
  echo "pre-commit is not installed (apt-get install pre-commit): skipped"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PRE_COMMIT_HOME="$work/pre-commit-cache" HOME="$work/home"
mkdir -p "$HOME" "$work/bin"
ln -s "$gray_bin" "$work/bin/gray"
export PATH="$work/bin:$PATH"
git_id=(-c user.name=gray-test -c user.email=gray-test@example.invalid -c init.defaultBranch=main -c commit.gpgsign=false)
fail() { echo "FAIL: $*"; exit 1; }

# The hooks, as they are in this working tree, in a repository of their own that pre-commit
# clones like any hook repository.
hooks="$work/hooks"
mkdir "$hooks"
cp "$src/.pre-commit-hooks.yaml" "$hooks/"
git "${git_id[@]}" -C "$hooks" init -q
git "${git_id[@]}" -C "$hooks" add .pre-commit-hooks.yaml
git "${git_id[@]}" -C "$hooks" commit -q -m hooks
rev=$(git -C "$hooks" rev-parse HEAD)

project="$work/project"
mkdir "$project"
cd "$project"
git "${git_id[@]}" init -q
cat > .pre-commit-config.yaml <<YAML
repos:
  - repo: $hooks
    rev: $rev
    hooks:
      - id: gray-lint
      - id: gray-fmt
YAML

# Badly laid out, and a ramp that no guard watches.
cat > shop.gray <<'GRAY'
pipeline   "shop" {
    gateway edge = sim { stable: ["a"], canary: ["b"] }
  ramp traffic {
    via edge
    steps 5% -> 50% -> 100%
    hold 10m
  }
  rollback { edge.weight(0%)
    undo all }
}
GRAY
echo "not a pipeline" > notes.txt
git add -A

echo "== pre-commit run on the bad file: both hooks must fail"
if pre-commit run --all-files > run1.log 2>&1; then cat run1.log; fail "the hooks passed on a bad file"; fi
cat run1.log
grep -Eq '^gray lint\.+Failed' run1.log || fail "gray lint did not fail"
grep -Eq '^gray fmt\.+Failed' run1.log || fail "gray fmt did not fail"
grep -q 'shop.gray:3:3: warning: ramp .traffic. shifts traffic with no guard watching it' run1.log || fail "lint finding missing"
grep -q 'files were modified by this hook' run1.log || fail "gray fmt did not rewrite the file"
gray fmt --check shop.gray || fail "gray fmt's hook left the file unformatted"

echo "== as a git hook: the commit is refused"
pre-commit install > /dev/null
git add -A
if git "${git_id[@]}" commit -q -m "bad pipeline" > commit1.log 2>&1; then cat commit1.log; fail "the commit went through"; fi
grep -Eq '^gray lint\.+Failed' commit1.log || { cat commit1.log; fail "gray lint did not stop the commit"; }

echo "== fixed: a guard watches the ramp"
cat > shop.gray <<'GRAY'
pipeline "shop" {
  gateway edge = sim { stable: ["a"], canary: ["b"] }
  metrics prom = sim {}
  metric error_rate = prom.query("errors")

  ramp traffic {
    via edge
    steps 5% -> 50% -> 100%
    hold 10m
    guard error_rate < 1%
  }

  rollback {
    edge.weight(0%)
    undo all
  }
}
GRAY
git add -A
pre-commit run --all-files > run2.log 2>&1 || { cat run2.log; fail "the hooks failed on the fixed file"; }
cat run2.log
grep -Eq '^gray lint\.+Passed' run2.log || fail "gray lint did not pass"
grep -Eq '^gray fmt\.+Passed' run2.log || fail "gray fmt did not pass"
git "${git_id[@]}" commit -q -m "fixed pipeline" > commit2.log 2>&1 || { cat commit2.log; fail "the commit was refused"; }
grep -Eq '^gray lint\.+Passed' commit2.log || { cat commit2.log; fail "the commit did not run the hooks"; }
echo "ok: the hooks fail on the bad file and pass on the fixed one"
