#!/usr/bin/env bash
# `ppl train --nproc 2`: two local workers over Gloo write one run (one
# checkpoint, one metrics file, config.json recording the world size); a
# resume on one process continues it; a worker killed mid-run stops the job
# with an error naming its rank and leaves the last checkpoint loadable.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 16, "encoder_hidden": 16, "decoder_hidden": 16, "predict_hidden": 16,
 "baseline_hidden": 16, "z_what_size": 4, "window_size": 8, "batch_size": 8}
JSON
common=(--data multi-mnist --n-train 64 --config "$work/small.json" --eval-every 0 --seed 4)

"$ppl" train air "${common[@]}" --nproc 2 --steps 4 --checkpoint-every 2 --out "$work/run" > "$work/out" 2> "$work/err"
grep -q '"world_size": 2' "$work/run/config.json"
[ "$(grep -c '"loss"' "$work/run/metrics.jsonl")" -eq 4 ] || { echo "metrics:"; cat "$work/run/metrics.jsonl"; exit 1; }
[ "$(ls "$work/run" | grep -c checkpoint)" -eq 1 ]
grep -q "trained air for 4 steps" "$work/out"
# Continued on one process, with the effective batch of one rank.
"$ppl" train air --resume --steps 6 --out "$work/run" > /dev/null 2>&1
grep -q '"world_size": 1' "$work/run/config.json"
[ "$(grep -c '"loss"' "$work/run/metrics.jsonl")" -eq 6 ]

# A worker killed while the job trains: the job ends with an error naming
# the rank, and the run still loads.
# (300 steps: many seconds here, and a resume that finishes them is quick.)
"$ppl" train air "${common[@]}" --nproc 2 --steps 300 --checkpoint-every 1 --out "$work/killed" \
  > /dev/null 2> "$work/err" &
launcher=$!
for _ in $(seq 1 600); do
  [ -s "$work/killed/checkpoint.bin" ] && break
  sleep 0.1
done
workers=$(pgrep -P $launcher || true)
[ "$(echo "$workers" | wc -w)" -eq 2 ] || { echo "workers: $workers"; cat "$work/err"; exit 1; }
kill -9 "$(echo "$workers" | tail -n 1)"
set +e
wait $launcher
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "ppl: error: train: rank [01] was killed by signal 9" "$work/err" ||
  { echo "exit $rc:"; cat "$work/err"; exit 1; }
"$ppl" sample "$work/killed" --n 2 --out "$work/s.png" > /dev/null 2>&1
"$ppl" train air --resume --out "$work/killed" > /dev/null 2>&1
[ "$(grep -c '"loss"' "$work/killed/metrics.jsonl")" -eq 300 ]
echo "nproc: ok"
