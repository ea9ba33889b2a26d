#!/usr/bin/env bash
# Training killed with SIGKILL at random moments, checkpointing every step:
# after each kill the run loads and `--resume` continues it; at the end
# metrics.jsonl holds every step exactly once and no temporary file is left.
set -euo pipefail
ppl=$1
kills=${2:-6}
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 16, "encoder_hidden": 16, "decoder_hidden": 16, "predict_hidden": 16,
 "baseline_hidden": 16, "z_what_size": 4, "window_size": 8, "batch_size": 8}
JSON
run=$work/run
steps=400
"$ppl" train air --data multi-mnist --n-train 32 --config "$work/small.json" --eval-every 50 --seed 2 \
  --checkpoint-every 1 --steps 2 --out "$run" > /dev/null 2>&1
RANDOM=7
for k in $(seq 1 "$kills"); do
  "$ppl" train air --resume --steps $steps --out "$run" > /dev/null 2> "$work/train.err" &
  pid=$!
  # Once it trains (or has finished), kill it 0-1.5 s later: mid-step, mid-write or between.
  for _ in $(seq 1 300); do
    grep -q "resuming" "$work/train.err" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
  sleep "$((RANDOM % 2))"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  echo "kill $k: metrics at step $(tail -n 1 "$run/metrics.jsonl" | grep -o '"step":[0-9]*' | cut -d: -f2)," \
    "temporary files: $(find "$run" -name '*.tmp*' | wc -l)"
  # The last checkpoint loads.
  "$ppl" sample "$run" --n 1 --out "$work/k$k.png" > /dev/null 2> "$work/sample.err" ||
    { echo "after kill $k the run does not load:"; cat "$work/sample.err"; exit 1; }
done
# What a kill in the middle of a write leaves (the audit saw a 27 MB one):
# the next train of the run removes it.
head -c 1000 "$run/checkpoint.bin" > "$run/checkpoint.bin.tmp99999"
"$ppl" train air --resume --steps $steps --out "$run" > /dev/null 2>&1
# Every step once, in order, and an evaluation every 50 steps once (and at
# the end of the first, 2-step run).
expected=$(seq 1 $steps | tr '\n' ' ')
got=$(grep '"loss"' "$run/metrics.jsonl" | grep -o '"step":[0-9]*' | cut -d: -f2 | tr '\n' ' ')
[ "$got" = "$expected" ] || { echo "metrics.jsonl steps: $got"; exit 1; }
evals=$(grep '"split":"test"' "$run/metrics.jsonl" | grep -o '"step":[0-9]*' | cut -d: -f2 | tr '\n' ' ')
[ "$evals" = "2 $(seq 50 50 $steps | tr '\n' ' ')" ] || { echo "evaluations at steps: $evals"; exit 1; }
leftovers=$(find "$run" -name '*.tmp*')
[ -z "$leftovers" ] || { echo "temporary files left: $leftovers"; exit 1; }
echo "kill resume: ok"
