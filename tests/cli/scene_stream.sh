#!/usr/bin/env bash
# A scene set without --n-train trains on its endless seeded stream of scenes,
# and a resume draws the same scenes: a run trained 2 + 2 steps ends with the
# checkpoint of one trained 4 steps straight.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 32, "encoder_hidden": 32, "decoder_hidden": 32, "predict_hidden": 32,
 "baseline_hidden": 32, "z_what_size": 8, "window_size": 12, "batch_size": 8}
JSON
common=(--data multi-mnist --config "$work/small.json" --eval-every 0 --seed 5)

# No --n-train: the scenes come from the stream, and a resume repeats them.
"$ppl" train air "${common[@]}" --steps 4 --checkpoint-every 2 --out "$work/run" > /dev/null 2>&1
"$ppl" train air "${common[@]}" --steps 2 --checkpoint-every 2 --out "$work/half" > /dev/null 2>&1
"$ppl" train air --steps 4 --out "$work/half" --resume > /dev/null 2>&1
cmp "$work/run/checkpoint.bin" "$work/half/checkpoint.bin" || { echo "the scene stream does not resume exactly"; exit 1; }

echo "scene stream: ok"
