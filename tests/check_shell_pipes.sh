#!/usr/bin/env bash
# Under `set -o pipefail`, `producer | grep -q` fails at random: grep exits at
# its first match, and a producer still writing gets SIGPIPE (exit 141), which
# pipefail makes the pipeline's status. The same holds for `| head`. Scripts
# with pipefail test a command's output with `grep -q PATTERN <<<"$output"`.
root=${1:-.}
hits=$(grep -rlE 'pipefail' "$root/tests" "$root/scripts" "$root/.ci" 2>/dev/null |
  xargs -r grep -HnE '\|[[:space:]]*(grep[[:space:]]+-[a-zA-Z]*[qm][a-zA-Z0-9]*|head)([[:space:]]|$)' || true)
if [ -n "$hits" ]; then
  echo "a pipeline that ends early under pipefail (use grep -q ... <<<\"\$output\"):"
  echo "$hits"
  exit 1
fi
echo "shell pipes: ok"
