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
# GNM's sd-0.1 likelihood sums 4,096 pixels per scene; float32 rounding of
# the same draws moves the log-weights by a few hundredths of a nat.
check gnm-mnist4 10 20 5089.1 1.0
# The baselines (VAE, ConvDRAW) at GNM's training time: the same sd-0.1 likelihood.
check vae-mnist4 10 20 5200.0 1.0
check convdraw-mnist4 10 20 5043.4 1.0
# DooD's Laplace likelihood sums 2,500 pixels; its float16 weights are
# widened to float32 on load, so machines differ by float32 rounding only.
# MNIST is installed with the project's packages, so dood-mnist is always checked;
# Omniglot is read from the data roots; without it the check is skipped.
check dood-mnist 2 8 668.7 1.0
if "$ppl" data list 2> /dev/null | awk '$1 == "omniglot" && $2 == "yes" { found = 1 } END { exit !found }'; then
  check dood-omniglot 2 8 865.3 1.0
else
  echo "dood-omniglot: skipped, no Omniglot under the data roots"
fi

# The count accuracy and box precision its card quotes (`ppl eval boxes` on 500
# test scenes, seed 0): a rounding difference may flip a scene or two (0.002 each).
"$ppl" --threads 1 eval boxes "$work/air-multi-mnist" --n 500 > "$work/boxes.json" 2> /dev/null
python3 - "$work/boxes.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
for key, expected, tolerance in [("count_accuracy", 0.982, 0.01), ("frame_ap_50", 0.868, 0.02)]:
    if abs(got[key] - expected) > tolerance:
        sys.exit(f"air-multi-mnist: {key} {got[key]:.3f}, but its card says {expected} (tolerance {tolerance})")
    print(f"air-multi-mnist: {key} {got[key]:.3f}, card {expected}")
PY
echo "shipped models: ok"
