#!/usr/bin/env bash
# Every released model under models/ loads, and reproduces a figure its card
# quotes on a small subset within a stated tolerance (a copy of the folder
# is used: the commands write their results beside the model).
set -euo pipefail
ppl=$1
models=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# check MODEL K N EXPECTED TOLERANCE: `ppl ll` with K particles on N test
# scenes (seed 0) gives EXPECTED nats within TOLERANCE.
check() {
  local model=$1 k=$2 n=$3 expected=$4 tolerance=$5
  [ -d "$models/$model" ] || { echo "no model $model"; exit 1; }
  cp -r "$models/$model" "$work/$model"
  "$ppl" --threads 1 ll "$work/$model" --particles "$k" --n "$n" --seed 0 > /dev/null
  python3 - "$work/$model/ll_"*"_test_K$k.json" "$expected" "$tolerance" "$model" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["log_likelihood"]
expected, tolerance = float(sys.argv[2]), float(sys.argv[3])
if abs(got - expected) > tolerance:
    sys.exit(f"{sys.argv[4]}: log p(x) {got:.2f}, but its card says {expected} (tolerance {tolerance})")
print(f"{sys.argv[4]}: log p(x) {got:.2f}, card {expected}")
PY
}

# The card's figure is the mean over 100 scenes; across machines only the
# floating-point rounding of the same draws differs, far below a nat.
check air-multi-mnist 10 100 636.9 1.0
echo "shipped models: ok"
