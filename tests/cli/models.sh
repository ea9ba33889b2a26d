#!/usr/bin/env bash
# Released models on a small AIR: `ppl export` writes weights without
# optimiser state, config.json and a card; ll, sample and trace read the
# model folder with the run's numbers; train --resume continues its weights
# with a fresh optimiser and says so; the one-line errors of export.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 32, "encoder_hidden": 32, "decoder_hidden": 32, "predict_hidden": 32,
 "baseline_hidden": 32, "z_what_size": 8, "window_size": 12, "batch_size": 8}
JSON
common=(--data multi-mnist --config "$work/small.json" --eval-every 0 --seed 5)

"$ppl" train air "${common[@]}" --steps 4 --checkpoint-every 2 --out "$work/run" > /dev/null 2>&1
# Export: a smaller checkpoint (no Adam moments), config.json, a card.
"$ppl" export "$work/run" --out "$work/models/tiny/" > "$work/export.txt"
grep -q "at step 4" "$work/export.txt"
for f in checkpoint.bin config.json README.md; do [ -s "$work/models/tiny/$f" ] || { echo "export: no $f"; exit 1; }; done
[ "$(stat -c %s "$work/models/tiny/checkpoint.bin")" -lt "$(stat -c %s "$work/run/checkpoint.bin")" ]
[ "$(stat -c %s "$work/models/tiny/checkpoint.bin")" -lt 25000000 ]
grep -q '^# tiny' "$work/models/tiny/README.md"
grep -q 'ppl train air --data multi-mnist --steps 4 --seed 5' "$work/models/tiny/README.md"
grep -q '"data_dir": ""' "$work/models/tiny/config.json"
set +e
"$ppl" export "$work/run" --out "$work/models/tiny" 2> "$work/err1"; rc1=$?
"$ppl" export "$work/run" --out "$work/models/big" --max-mb 0.001 2> "$work/err2"; rc2=$?
set -e
[ $rc1 -eq 2 ] && grep -q "already holds a model" "$work/err1" && [ "$(wc -l < "$work/err1")" -eq 1 ]
[ $rc2 -eq 2 ] && grep -q -- "over the --max-mb 0.001" "$work/err2" && [ "$(wc -l < "$work/err2")" -eq 1 ]
[ ! -e "$work/models/big/checkpoint.bin" ]
# Half-precision weights: about half the file, a bad --dtype named.
"$ppl" export "$work/run" --out "$work/models/half" --dtype float16 > "$work/export_half.txt"
grep -q "of float16 weights" "$work/export_half.txt"
grep -q "float16 weights without optimiser state" "$work/models/half/README.md"
grep -q -- "--out models/half --dtype float16$" "$work/models/half/README.md"
# A model over the default --max-mb: its card's command carries the limit it needed.
"$ppl" export "$work/run" --out "$work/models/big_ok" --max-mb 30 > /dev/null
grep -q -- "--out models/big_ok$" "$work/models/big_ok/README.md"
[ $((2 * $(stat -c %s "$work/models/half/checkpoint.bin"))) -lt \
  $((11 * $(stat -c %s "$work/models/tiny/checkpoint.bin") / 10)) ]
set +e
"$ppl" export "$work/run" --out "$work/models/f64" --dtype float64 2> "$work/err3"; rc3=$?
set -e
[ $rc3 -eq 2 ] && grep -q -- '--dtype is "float64", but must be float32 or float16' "$work/err3"
[ "$(wc -l < "$work/err3")" -eq 1 ] && [ ! -e "$work/models/f64" ]

# The model folder reads like a run directory, with the same numbers.
"$ppl" ll "$work/models/tiny" --particles 2 --n 4 --batch 4 --out "$work/ll_model" > "$work/ll_model.json" 2> /dev/null
"$ppl" ll "$work/run" --particles 2 --n 4 --batch 4 --out "$work/ll_run" > "$work/ll_run.json" 2> /dev/null
grep -q '"log_likelihood"' "$work/ll_model.json"
# ll_close A.json B.json REL: the log-likelihoods of two `ll` outputs agree
# within REL of B's (at least REL nats).
ll_close() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
rel = float(sys.argv[3])
la, lb = a["log_likelihood"], b["log_likelihood"]
la = la if isinstance(la, list) else [la]
lb = lb if isinstance(lb, list) else [lb]
assert all(abs(x - y) <= rel * max(1.0, abs(y)) for x, y in zip(la, lb)), (la, lb)
PY
}
# The same float32 weights and draws: equal up to summation order.
ll_close "$work/ll_model.json" "$work/ll_run.json" 1e-3
# The float16 model: the same draws with each weight rounded to 11
# significant bits (relative error at most 2^-11), so log p(x) moves by a
# small fraction of itself, not by the nats a different model would.
"$ppl" ll "$work/models/half" --particles 2 --n 4 --batch 4 --out "$work/ll_half" > "$work/ll_half.json" 2> /dev/null
ll_close "$work/ll_half.json" "$work/ll_run.json" 1e-2
"$ppl" sample "$work/models/tiny" --n 4 --out "$work/s.png" > /dev/null 2>&1
test -s "$work/s.png"
"$ppl" trace "$work/models/tiny" --index 1 --json "$work/t.json" --html "$work/t.html" > /dev/null 2>&1
grep -q '"z_pres' "$work/t.json"

# train --resume from a copy of the model: its weights, a fresh Adam state, said so.
cp -r "$work/models/tiny" "$work/cont"
"$ppl" train air --steps 6 --out "$work/cont" --resume > /dev/null 2> "$work/resume.txt"
grep -q "holds a released model (weights without optimiser state): continuing its weights at step 4 with a fresh Adam" \
  "$work/resume.txt"
[ "$(stat -c %s "$work/cont/checkpoint.bin")" -gt "$(stat -c %s "$work/models/tiny/checkpoint.bin")" ]
# ... and from the float16 model: its weights widened to float32, trained on.
cp -r "$work/models/half" "$work/cont_half"
"$ppl" train air --steps 6 --out "$work/cont_half" --resume > /dev/null 2> "$work/resume_half.txt"
grep -q "continuing its weights at step 4" "$work/resume_half.txt"
"$ppl" ll "$work/cont_half" --particles 2 --n 4 --batch 4 --out "$work/ll_cont_half" > /dev/null 2>&1

echo "models: ok"
