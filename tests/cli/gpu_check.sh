#!/usr/bin/env bash
# scripts/gpu-check on a machine without a GPU: its syntax, its argument
# handling (one-line errors, exit 2) and its plan (--dry-run) of every stage.
set -euo pipefail
script=$1
bash -n "$script"
help=$("$script" --help)
grep -q "scripts/gpu-check \[--steps N\]" <<<"$help"
expect_error() {  # expect_error MESSAGE ARGS...
  local message=$1 rc=0
  shift
  err=$("$script" "$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -eq 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && grep -qF -- "$message" <<<"$err" ||
    { echo "gpu-check $* gave exit $rc: $err"; exit 1; }
}
expect_error 'unknown argument "--bogus"' --bogus
expect_error '--steps is "abc", but must be a whole number of at least 1' --steps abc
expect_error '--steps needs a value' --steps
expect_error '--budget is "10", but must be a whole number of at least 60' --budget 10
expect_error '--data-dir "/nonexistent/x" is not a folder' --data-dir /nonexistent/x
plan=$("$script" --dry-run --steps 50)
for stage in configure build "cuda tests" "train air" "train dood" "train gnm" "runtime benchmark"; do
  grep -q "^== $stage " <<<"$plan" || { echo "the plan lacks \"$stage\":"; echo "$plan"; exit 1; }
done
grep -q -- "--steps 50 --device cuda" <<<"$plan" || { echo "--steps is not passed on"; exit 1; }
grep -q "dry run, nothing was run" <<<"$plan"
echo "gpu check: ok"
